"""Public DGS ops: input checks, dtype policy, then the registered custom op (or the reference).

Dtype policy: float32 and float64 are computed in their own precision. float16/bfloat16 inputs
(e.g. under AMP autocast) are upcast to float32, accumulated in float32, and the result is float32
(like ``grid_sample`` under autocast); the gradient reaching ``features`` is cast back to its dtype
by autograd.
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import validate
from .reference import dgs_sample_3d_reference, dgs_sample_reference


def _compute_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def dgs_sample(features: Tensor, points: Tensor, intrinsics: Tensor, *, check_values: bool = True) -> Tensor:
    """Differentiable Gradient Sampling: bilinear feature sample and its camera-space gradient.

    Args:
        features: (B, C, H, W) float feature map (any memory format; channels-last is fastest on CPU).
        points: (B, Q, 3) camera frame (OpenCV: x right, y down, z forward), metres, z > 1e-6.
            Points are *data*: no gradient flows to them; a ``points`` that requires grad raises
            ValueError (detach it, or use grid_sample + autograd for coordinate gradients).
        intrinsics: (B, 4) normalised (a_u, a_v, c_u, c_v) with u = a_u x / z + c_u, v = a_v y / z + c_v
            in align_corners=False normalised image coordinates (a_u = 2 fx / W, c_u = 2 cx / W - 1).
            Data, like ``points``.
        check_values: reject non-finite points/intrinsics and z <= 1e-6 with ValueError (default).
            On CUDA this costs one host synchronisation; False skips it.

    Returns:
        (B, Q, 4, C): [value, d/dx, d/dy, d/dz] (derivatives per metre, camera frame). The value equals
        ``grid_sample(features, (u, v), "bilinear", "border", align_corners=False)``; a derivative is 0
        along an image axis where the sample is clamped (outside the outer pixel centres). dtype:
        float64 for float64 features, else float32. Gradients flow to ``features`` (closed form).
    """
    validate.check_static("dgs_sample", "features", features, 4, "points", points, "intrinsics", intrinsics,
                          ((-1, 4),))
    dt = _compute_dtype(features)
    features, points, intrinsics = features.to(dt), points.to(dt), intrinsics.to(dt)
    from . import registry  # late import: registration pulls in the kernels
    return registry.sample_2d(features, points, intrinsics, check_values)


def dgs_sample_3d(volume: Tensor, grid: Tensor, size: Tensor, *, check_values: bool = True) -> Tensor:
    """Trilinear DGS on a voxel volume: sampled value and its gradient w.r.t. physical coordinates.

    Args:
        volume: (B, C, D, H, W) float voxel features.
        grid: (B, Q, 3) normalised coordinates in [-1, 1] (x -> W, y -> H, z -> D), align_corners=False,
            border clamping, as ``F.grid_sample`` on 5-D input. Data (no gradient; requires_grad raises).
        size: (B, 3) or (3,) physical box edge lengths along x, y, z in metres (> 0). Data.
        check_values: reject non-finite grid/size and size <= 0 (one host sync on CUDA).

    Returns:
        (B, Q, 4, C): [value, d/dX, d/dY, d/dZ] per metre along the box axes (d/dnormalised * 2 / size),
        0 along an axis where the sample is clamped. dtype as for :func:`dgs_sample`.
    """
    validate.check_static("dgs_sample_3d", "volume", volume, 5, "grid", grid, "size", size, ((-1, 3), (3,)))
    dt = _compute_dtype(volume)
    volume, grid = volume.to(dt), grid.to(dt)
    size = size.to(dt).expand(volume.shape[0], 3).contiguous()
    from . import registry
    return registry.sample_3d(volume, grid, size, check_values)


__all__ = ["dgs_sample", "dgs_sample_3d", "dgs_sample_reference", "dgs_sample_3d_reference"]
