"""CPU implementation of the DGS ops: torch tensors in, Numba kernels (``cpu_kernels.py``) inside.

All functions take float32 or float64 tensors already in the compute dtype (see ``api.py``) and
return new tensors; they are the bodies of the ``torch.library`` custom ops (``registry.py``).
If Numba cannot be imported, the pure-torch formulation of ``reference.py`` is used instead, with
one warning.
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor

from . import reference

try:
    import numba

    from . import cpu_kernels as _k
except Exception as exc:  # pragma: no cover - numba is a hard dependency; keep the op usable anyway
    _k = None
    warnings.warn(f"dgs_core.ops.cpu: Numba kernels unavailable ({exc!r}); using the slower pure-torch "
                  "path. Install numba>=0.60 to get the fast CPU kernel.", RuntimeWarning, stacklevel=2)


# Below this many multiply-adds (B * Q * C * corners) a call runs single-threaded (see cpu_kernels._dual).
PARALLEL_MIN_WORK = 1 << 21


def _run(kernel, work: int, *arrays) -> None:
    """Run a Numba kernel, threaded like torch (same thread count) when the work is large enough."""
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if threads == 1 or work < PARALLEL_MIN_WORK:
        _k.SERIAL[kernel.__name__](*arrays)
    else:
        numba.set_num_threads(threads)
        kernel(*arrays)


def channels_last_flat(features: Tensor) -> Tensor:
    """(B, C, *spatial) -> (B, S, C) contiguous view/copy (free when already channels-last)."""
    b, c = features.shape[:2]
    perm = (0, *range(2, features.dim()), 1)
    return features.permute(perm).contiguous().reshape(b, -1, c)


def _spatial_grad(gflat: Tensor, spatial: tuple[int, ...]) -> Tensor:
    """(B, S, C) gradient -> (B, C, *spatial) view in channels-last memory format (no copy)."""
    b, _, c = gflat.shape
    perm = (0, len(spatial) + 1, *range(1, len(spatial) + 1))
    return gflat.reshape(b, *spatial, c).permute(perm)


def sample_2d_forward(features: Tensor, points: Tensor, intrinsics: Tensor) -> Tensor:
    """(B,C,H,W), (B,Q,3), (B,4) -> (B,Q,4,C); see ``api.dgs_sample``."""
    b, c, h, w = features.shape
    feat = channels_last_flat(features)
    pts, intr = points.contiguous(), intrinsics.contiguous()
    if _k is None:
        idx, coef = reference.coefficients_2d(pts, intr, h, w)
        return reference.combine(feat, idx, coef)
    out = torch.empty((b, points.shape[1], 4, c), dtype=features.dtype)
    _run(_k.sample_2d_fwd, out.numel(), feat.numpy(), pts.numpy(), intr.numpy(), h, w, out.numpy())
    return out


def sample_2d_backward(grad: Tensor, points: Tensor, intrinsics: Tensor, h: int, w: int) -> Tensor:
    """(B,Q,4,C) output gradient -> (B,C,H,W) feature gradient (channels-last memory format)."""
    b, _, _, c = grad.shape
    grad, pts, intr = grad.contiguous(), points.contiguous(), intrinsics.contiguous()
    gflat = torch.zeros((b, h * w, c), dtype=grad.dtype)
    if _k is None:
        idx, coef = reference.coefficients_2d(pts, intr, h, w)
        combine_backward_torch(grad, idx, coef, gflat)
    else:
        _run(_k.sample_2d_bwd, grad.numel(), grad.numpy(), pts.numpy(), intr.numpy(), h, w, gflat.numpy())
    return _spatial_grad(gflat, (h, w))


def sample_3d_forward(volume: Tensor, grid: Tensor, size: Tensor) -> Tensor:
    """(B,C,D,H,W), (B,Q,3), (B,3) -> (B,Q,4,C); see ``api.dgs_sample_3d``."""
    b, c, d, h, w = volume.shape
    feat = channels_last_flat(volume)
    idx, coef = reference.coefficients_3d(grid, size, d, h, w)
    if _k is None:
        return reference.combine(feat, idx, coef)
    out = torch.empty((b, grid.shape[1], 4, c), dtype=volume.dtype)
    _run(_k.combine_fwd, out.numel() * 2, feat.numpy(), idx.contiguous().numpy(), coef.contiguous().numpy(),
         out.numpy())
    return out


def sample_3d_backward(grad: Tensor, grid: Tensor, size: Tensor, d: int, h: int, w: int) -> Tensor:
    """(B,Q,4,C) output gradient -> (B,C,D,H,W) volume gradient (channels-last-3d memory format)."""
    b, _, _, c = grad.shape
    grad = grad.contiguous()
    idx, coef = reference.coefficients_3d(grid, size, d, h, w)
    gflat = torch.zeros((b, d * h * w, c), dtype=grad.dtype)
    if _k is None:
        combine_backward_torch(grad, idx, coef, gflat)
    else:
        _run(_k.combine_bwd, grad.numel() * 2, grad.numpy(), idx.contiguous().numpy(), coef.contiguous().numpy(),
             gflat.numpy())
    return _spatial_grad(gflat, (d, h, w))


def combine_backward_torch(grad: Tensor, idx: Tensor, coef: Tensor, gflat: Tensor) -> None:
    """Pure-torch transpose of ``reference.combine``: gflat[b, idx[b,q,k]] += sum_o coef[b,q,o,k] grad[b,q,o]."""
    b, q, k = idx.shape
    contrib = torch.matmul(coef.transpose(-1, -2), grad)  # (B, Q, K, C)
    flat_idx = (idx + torch.arange(b, device=idx.device)[:, None, None] * gflat.shape[1]).reshape(-1)
    gflat.view(-1, gflat.shape[-1]).index_add_(0, flat_idx, contrib.reshape(b * q * k, -1))
