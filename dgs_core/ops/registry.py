"""``torch.library`` registration of the DGS ops, so they compose with autograd, torch.compile and AMP.

Ops (namespace ``dgs``):

- ``dgs::sample(features, points, intrinsics, check_values) -> (B,Q,4,C)`` and its backward
  ``dgs::sample_backward(grad, points, intrinsics, H, W) -> (B,C,H,W)``;
- ``dgs::sample_3d(volume, grid, size, check_values) -> (B,Q,4,C)`` and
  ``dgs::sample_3d_backward(grad, grid, size, D, H, W) -> (B,C,D,H,W)``.

Each has a fake (meta) implementation for tracing. The backward ops are linear in ``grad`` and are
themselves differentiable (their derivative is the forward op), so double backward works.
Device dispatch: CPU -> Numba kernels (``cpu.py``); CUDA -> Triton kernels (``triton_kernels.py``) for the
2-D op, pure torch for the 3-D op; other devices -> pure torch. Autocast (CPU and CUDA) casts
float16/bfloat16 inputs to float32; inside the op any non-float64 input is computed in float32.
Feature gradients are returned in channels-last memory format (no transposing copy).
"""
from __future__ import annotations

import torch
from torch import Tensor

from . import cpu, reference, triton_kernels, validate


def _dt(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _use_triton(t: Tensor) -> bool:
    return t.device.type == "cuda" and triton_kernels.available()


def _empty_cl(shape: tuple[int, ...], like: Tensor, dtype: torch.dtype) -> Tensor:
    fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
    return torch.empty(shape, dtype=dtype, device=like.device, memory_format=fmt)


# ---------------------------------------------------------------- 2-D
@torch.library.custom_op("dgs::sample", mutates_args=())
def _sample(features: Tensor, points: Tensor, intrinsics: Tensor, check_values: bool) -> Tensor:
    dt = _dt(features)
    features, points, intrinsics = features.to(dt), points.to(dt), intrinsics.to(dt)
    if check_values:
        validate.check_values_2d(points, intrinsics)
    if features.device.type == "cpu":
        return cpu.sample_2d_forward(features, points, intrinsics)
    if _use_triton(features):
        return triton_kernels.sample_2d_forward(features, points, intrinsics)
    idx, coef = reference.coefficients_2d(points, intrinsics, *features.shape[2:])
    return reference.combine(cpu.channels_last_flat(features), idx, coef)


@_sample.register_fake
def _(features, points, intrinsics, check_values):
    b, c = features.shape[:2]
    return features.new_empty((b, points.shape[1], 4, c), dtype=_dt(features))


@torch.library.custom_op("dgs::sample_backward", mutates_args=())
def _sample_backward(grad: Tensor, points: Tensor, intrinsics: Tensor, height: int, width: int) -> Tensor:
    dt = _dt(grad)
    grad, points, intrinsics = grad.to(dt), points.to(dt), intrinsics.to(dt)
    if grad.device.type == "cpu":
        return cpu.sample_2d_backward(grad, points, intrinsics, height, width)
    if _use_triton(grad):
        return triton_kernels.sample_2d_backward(grad, points, intrinsics, height, width)
    b, _, _, c = grad.shape
    idx, coef = reference.coefficients_2d(points, intrinsics, height, width)
    gflat = grad.new_zeros((b, height * width, c))
    cpu.combine_backward_torch(grad, idx, coef, gflat)
    return gflat.reshape(b, height, width, c).permute(0, 3, 1, 2)


@_sample_backward.register_fake
def _(grad, points, intrinsics, height, width):
    return _empty_cl((grad.shape[0], grad.shape[3], height, width), grad, _dt(grad))


def _setup_2d(ctx, inputs, output) -> None:
    features, points, intrinsics, _ = inputs
    ctx.save_for_backward(points, intrinsics)
    ctx.hw = tuple(features.shape[2:])
    ctx.feat_dtype = features.dtype


def _backward_2d(ctx, grad: Tensor):
    points, intrinsics = ctx.saved_tensors
    gfeat = torch.ops.dgs.sample_backward(grad, points, intrinsics, *ctx.hw)
    return gfeat.to(ctx.feat_dtype), None, None, None


def _setup_2d_bwd(ctx, inputs, output) -> None:
    _, points, intrinsics, _, _ = inputs
    ctx.save_for_backward(points, intrinsics)


def _backward_2d_bwd(ctx, gg: Tensor):
    # sample_backward is linear in grad with the transposed coefficients: its derivative is sample.
    points, intrinsics = ctx.saved_tensors
    return torch.ops.dgs.sample(gg, points, intrinsics, False), None, None, None, None


_sample.register_autograd(_backward_2d, setup_context=_setup_2d)
_sample_backward.register_autograd(_backward_2d_bwd, setup_context=_setup_2d_bwd)


# ---------------------------------------------------------------- 3-D
@torch.library.custom_op("dgs::sample_3d", mutates_args=())
def _sample_3d(volume: Tensor, grid: Tensor, size: Tensor, check_values: bool) -> Tensor:
    dt = _dt(volume)
    volume, grid, size = volume.to(dt), grid.to(dt), size.to(dt)
    if check_values:
        validate.check_values_3d(grid, size)
    if volume.device.type == "cpu":
        return cpu.sample_3d_forward(volume, grid, size)
    idx, coef = reference.coefficients_3d(grid, size, *volume.shape[2:])
    return reference.combine(cpu.channels_last_flat(volume), idx, coef)


@_sample_3d.register_fake
def _(volume, grid, size, check_values):
    b, c = volume.shape[:2]
    return volume.new_empty((b, grid.shape[1], 4, c), dtype=_dt(volume))


@torch.library.custom_op("dgs::sample_3d_backward", mutates_args=())
def _sample_3d_backward(grad: Tensor, grid: Tensor, size: Tensor, depth: int, height: int, width: int) -> Tensor:
    dt = _dt(grad)
    grad, grid, size = grad.to(dt), grid.to(dt), size.to(dt)
    if grad.device.type == "cpu":
        return cpu.sample_3d_backward(grad, grid, size, depth, height, width)
    b, _, _, c = grad.shape
    idx, coef = reference.coefficients_3d(grid, size, depth, height, width)
    gflat = grad.new_zeros((b, depth * height * width, c))
    cpu.combine_backward_torch(grad, idx, coef, gflat)
    return gflat.reshape(b, depth, height, width, c).permute(0, 4, 1, 2, 3)


@_sample_3d_backward.register_fake
def _(grad, grid, size, depth, height, width):
    return _empty_cl((grad.shape[0], grad.shape[3], depth, height, width), grad, _dt(grad))


def _setup_3d(ctx, inputs, output) -> None:
    volume, grid, size, _ = inputs
    ctx.save_for_backward(grid, size)
    ctx.dhw = tuple(volume.shape[2:])
    ctx.feat_dtype = volume.dtype


def _backward_3d(ctx, grad: Tensor):
    grid, size = ctx.saved_tensors
    gvol = torch.ops.dgs.sample_3d_backward(grad, grid, size, *ctx.dhw)
    return gvol.to(ctx.feat_dtype), None, None, None


def _setup_3d_bwd(ctx, inputs, output) -> None:
    _, grid, size, _, _, _ = inputs
    ctx.save_for_backward(grid, size)


def _backward_3d_bwd(ctx, gg: Tensor):
    grid, size = ctx.saved_tensors
    return torch.ops.dgs.sample_3d(gg, grid, size, False), None, None, None, None, None


_sample_3d.register_autograd(_backward_3d, setup_context=_setup_3d)
_sample_3d_backward.register_autograd(_backward_3d_bwd, setup_context=_setup_3d_bwd)

for _op in (_sample, _sample_backward, _sample_3d, _sample_3d_backward):
    for _dev in ("cpu", "cuda"):
        _op.register_autocast(_dev, torch.float32)


def sample_2d(features: Tensor, points: Tensor, intrinsics: Tensor, check_values: bool) -> Tensor:
    """Call ``dgs::sample`` (inputs already checked by ``api.dgs_sample``)."""
    return torch.ops.dgs.sample(features, points, intrinsics, check_values)


def sample_3d(volume: Tensor, grid: Tensor, size: Tensor, check_values: bool) -> Tensor:
    """Call ``dgs::sample_3d`` (inputs already checked by ``api.dgs_sample_3d``)."""
    return torch.ops.dgs.sample_3d(volume, grid, size, check_values)
