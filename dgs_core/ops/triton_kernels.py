"""Triton kernels of the 2-D DGS op (CUDA; also runs on CPU tensors under ``TRITON_INTERPRET=1``).

Layout: features channels-last ``(B, H*W, C)``; one program handles BLOCK_Q queries x BLOCK_C
channels of one batch element. Forward: each program gathers the four corner rows and writes the
four output rows (value, d/dx, d/dy, d/dz) of its tile. Backward: each program forms the four
corner contributions of its tile and adds them with ``tl.atomic_add`` (fast on GPUs; the summation
order, hence the last bits of the feature gradient, may vary run to run, as for ``grid_sample``'s
CUDA backward). Coefficients are recomputed in the backward, no per-call buffer.

The coefficient formulas and their order of operations are those of ``reference.coefficients_2d``.
The 3-D op has no Triton kernel yet: on CUDA it uses the pure-torch path (``cpu.py`` fallbacks).
"""
from __future__ import annotations

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except Exception:  # pragma: no cover - triton is optional on CPU-only installs
    triton = None

BLOCK_Q = 32


def available() -> bool:
    """True when Triton is importable (kernels can be launched)."""
    return triton is not None


if triton is not None:

    @triton.jit
    def _axis(coord, size):
        ix = ((coord + 1.0) * size - 1.0) / 2.0
        inside = (ix >= 0.0) & (ix <= size - 1.0)
        ds = tl.where(inside, size / 2.0, 0.0)
        ixc = tl.minimum(tl.maximum(ix, 0.0), size - 1.0)
        i0f = tl.minimum(tl.floor(ixc), tl.maximum(size - 2, 0).to(ixc.dtype))
        frac = ixc - i0f
        i0 = i0f.to(tl.int64)
        i1 = tl.minimum(i0 + 1, size - 1)
        return i0, i1, frac, ds.to(coord.dtype)

    @triton.jit
    def _tile(Q, C, BLOCK_Q: tl.constexpr, BLOCK_C: tl.constexpr):
        """This program's tile: batch index b (int64), query offsets (BLOCK_Q,), channel offsets
        (BLOCK_C,), the query mask (BLOCK_Q,) and the tile mask (BLOCK_Q, BLOCK_C)."""
        pid_q = tl.program_id(0)
        pid_c = tl.program_id(1)
        nqb = tl.cdiv(Q, BLOCK_Q)
        b = (pid_q // nqb).to(tl.int64)  # 64-bit offsets: B*Q*4*C may exceed 2**31
        offs_q = (pid_q % nqb) * BLOCK_Q + tl.arange(0, BLOCK_Q)
        offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
        mask_q = offs_q < Q
        return b, offs_q, offs_c, mask_q, mask_q[:, None] & (offs_c < C)[None, :]

    @triton.jit
    def _coef(pts_ptr, intr_ptr, b, offs_q, mask_q, Q, H, W):
        base = (b * Q + offs_q) * 3
        x = tl.load(pts_ptr + base, mask=mask_q, other=0.0)
        y = tl.load(pts_ptr + base + 1, mask=mask_q, other=0.0)
        z = tl.load(pts_ptr + base + 2, mask=mask_q, other=1.0)
        a_u = tl.load(intr_ptr + b * 4)
        a_v = tl.load(intr_ptr + b * 4 + 1)
        c_u = tl.load(intr_ptr + b * 4 + 2)
        c_v = tl.load(intr_ptr + b * 4 + 3)
        u = a_u * x / z + c_u
        v = a_v * y / z + c_v
        x0, x1, fx, su = _axis(u, W)
        y0, y1, fy, sv = _axis(v, H)
        gx = 1.0 - fx
        gy = 1.0 - fy
        inv_z = 1.0 / z
        kx = a_u * inv_z
        ky = a_v * inv_z
        ru = u - c_u
        rv = v - c_v
        return x0, x1, y0, y1, fx, fy, gx, gy, su, sv, kx, ky, ru, rv, inv_z

    @triton.jit
    def _corner(wv, du, dv, kx, ky, ru, rv, inv_z):
        """Rows (value, d/dx, d/dy, d/dz) of one corner's coefficient, each (BLOCK_Q, 1)."""
        return (wv[:, None], (du * kx)[:, None], (dv * ky)[:, None], (-(du * ru + dv * rv) * inv_z)[:, None])

    @triton.jit
    def _fwd_kernel(feat_ptr, pts_ptr, intr_ptr, out_ptr, Q, H, W, C,
                    BLOCK_Q: tl.constexpr, BLOCK_C: tl.constexpr):
        b, offs_q, offs_c, mask_q, mask = _tile(Q, C, BLOCK_Q, BLOCK_C)
        x0, x1, y0, y1, fx, fy, gx, gy, su, sv, kx, ky, ru, rv, inv_z = _coef(
            pts_ptr, intr_ptr, b, offs_q, mask_q, Q, H, W)
        row = b * H * W
        c2 = offs_c[None, :]
        f00 = tl.load(feat_ptr + (row + y0 * W + x0)[:, None] * C + c2, mask=mask, other=0.0)
        f01 = tl.load(feat_ptr + (row + y0 * W + x1)[:, None] * C + c2, mask=mask, other=0.0)
        f10 = tl.load(feat_ptr + (row + y1 * W + x0)[:, None] * C + c2, mask=mask, other=0.0)
        f11 = tl.load(feat_ptr + (row + y1 * W + x1)[:, None] * C + c2, mask=mask, other=0.0)
        a0, b0, c0, d0 = _corner(gx * gy, su * -gy, sv * -gx, kx, ky, ru, rv, inv_z)
        a1, b1, c1, d1 = _corner(fx * gy, su * gy, sv * -fx, kx, ky, ru, rv, inv_z)
        a2, b2, c2_, d2 = _corner(gx * fy, su * -fy, sv * gx, kx, ky, ru, rv, inv_z)
        a3, b3, c3, d3 = _corner(fx * fy, su * fy, sv * fx, kx, ky, ru, rv, inv_z)
        obase = ((b * Q + offs_q) * 4)[:, None] * C + c2
        tl.store(out_ptr + obase, a0 * f00 + a1 * f01 + a2 * f10 + a3 * f11, mask=mask)
        tl.store(out_ptr + obase + C, b0 * f00 + b1 * f01 + b2 * f10 + b3 * f11, mask=mask)
        tl.store(out_ptr + obase + 2 * C, c0 * f00 + c1 * f01 + c2_ * f10 + c3 * f11, mask=mask)
        tl.store(out_ptr + obase + 3 * C, d0 * f00 + d1 * f01 + d2 * f10 + d3 * f11, mask=mask)

    @triton.jit
    def _bwd_kernel(grad_ptr, pts_ptr, intr_ptr, gfeat_ptr, Q, H, W, C,
                    BLOCK_Q: tl.constexpr, BLOCK_C: tl.constexpr):
        b, offs_q, offs_c, mask_q, mask = _tile(Q, C, BLOCK_Q, BLOCK_C)
        x0, x1, y0, y1, fx, fy, gx, gy, su, sv, kx, ky, ru, rv, inv_z = _coef(
            pts_ptr, intr_ptr, b, offs_q, mask_q, Q, H, W)
        c2 = offs_c[None, :]
        gbase = ((b * Q + offs_q) * 4)[:, None] * C + c2
        g0 = tl.load(grad_ptr + gbase, mask=mask, other=0.0)
        g1 = tl.load(grad_ptr + gbase + C, mask=mask, other=0.0)
        g2 = tl.load(grad_ptr + gbase + 2 * C, mask=mask, other=0.0)
        g3 = tl.load(grad_ptr + gbase + 3 * C, mask=mask, other=0.0)
        row = b * H * W
        a0, b0, c0, d0 = _corner(gx * gy, su * -gy, sv * -gx, kx, ky, ru, rv, inv_z)
        a1, b1, c1, d1 = _corner(fx * gy, su * gy, sv * -fx, kx, ky, ru, rv, inv_z)
        a2, b2, c2_, d2 = _corner(gx * fy, su * -fy, sv * gx, kx, ky, ru, rv, inv_z)
        a3, b3, c3, d3 = _corner(fx * fy, su * fy, sv * fx, kx, ky, ru, rv, inv_z)
        tl.atomic_add(gfeat_ptr + (row + y0 * W + x0)[:, None] * C + c2,
                      a0 * g0 + b0 * g1 + c0 * g2 + d0 * g3, mask=mask)
        tl.atomic_add(gfeat_ptr + (row + y0 * W + x1)[:, None] * C + c2,
                      a1 * g0 + b1 * g1 + c1 * g2 + d1 * g3, mask=mask)
        tl.atomic_add(gfeat_ptr + (row + y1 * W + x0)[:, None] * C + c2,
                      a2 * g0 + b2 * g1 + c2_ * g2 + d2 * g3, mask=mask)
        tl.atomic_add(gfeat_ptr + (row + y1 * W + x1)[:, None] * C + c2,
                      a3 * g0 + b3 * g1 + c3 * g2 + d3 * g3, mask=mask)


def _block_c(c: int) -> int:
    return min(64, triton.next_power_of_2(c))


def sample_2d_forward(features: Tensor, points: Tensor, intrinsics: Tensor) -> Tensor:
    """Triton forward: (B,C,H,W), (B,Q,3), (B,4) -> (B,Q,4,C); float32/float64, one device."""
    b, c, h, w = features.shape
    q = points.shape[1]
    feat = features.permute(0, 2, 3, 1).contiguous()
    out = torch.empty((b, q, 4, c), dtype=features.dtype, device=features.device)
    if b * q == 0:
        return out
    bc = _block_c(c)
    grid = (b * triton.cdiv(q, BLOCK_Q), triton.cdiv(c, bc))
    _fwd_kernel[grid](feat, points.contiguous(), intrinsics.contiguous(), out, q, h, w, c,
                      BLOCK_Q=BLOCK_Q, BLOCK_C=bc)
    return out


def sample_2d_backward(grad: Tensor, points: Tensor, intrinsics: Tensor, h: int, w: int) -> Tensor:
    """Triton backward: (B,Q,4,C) -> (B,C,H,W) feature gradient in channels-last memory format."""
    b, q, _, c = grad.shape
    gfeat = torch.zeros((b, h, w, c), dtype=grad.dtype, device=grad.device)
    if b * q > 0:
        bc = _block_c(c)
        grid = (b * triton.cdiv(q, BLOCK_Q), triton.cdiv(c, bc))
        _bwd_kernel[grid](grad.contiguous(), points.contiguous(), intrinsics.contiguous(), gfeat, q, h, w, c,
                          BLOCK_Q=BLOCK_Q, BLOCK_C=bc)
    return gfeat.permute(0, 3, 1, 2)
