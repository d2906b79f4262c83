"""The Triton kernels of the DGS op against the float64 pure-torch reference.

On CPU they run under Triton's interpreter (TRITON_INTERPRET=1), which must be set before the kernels
are defined, so that check runs :func:`compare_kernels` in a fresh subprocess. On a GPU the same
comparison runs compiled, and the registered op is checked end to end (dispatch to the kernel, AMP,
gradcheck of its backward and double backward); those tests are marked ``cuda``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[1]


def _inputs(device: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """float64 features (B, C, H, W), camera points (B, Q, 3) and normalised intrinsics (B, 4).

    C is not a multiple of the channel block nor Q of BLOCK_Q; the points' (u, v) cover the image,
    the clamped border band and the outside.
    """
    gen = torch.Generator().manual_seed(seed)
    b, c, h, w, q = 2, 70, 5, 8, 45
    f = torch.randn(b, c, h, w, generator=gen, dtype=torch.float64)
    z = 0.5 + torch.rand(b, q, generator=gen, dtype=torch.float64)
    uv = 2.6 * torch.rand(b, q, 2, generator=gen, dtype=torch.float64) - 1.3
    k = torch.tensor([[1.8, 2.4, 0.05, -0.1], [1.2, 1.1, -0.2, 0.1]], dtype=torch.float64)
    p = torch.cat([(uv - k[:, None, 2:]) * z[..., None] / k[:, None, :2], z[..., None]], -1)
    return f.to(device), p.to(device), k.to(device)


def compare_kernels(device: str) -> None:
    """The kernels' forward ([value, d/dx, d/dy, d/dz]) and backward, in float64 and float32 on
    ``device``, against the float64 reference on CPU; relative max error 1e-12 (float64) and 1e-5
    (float32: rounding of the inputs and of sums of four corner terms)."""
    from dgs_core.ops import reference, triton_kernels

    f, p, k = _inputs("cpu")
    fr = f.clone().requires_grad_(True)
    ref = reference.dgs_sample_reference(fr, p, k)
    g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref.backward(g)
    h, w = f.shape[2:]
    for dt, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        f_d, p_d, k_d, g_d = (t.to(device, dt) for t in (f, p, k, g))
        out = triton_kernels.sample_2d_forward(f_d, p_d, k_d)
        gf = triton_kernels.sample_2d_backward(g_d, p_d, k_d, h, w)
        for what, got, expected in (("value", out[:, :, 0], ref.detach()[:, :, 0]),
                                    ("spatial gradient", out[:, :, 1:], ref.detach()[:, :, 1:]),
                                    ("feature gradient", gf, fr.grad)):
            err = float((got.cpu().double() - expected).abs().max() / expected.abs().max())
            assert err < tol, f"{device} {dt} {what}: relative error {err:.2e} >= {tol:.0e}"


def test_triton_kernels_match_reference_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); from test_dgs_op_triton import "
            "compare_kernels; compare_kernels('cpu'); print('OK')")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr


@pytest.mark.cuda
def test_triton_kernels_match_reference_on_cuda():
    compare_kernels("cuda")


@pytest.mark.cuda
def test_registered_op_on_cuda_runs_the_kernel_under_amp():
    """``dgs_sample`` on CUDA: bfloat16 features under autocast are computed in float32 (output
    float32, gradient back in bfloat16), matching the reference of the bf16-rounded features."""
    from dgs_core.ops import dgs_sample, dgs_sample_reference

    f, p, k = _inputs("cuda")
    f16 = f.to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = dgs_sample(f16, p.float(), k.float())
    assert out.dtype == torch.float32 and out.device == f.device
    g = torch.randn_like(out)
    out.backward(g)
    assert f16.grad.dtype == torch.bfloat16
    fr = f16.detach().double().cpu().requires_grad_(True)
    ref = dgs_sample_reference(fr, p.cpu(), k.cpu())
    ref.backward(g.double().cpu())
    torch.testing.assert_close(out.double().cpu(), ref.detach(), rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    # the gradient is rounded to bfloat16 (8 bits of mantissa): ~4e-3 relative
    scale = fr.grad.abs().max().item()
    torch.testing.assert_close(f16.grad.double().cpu(), fr.grad, rtol=1e-2, atol=1e-2 * scale)


@pytest.mark.cuda
def test_registered_op_on_cuda_gradcheck():
    """First and second derivatives of ``dgs_sample`` w.r.t. the features on CUDA (float64): its
    backward is the kernel's transpose, and the backward's own derivative is the forward op. The
    kernel's backward adds with atomics, so repeated backward passes may differ in the last bits
    (``nondet_tol``)."""
    from dgs_core.ops import dgs_sample

    f, p, k = _inputs("cuda")
    small = f[:, :3, :4, :5].contiguous().requires_grad_(True)
    pts = p[:, :7].contiguous()
    assert torch.autograd.gradcheck(lambda x: dgs_sample(x, pts, k), (small,), nondet_tol=1e-12)
    assert torch.autograd.gradgradcheck(lambda x: dgs_sample(x, pts, k), (small,), nondet_tol=1e-12)
