"""Pure-PyTorch reference of the DGS op (SPEC §2): closed form, differentiable by plain autograd.

This module is the kept reference: the fast CPU kernel and the Triton CUDA kernel are tested
against it, and it is also the fallback when no fast kernel applies.

Formulation (shared with the kernels). For every query the op reads ``K`` feature vectors
(the bilinear corners, K = 4, or the trilinear corners, K = 8) and forms four outputs as a
linear combination of them::

    out[b, q, o, :] = sum_k coef[b, q, o, k] * feat[b, idx[b, q, k], :]      o = value, d/dx, d/dy, d/dz

so the backward w.r.t. the features is the transpose: corner ``k`` receives
``sum_o coef[b, q, o, k] * grad_out[b, q, o, :]`` (SPEC §2, paper Eq. 8/11/12). The coefficient
matrix is the closed form of the interpolation weights and of their derivatives, chained to camera
space. Points and intrinsics are data: no gradient flows to them.

Coordinate conventions (align_corners=False, border padding, as ``F.grid_sample``): the continuous
pixel coordinate of normalised ``u`` on an axis of ``W`` pixels is ``ix = ((u + 1) W - 1) / 2``,
clamped to ``[0, W - 1]``. The left corner is ``min(floor(ix), W - 2)`` (so a query exactly on the
last pixel centre uses the last cell, its derivative is the one-sided difference from the inside),
and the derivative along an axis is 0 where ``ix`` lies strictly outside ``[0, W - 1]``.
"""
from __future__ import annotations

import torch
from torch import Tensor

# Smallest accepted camera depth (metres). Points with z <= Z_MIN are rejected: 1/z would blow up.
Z_MIN = 1e-6


def _axis(coord: Tensor, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Corner indices, fraction and derivative mask of normalised ``coord`` on an axis of ``size``.

    Returns ``(i0, i1, frac, dscale)``: int64 left/right corner, fractional offset in [0, 1] (same
    dtype as ``coord``), and ``d ix / d coord`` = ``size / 2`` inside the outer pixel centres, else 0.
    """
    ix = ((coord + 1) * size - 1) / 2
    inside = (ix >= 0) & (ix <= size - 1)
    ixc = ix.clamp(0, size - 1)
    i0 = ixc.floor().clamp(max=max(size - 2, 0))
    frac = ixc - i0
    i0 = i0.long()
    i1 = (i0 + 1).clamp(max=size - 1)
    dscale = torch.where(inside, torch.full_like(coord, size / 2), torch.zeros_like(coord))
    return i0, i1, frac, dscale


def coefficients_2d(points: Tensor, intrinsics: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Corner indices and output coefficients of the 2-D DGS op.

    Args:
        points: (B, Q, 3) float, camera frame (OpenCV: x right, y down, z forward), metres.
        intrinsics: (B, 4) float, normalised (a_u, a_v, c_u, c_v): u = a_u x / z + c_u, v = a_v y / z + c_v.
        height, width: feature map size H, W in pixels.

    Returns:
        idx: (B, Q, 4) int64 flat pixel indices y * W + x of corners (x0,y0), (x1,y0), (x0,y1), (x1,y1).
        coef: (B, Q, 4, 4) in the points' dtype; coef[..., o, k] weights corner k in output o
            (o = value, d/dx, d/dy, d/dz in camera space, per metre).
    """
    x, y, z = points.unbind(-1)
    a_u, a_v, c_u, c_v = (t[:, None] for t in intrinsics.to(points.dtype).unbind(-1))
    u = a_u * x / z + c_u
    v = a_v * y / z + c_v
    x0, x1, fx, su = _axis(u, width)
    y0, y1, fy, sv = _axis(v, height)
    gx, gy = 1 - fx, 1 - fy
    w = torch.stack([gx * gy, fx * gy, gx * fy, fx * fy], -1)
    # d value / d u and d value / d v, per corner (derivative of the weights).
    du = su[..., None] * torch.stack([-gy, gy, -fy, fy], -1)
    dv = sv[..., None] * torch.stack([-gx, -fx, gx, fx], -1)
    inv_z = (1 / z)[..., None]
    dx = du * (a_u[..., None] * inv_z)
    dy = dv * (a_v[..., None] * inv_z)
    dz = -(du * (u - c_u)[..., None] + dv * (v - c_v)[..., None]) * inv_z
    coef = torch.stack([w, dx, dy, dz], -2)
    idx = torch.stack([y0 * width + x0, y0 * width + x1, y1 * width + x0, y1 * width + x1], -1)
    return idx, coef


def coefficients_3d(grid: Tensor, size: Tensor, depth: int, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Corner indices and output coefficients of the 3-D (trilinear) DGS op.

    Args:
        grid: (B, Q, 3) float, normalised coordinates in [-1, 1] (x -> W, y -> H, z -> D).
        size: (B, 3) float, physical edge lengths of the box along x, y, z, metres.
        depth, height, width: volume size D, H, W in voxels.

    Returns:
        idx: (B, Q, 8) int64 flat voxel indices (z * H + y) * W + x, corner k has bits (x, y, z) = (k&1, k>>1&1, k>>2).
        coef: (B, Q, 4, 8); rows value, d/dX, d/dY, d/dZ per metre (d/dnormalised * 2 / size).
    """
    gx_, gy_, gz_ = grid.unbind(-1)
    x0, x1, fx, sx = _axis(gx_, width)
    y0, y1, fy, sy = _axis(gy_, height)
    z0, z1, fz, sz = _axis(gz_, depth)
    size = size.to(grid.dtype)
    scale = 2 / size[:, None, :]  # d normalised / d metre, (B, 1, 3)
    xs, ys, zs = (x0, x1), (y0, y1), (z0, z1)
    wx, wy, wz = (1 - fx, fx), (1 - fy, fy), (1 - fz, fz)
    dwx, dwy, dwz = (-sx, sx), (-sy, sy), (-sz, sz)
    idx, rows = [], []
    for k in range(8):
        i, j, l = k & 1, (k >> 1) & 1, k >> 2
        idx.append((zs[l] * height + ys[j]) * width + xs[i])
        rows.append(torch.stack([
            wx[i] * wy[j] * wz[l],
            dwx[i] * wy[j] * wz[l] * scale[..., 0],
            wx[i] * dwy[j] * wz[l] * scale[..., 1],
            wx[i] * wy[j] * dwz[l] * scale[..., 2],
        ], -1))
    return torch.stack(idx, -1), torch.stack(rows, -1)


def combine(feat_flat: Tensor, idx: Tensor, coef: Tensor) -> Tensor:
    """out[b,q,o,:] = sum_k coef[b,q,o,k] feat_flat[b, idx[b,q,k], :].

    feat_flat: (B, S, C) channels-last features; idx: (B, Q, K) int64; coef: (B, Q, 4, K).
    Returns (B, Q, 4, C) in ``coef``'s dtype. Differentiable w.r.t. ``feat_flat`` by autograd.
    """
    b, q, k = idx.shape
    corners = torch.gather(feat_flat, 1, idx.reshape(b, q * k, 1).expand(-1, -1, feat_flat.shape[-1]))
    return torch.matmul(coef, corners.reshape(b, q, k, -1).to(coef.dtype))


def dgs_sample_reference(features: Tensor, points: Tensor, intrinsics: Tensor) -> Tensor:
    """Reference DGS op: bilinear sample of ``features`` at projected ``points`` and its camera-space gradient.

    Args:
        features: (B, C, H, W) float32/float64 feature map.
        points: (B, Q, 3) camera-frame x, y, z in metres (z > 0). Data: no gradient reaches it.
        intrinsics: (B, 4) normalised (a_u, a_v, c_u, c_v), see module docstring. Data.

    Returns:
        (B, Q, 4, C) in ``features``' dtype: [value, d/dx, d/dy, d/dz] (derivatives per metre). The value
        equals ``F.grid_sample(features, grid, "bilinear", "border", align_corners=False)``.
        Differentiable w.r.t. ``features`` by autograd (this *is* the closed-form backward).
    """
    b, c, h, w = features.shape
    idx, coef = coefficients_2d(points.detach().to(features.dtype), intrinsics.detach(), h, w)
    feat_flat = features.permute(0, 2, 3, 1).reshape(b, h * w, c)
    return combine(feat_flat, idx, coef)


def dgs_sample_3d_reference(volume: Tensor, grid: Tensor, size: Tensor) -> Tensor:
    """Reference 3-D DGS op: trilinear sample of ``volume`` and its gradient w.r.t. physical coordinates.

    Args:
        volume: (B, C, D, H, W) float32/float64 voxel features.
        grid: (B, Q, 3) normalised coordinates in [-1, 1], (x -> W, y -> H, z -> D), align_corners=False,
            border clamping (as ``F.grid_sample`` on 5-D input). Data: no gradient reaches it.
        size: (B, 3) or (3,) physical box size along x, y, z in metres. Data.

    Returns:
        (B, Q, 4, C) in ``volume``'s dtype: [value, d/dX, d/dY, d/dZ] per metre along the box axes.
    """
    b, c, d, h, w = volume.shape
    size = size.detach().to(volume.dtype)
    if size.dim() == 1:
        size = size.expand(b, 3)
    idx, coef = coefficients_3d(grid.detach().to(volume.dtype), size, d, h, w)
    feat_flat = volume.permute(0, 2, 3, 4, 1).reshape(b, d * h * w, c)
    return combine(feat_flat, idx, coef)
