"""The Triton (CUDA) kernels of the DGS op, run on CPU tensors under TRITON_INTERPRET=1.

The interpreter flag must be set before Triton kernels are defined, so the check runs in a fresh
subprocess. It compares the kernels' forward and backward with the pure-torch reference.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import torch
from dgs_core.ops import reference, triton_kernels
torch.manual_seed(0)
for dt, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
    B, C, H, W, Q = 2, 70, 5, 8, 45          # C not a multiple of the channel block, Q of BLOCK_Q
    f = torch.randn(B, C, H, W, dtype=dt)
    z = 0.5 + torch.rand(B, Q, dtype=dt)
    uv = 2.6 * torch.rand(B, Q, 2, dtype=dt) - 1.3   # inside, clamped band and outside
    k = torch.tensor([[1.8, 2.4, 0.05, -0.1], [1.2, 1.1, -0.2, 0.1]], dtype=dt)
    p = torch.cat([(uv - k[:, None, 2:]) * z[..., None] / k[:, None, :2], z[..., None]], -1)
    fr = f.clone().requires_grad_(True)
    ref = reference.dgs_sample_reference(fr, p, k)
    g = torch.randn_like(ref)
    ref.backward(g)
    out = triton_kernels.sample_2d_forward(f, p, k)
    gf = triton_kernels.sample_2d_backward(g, p, k, H, W)
    for a, e in ((out, ref.detach()), (gf, fr.grad)):
        err = float(((a - e).abs().max() / e.abs().max()))
        assert err < tol, (dt, err)
print("OK")
"""


def test_triton_kernels_match_reference_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr
