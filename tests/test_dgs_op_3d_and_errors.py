"""3-D DGS op against its own float64 trilinear oracle, and the ValueErrors on bad input."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dgs_core.ops import dgs_sample, dgs_sample_3d, dgs_sample_3d_reference

D, H, W = 3, 4, 8
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def oracle_value_3d(volume, grid):
    """(B,C,D,H,W), (B,Q,3) normalised -> (B,Q,C) trilinear, border-clamped, align_corners=False."""
    b = volume.shape[0]

    def axis(coord, n):
        pix = torch.clamp(((coord + 1) * n - 1) / 2, 0, n - 1)
        lo = torch.clamp(torch.floor(pix.detach()), max=max(n - 2, 0)).long()
        return (lo, torch.clamp(lo + 1, max=n - 1)), pix - lo

    (x0, x1), ax = axis(grid[..., 0], W)
    (y0, y1), ay = axis(grid[..., 1], H)
    (z0, z1), az = axis(grid[..., 2], D)
    bi = torch.arange(b)[:, None].expand_as(x0)
    f = volume.permute(0, 2, 3, 4, 1)
    out = 0
    for zi, wz in ((z0, 1 - az), (z1, az)):
        for yi, wy in ((y0, 1 - ay), (y1, ay)):
            for xi, wx in ((x0, 1 - ax), (x1, ax)):
                out = out + (wx * wy * wz)[..., None] * f[bi, zi, yi, xi]
    return out


def oracle_3d(volume, grid, size):
    g = grid.detach().clone().requires_grad_(True)
    val = oracle_value_3d(volume, g)
    scale = 2 / size  # d normalised / d metre
    derivs = [torch.autograd.grad(val[..., k].sum(), g, create_graph=True)[0] * scale
              for k in range(val.shape[-1])]
    return torch.cat([val[..., None, :], torch.stack(derivs, -1)], -2)


def _close(actual, expected, rtol):
    scale = expected.abs().max().clamp_min(1e-30)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale)


def _grid(seed):
    g = torch.Generator().manual_seed(seed)
    rand = 2.6 * torch.rand(2, 40, 3, generator=g, dtype=torch.float64) - 1.3
    # Exact voxel centres / boundaries / clamped band on x, inside on y and z.
    xs = [-1 + (2 * j + 1) / W for j in range(W)] + [-1 + 2 * j / W for j in range(W + 1)] + [0.99, -1.4]
    exact = torch.tensor([(x, -1 + 3 / H, 1 - 1 / D) for x in xs], dtype=torch.float64)[None].expand(2, -1, -1)
    return torch.cat([rand, exact], 1)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", [torch.tensor([2.0, 3.0, 0.5]), torch.tensor([[2.0, 3.0, 0.5], [1.0, 1.0, 4.0]])])
def test_3d_matches_oracle_and_grid_sample(size, device):
    """The op (on ``device``) and its reference against the CPU float64 oracle, and grid_sample."""
    size = size.double()
    grid = _grid(0)
    g = torch.Generator().manual_seed(1)
    vol = torch.randn(2, 3, D, H, W, generator=g, dtype=torch.float64)
    grad_out = torch.randn(2, grid.shape[1], 4, 3, generator=g, dtype=torch.float64)
    size_b = size.expand(2, 3)[:, None, :]

    v_or = vol.clone().requires_grad_(True)
    expected = oracle_3d(v_or, grid, size_b)
    (expected * grad_out).sum().backward()
    grid_d, size_d, grad_d = grid.to(device), size.to(device), grad_out.to(device)
    for fn in (dgs_sample_3d, dgs_sample_3d_reference):
        v_op = vol.to(device, copy=True).requires_grad_(True)
        out = fn(v_op, grid_d, size_d)
        assert out.device.type == device
        out.backward(grad_d)
        _close(out.detach().cpu(), expected.detach(), 1e-9)
        _close(v_op.grad.cpu(), v_or.grad, 1e-9)
    vol_d = vol.to(device)
    gs = F.grid_sample(vol_d, grid_d[:, :, None, None], mode="bilinear", padding_mode="border",
                       align_corners=False)[..., 0, 0].transpose(1, 2)
    torch.testing.assert_close(dgs_sample_3d(vol_d, grid_d, size_d)[..., 0, :], gs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_3d_gradcheck_and_float32(device):
    """gradcheck and gradgradcheck on ``device`` (CUDA sums the backward with atomics, so repeated
    backward passes may differ in the last bits: ``nondet_tol``); float32 against the oracle."""
    g = torch.Generator().manual_seed(2)
    small = torch.randn(1, 2, 2, 3, 4, generator=g, dtype=torch.float64).to(device).requires_grad_(True)
    grid_s = (2.4 * torch.rand(1, 6, 3, generator=g, dtype=torch.float64) - 1.2).to(device)
    size = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    nondet = 0.0 if device == "cpu" else 1e-12
    assert torch.autograd.gradcheck(lambda v: dgs_sample_3d(v, grid_s, size.to(device)), (small,), nondet_tol=nondet)
    assert torch.autograd.gradgradcheck(lambda v: dgs_sample_3d(v, grid_s, size.to(device)), (small,),
                                        nondet_tol=nondet)
    grid = _grid(2)
    vol = torch.randn(2, 2, D, H, W, generator=g, dtype=torch.float64)
    out32 = dgs_sample_3d(vol.float().to(device), grid.float().to(device), size.float().to(device))
    _close(out32.double().cpu(), oracle_3d(vol, grid, size).detach(), 1e-4)


def _good():
    feats = torch.randn(2, 3, 4, 5)
    pts = torch.tensor([[0.1, 0.2, 1.0]] * 6).reshape(2, 3, 3)
    intr = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 2)
    return feats, pts, intr


def _bad_case(name):
    f, p, k = _good()
    cases = {
        "features rank": (f[0], p, k, "features"),
        "points shape": (f, p[..., :2], k, "points"),
        "points batch": (f, p[:1], k, "points"),
        "intrinsics shape": (f, p, k[:, :3], "intrinsics"),
        "int dtype": (f, p.long(), k, "points"),
        "device": (f.to("meta"), p, k, "points"),
        "requires_grad": (f, p.clone().requires_grad_(True), k, "points"),
        "z zero": (f, torch.cat([p[..., :2], torch.zeros_like(p[..., 2:])], -1), k, "points"),
        "z negative": (f, p * torch.tensor([1.0, 1.0, -1.0]), k, "points"),
        "nan point": (f, torch.where(p == p.max(), torch.nan, p), k, "points"),
        "inf intrinsics": (f, p, k.clone().fill_(torch.inf), "intrinsics"),
    }
    return cases[name]


@pytest.mark.parametrize("name", ["features rank", "points shape", "points batch", "intrinsics shape", "int dtype",
                                  "device", "requires_grad", "z zero", "z negative", "nan point",
                                  "inf intrinsics"])
def test_bad_input_raises_value_error_naming_argument(name):
    f, p, k, arg = _bad_case(name)
    with pytest.raises(ValueError, match=f"'{arg}'"):
        dgs_sample(f, p, k)


def test_bad_input_3d():
    vol, grid, size = torch.randn(1, 2, D, H, W), torch.zeros(1, 5, 3), torch.ones(3)
    with pytest.raises(ValueError, match="'volume'"):
        dgs_sample_3d(vol[0], grid, size)
    with pytest.raises(ValueError, match="'size'"):
        dgs_sample_3d(vol, grid, -size)
    with pytest.raises(ValueError, match="'size'"):
        dgs_sample_3d(vol, grid, torch.ones(4))
    with pytest.raises(ValueError, match="'grid'"):
        dgs_sample_3d(vol, grid.fill_(torch.nan), size)
