"""Input checks of the DGS ops: cheap, explicit, and raising ``ValueError`` that names the argument.

Static checks (rank, shape, device, dtype, requires_grad) run in the Python wrapper and are free
under ``torch.compile``. Value checks (z <= Z_MIN, non-finite numbers) need to look at the data; they
run inside the custom op's real implementation (opaque to the compiler). On CUDA they cost one
host synchronisation per call (one fused reduction); pass ``check_values=False`` to skip them.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .reference import Z_MIN

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_WHERE = "dgs_core.ops"


def _need(cond: bool, arg: str, expected: str, found: str, fix: str) -> None:
    if not cond:
        raise ValueError(f"{_WHERE}: argument '{arg}': expected {expected}, found {found}. {fix}")


def check_static(fn: str, feat_name: str, feat: Tensor, feat_rank: int, pts_name: str, pts: Tensor,
                 par_name: str, par: Tensor, par_shapes: tuple[tuple[int, ...], ...]) -> None:
    """Rank/shape/device/dtype/requires_grad checks shared by the 2-D and 3-D ops (no data access)."""
    for name, t in ((feat_name, feat), (pts_name, pts), (par_name, par)):
        _need(isinstance(t, Tensor), name, "a torch.Tensor", type(t).__name__, f"Pass tensors to {fn}.")
        _need(t.dtype in FLOAT_DTYPES, name, "a floating dtype (float16/bfloat16/float32/float64)",
              str(t.dtype), "Cast it with .float().")
        _need(t.device == feat.device, name, f"the device of '{feat_name}' ({feat.device})", str(t.device),
              "Move all inputs to one device.")
    _need(feat.dim() == feat_rank, feat_name, f"a {feat_rank}-D tensor", f"shape {tuple(feat.shape)}",
          "See the docstring for the layout.")
    b = feat.shape[0]
    _need(pts.dim() == 3 and pts.shape[0] == b and pts.shape[2] == 3, pts_name, f"shape ({b}, Q, 3)",
          f"shape {tuple(pts.shape)}", "Points are per batch element, xyz last.")
    shapes = [tuple(b if s == -1 else s for s in shp) for shp in par_shapes]
    _need(tuple(par.shape) in shapes, par_name, " or ".join(str(s) for s in shapes), f"shape {tuple(par.shape)}",
          "See the docstring for the layout.")
    _need(all(s > 0 for s in feat.shape[1:]), feat_name, "non-empty channel/spatial dims",
          f"shape {tuple(feat.shape)}", "Pass a non-empty feature map.")
    for name, t in ((pts_name, pts), (par_name, par)):
        _need(not t.requires_grad, name, "a tensor without requires_grad (it is data: the op returns no "
              "gradient for it)", "requires_grad=True",
              "Detach it, or use grid_sample with autograd if you need gradients w.r.t. coordinates.")


def check_values_2d(points: Tensor, intrinsics: Tensor) -> None:
    """Raise ValueError for non-finite points/intrinsics or z <= Z_MIN (one host sync on CUDA)."""
    # Fast path: one fused boolean, one sync; diagnose only on failure.
    ok = (points[..., 2] > Z_MIN).all() & torch.isfinite(points).all() & torch.isfinite(intrinsics).all()
    if bool(ok):
        return
    bad = torch.stack([~torch.isfinite(points).all(), ~torch.isfinite(intrinsics).all(),
                       (points[..., 2] <= Z_MIN).any()]).tolist()
    _need(not bad[0], "points", "finite values", "NaN or inf", "Filter or fix the query points.")
    _need(not bad[1], "intrinsics", "finite values", "NaN or inf", "Check the camera intrinsics.")
    if bad[2]:
        zmin = float(points[..., 2].min())
        _need(False, "points", f"camera depth z > {Z_MIN} m for every point", f"min z = {zmin:g}",
              "Drop points behind or at the camera before sampling.")


def check_values_3d(grid: Tensor, size: Tensor) -> None:
    """Raise ValueError for non-finite grid/size or size <= 0 (one host sync on CUDA)."""
    bad = torch.stack([~torch.isfinite(grid).all(), ~torch.isfinite(size).all(), (size <= 0).any()]).tolist()
    _need(not bad[0], "grid", "finite values", "NaN or inf", "Filter or fix the query coordinates.")
    _need(not bad[1] and not bad[2], "size", "finite positive box sizes (metres)", str(size.tolist()),
          "Pass the physical edge lengths of the volume.")
