"""DGS op (2-D) against an independent float64 oracle: value, camera-space derivatives and backward.

The oracle is a gather-based bilinear sampler written here from the definition (clamp the
continuous pixel coordinate to the border, floor, gather four neighbours); its derivatives come from
autograd w.r.t. the points, and the expected feature gradient from a second backward through them.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dgs_core.ops import dgs_sample, dgs_sample_reference
from dgs_core.ops import cpu as cpu_impl

H, W = 6, 8  # W a power of two so that the constructed pixel-centre/boundary coordinates are exact


def oracle_value(features: torch.Tensor, points: torch.Tensor, intr: torch.Tensor) -> torch.Tensor:
    """(B,C,H,W), (B,Q,3), (B,4) -> (B,Q,C) bilinear border-clamped sample (differentiable in both)."""
    b, c, h, w = features.shape
    x, y, z = points.unbind(-1)
    u = intr[:, 0:1] * x / z + intr[:, 2:3]
    v = intr[:, 1:2] * y / z + intr[:, 3:4]

    def axis(coord, n):
        pix = ((coord + 1) * n - 1) / 2
        pix = torch.clamp(pix, 0, n - 1)
        lo = torch.clamp(torch.floor(pix.detach()), max=max(n - 2, 0)).long()
        return lo, torch.clamp(lo + 1, max=n - 1), pix - lo

    x0, x1, ax = axis(u, w)
    y0, y1, ay = axis(v, h)
    bi = torch.arange(b)[:, None].expand_as(x0)
    f = features.permute(0, 2, 3, 1)  # gather whole channel vectors
    f00, f01, f10, f11 = f[bi, y0, x0], f[bi, y0, x1], f[bi, y1, x0], f[bi, y1, x1]
    ax, ay = ax[..., None], ay[..., None]
    return (1 - ay) * ((1 - ax) * f00 + ax * f01) + ay * ((1 - ax) * f10 + ax * f11)


def oracle(features, points, intr):
    """(B,Q,4,C) value + autograd d/d(x,y,z), built with create_graph so it can be backpropagated."""
    pts = points.detach().clone().requires_grad_(True)
    val = oracle_value(features, pts, intr)
    derivs = [torch.autograd.grad(val[..., k].sum(), pts, create_graph=True)[0] for k in range(val.shape[-1])]
    return torch.cat([val[..., None, :], torch.stack(derivs, -1)], -2)


def make_points(seed: int, dtype=torch.float64):
    """Random queries (inside, clamped band, outside) plus exact pixel centres and cell boundaries."""
    g = torch.Generator().manual_seed(seed)
    b, q = 2, 60
    z = 0.5 + 3 * torch.rand(b, q, generator=g, dtype=dtype)
    uv = 2.6 * torch.rand(b, q, 2, generator=g, dtype=dtype) - 1.3  # beyond |1|: clamped and outside
    intr = torch.tensor([[1.8, 2.4, 0.05, -0.1], [1.3, 1.1, -0.2, 0.15]], dtype=dtype)
    xy = (uv - intr[:, None, 2:]) * z[..., None] / intr[:, None, :2]
    rand_pts = torch.cat([xy, z[..., None]], -1)
    # Exact coordinates with intrinsics (1, 1, 0, 0) and z = 1: u = x. Pixel centres (incl. the outer
    # ones), cell boundaries, the clamped band between outer centre and image edge, far outside.
    cu = [-1 + (2 * j + 1) / W for j in range(W)] + [-1 + 2 * j / W for j in range(W + 1)] + [-0.97, 0.97, 1.5, -2.0]
    cv = [-1 + (2 * j + 1) / H for j in range(H)] + [-1.0, 1.0, 0.95, -3.0]
    grid = torch.tensor([(a, c) for a in cu for c in cv], dtype=dtype)
    exact = torch.cat([grid, torch.ones(len(grid), 1, dtype=dtype)], -1)[None].expand(b, -1, -1)
    return rand_pts, intr, exact, torch.tensor([[1.0, 1.0, 0.0, 0.0]] * b, dtype=dtype)


def _close(actual, expected, rtol):
    scale = expected.abs().max().clamp_min(1e-30)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("which", ["random", "exact"])
def test_float64_matches_oracle_value_derivatives_backward(which):
    rand_pts, rand_intr, exact_pts, exact_intr = make_points(0)
    pts, intr = (rand_pts, rand_intr) if which == "random" else (exact_pts, exact_intr)
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 3, H, W, generator=g, dtype=torch.float64)
    grad_out = torch.randn(2, pts.shape[1], 4, 3, generator=g, dtype=torch.float64)

    f_or = feats.clone().requires_grad_(True)
    expected = oracle(f_or, pts, intr)
    (expected * grad_out).sum().backward()

    f_op = feats.clone().requires_grad_(True)
    out = dgs_sample(f_op, pts, intr)
    out.backward(grad_out)
    _close(out.detach(), expected.detach(), 1e-9)
    _close(f_op.grad, f_or.grad, 1e-9)
    # The reference is kept as an independent implementation of the same closed form.
    f_ref = feats.clone().requires_grad_(True)
    ref = dgs_sample_reference(f_ref, pts, intr)
    ref.backward(grad_out)
    _close(ref.detach(), expected.detach(), 1e-9)
    _close(f_ref.grad, f_or.grad, 1e-9)


def test_clamped_and_outside_have_zero_derivative_and_border_value():
    _, _, pts, intr = make_points(0)
    feats = torch.randn(2, 3, H, W, dtype=torch.float64)
    out = dgs_sample(feats, pts, intr)
    u, v = pts[..., 0], pts[..., 1]
    pix_u, pix_v = ((u + 1) * W - 1) / 2, ((v + 1) * H - 1) / 2
    clamped_u = (pix_u < 0) | (pix_u > W - 1)
    clamped_v = (pix_v < 0) | (pix_v > H - 1)
    assert clamped_u.any() and clamped_v.any() and (~clamped_u).any()
    assert (out[..., 1, :][clamped_u] == 0).all()  # d/dx only sees u
    assert (out[..., 2, :][clamped_v] == 0).all()
    assert (out[..., 3, :][clamped_u & clamped_v] == 0).all()
    assert (out[..., 1, :][~clamped_u].abs() > 0).any()


def test_value_equals_grid_sample():
    pts, intr, _, _ = make_points(3)
    feats = torch.randn(2, 5, H, W, dtype=torch.float64)
    u = intr[:, None, 0] * pts[..., 0] / pts[..., 2] + intr[:, None, 2]
    v = intr[:, None, 1] * pts[..., 1] / pts[..., 2] + intr[:, None, 3]
    gs = F.grid_sample(feats, torch.stack([u, v], -1)[:, :, None], mode="bilinear", padding_mode="border",
                       align_corners=False)[..., 0].transpose(1, 2)
    torch.testing.assert_close(dgs_sample(feats, pts, intr)[..., 0, :], gs, rtol=1e-12, atol=1e-12)


def test_float32_within_1e_4_of_float64_oracle():
    pts, intr, _, _ = make_points(4)
    g = torch.Generator().manual_seed(5)
    feats = torch.randn(2, 40, H, W, generator=g, dtype=torch.float64)
    grad_out = torch.randn(2, pts.shape[1], 4, 40, generator=g, dtype=torch.float64)
    f_or = feats.clone().requires_grad_(True)
    expected = oracle(f_or, pts, intr)
    (expected * grad_out).sum().backward()
    f32 = feats.float().requires_grad_(True)
    out = dgs_sample(f32, pts.float(), intr.float())
    out.backward(grad_out.float())
    assert out.dtype == torch.float32 and f32.grad.dtype == torch.float32
    _close(out.double().detach(), expected.detach(), 1e-4)
    _close(f32.grad.double(), f_or.grad, 1e-4)


def test_gradcheck_and_gradgradcheck():
    g = torch.Generator().manual_seed(6)
    feats = torch.randn(2, 2, 4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    pts = torch.cat([torch.randn(2, 7, 2, generator=g, dtype=torch.float64),
                     1 + torch.rand(2, 7, 1, generator=g, dtype=torch.float64)], -1)
    intr = torch.tensor([[1.5, 1.2, 0.1, 0.0]] * 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: dgs_sample(f, pts, intr), (feats,))
    assert torch.autograd.gradgradcheck(lambda f: dgs_sample(f, pts, intr), (feats,))


def test_cpu_kernel_matches_reference_channels_last_and_is_deterministic():
    pts, intr, _, _ = make_points(7, torch.float32)
    feats = torch.randn(2, 150, H, W).contiguous(memory_format=torch.channels_last)  # C > channel block
    grad_out = torch.randn(2, pts.shape[1], 4, 150)
    out = cpu_impl.sample_2d_forward(feats, pts, intr)
    f_ref = feats.clone().requires_grad_(True)
    ref = dgs_sample_reference(f_ref, pts, intr)
    ref.backward(grad_out)
    _close(out, ref.detach(), 1e-5)
    g1 = cpu_impl.sample_2d_backward(grad_out, pts, intr, H, W)
    g2 = cpu_impl.sample_2d_backward(grad_out, pts, intr, H, W)
    _close(g1, f_ref.grad, 1e-5)
    assert torch.equal(g1, g2)


def test_dtype_policy_half_and_autocast():
    pts, intr, _, _ = make_points(8, torch.float32)
    feats = torch.randn(2, 4, H, W)
    expected = dgs_sample(feats, pts, intr)
    fh = feats.to(torch.bfloat16).requires_grad_(True)
    out = dgs_sample(fh, pts, intr)
    assert out.dtype == torch.float32  # float32 compute and result for half inputs
    out.sum().backward()
    assert fh.grad.dtype == torch.bfloat16
    _close(out, dgs_sample(fh.detach().float(), pts, intr), 1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        raw = torch.ops.dgs.sample(feats.to(torch.bfloat16), pts, intr, True)
    assert raw.dtype == torch.float32
    _close(raw, expected, 1e-2)


def test_torch_compile_fullgraph():
    pts, intr, _, _ = make_points(9, torch.float32)
    feats = torch.randn(2, 3, H, W)

    def step(f):
        return (dgs_sample(f, pts, intr) ** 2).sum()

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    fa, fb = feats.clone().requires_grad_(True), feats.clone().requires_grad_(True)
    la, lb = compiled(fa), step(fb)
    la.backward()
    lb.backward()
    _close(la.detach(), lb.detach(), 1e-6)
    _close(fa.grad, fb.grad, 1e-6)


def test_parallel_numba_kernels_equal_serial_twins():
    """Large calls use the parallel kernels (small ones the serial twins): both must agree bit for bit."""
    from dgs_core.ops import cpu_kernels as k
    from dgs_core.ops import reference

    pts, intr, _, _ = make_points(10, torch.float32)
    feat = torch.randn(2, H * W, 130)
    grad = torch.randn(2, pts.shape[1], 4, 130)
    a = (feat.numpy(), pts.numpy(), intr.numpy(), H, W)
    outs = [torch.empty(2, pts.shape[1], 4, 130) for _ in range(2)]
    gfs = [torch.zeros(2, H * W, 130) for _ in range(2)]
    k.sample_2d_fwd(*a, outs[0].numpy())
    k.SERIAL["sample_2d_fwd"](*a, outs[1].numpy())
    k.sample_2d_bwd(grad.numpy(), *a[1:], gfs[0].numpy())
    k.SERIAL["sample_2d_bwd"](grad.numpy(), *a[1:], gfs[1].numpy())
    assert torch.equal(outs[0], outs[1]) and torch.equal(gfs[0], gfs[1])
    _close(outs[0], reference.combine(feat, *reference.coefficients_2d(pts, intr, H, W)), 1e-5)

    idx, coef = reference.coefficients_2d(pts, intr, H, W)
    c = (idx.numpy(), coef.numpy())
    outs = [torch.empty(2, pts.shape[1], 4, 130) for _ in range(2)]
    gfs = [torch.zeros(2, H * W, 130) for _ in range(2)]
    k.combine_fwd(feat.numpy(), *c, outs[0].numpy())
    k.SERIAL["combine_fwd"](feat.numpy(), *c, outs[1].numpy())
    k.combine_bwd(grad.numpy(), *c, gfs[0].numpy())
    k.SERIAL["combine_bwd"](grad.numpy(), *c, gfs[1].numpy())
    assert torch.equal(outs[0], outs[1]) and torch.equal(gfs[0], gfs[1])
    _close(gfs[0], _scatter_expected(grad, idx, coef), 1e-5)


def _scatter_expected(grad, idx, coef):
    """The pure-torch transpose (index_add_) of the gather, as an independent check of combine_bwd."""
    g = torch.zeros(2, H * W, grad.shape[-1])
    cpu_impl.combine_backward_torch(grad, idx, coef, g)
    return g
