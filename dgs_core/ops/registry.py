"""Dispatch of the DGS ops (temporary: reference only; the custom-op registration replaces this)."""
from __future__ import annotations

from torch import Tensor

from . import validate
from .reference import dgs_sample_3d_reference, dgs_sample_reference


def sample_2d(features: Tensor, points: Tensor, intrinsics: Tensor, check_values: bool) -> Tensor:
    if check_values:
        validate.check_values_2d(points, intrinsics)
    return dgs_sample_reference(features, points, intrinsics)


def sample_3d(volume: Tensor, grid: Tensor, size: Tensor, check_values: bool) -> Tensor:
    if check_values:
        validate.check_values_3d(grid, size)
    return dgs_sample_3d_reference(volume, grid, size)
