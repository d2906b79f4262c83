"""Numba CPU kernels of the DGS ops (float32/float64, channels-last features).

Layout: features are read channels-last, ``feat[b, s, c]`` with ``s`` the flat pixel/voxel index, so
each corner is one contiguous run of C values (the inner loop vectorises). Forward: parallel over
queries, each query writes only its own (4, C) output rows. Backward: parallel over (batch, channel
block); each task walks *all* queries of its batch in order and accumulates into its own slice of the
gradient, so there are no atomics and the result is deterministic (bit-identical run to run, for any
thread count). Coefficients (corner weights and their derivatives, see ``reference.py``) are
recomputed in the backward instead of being stored: a few flops per query, no per-call buffer.

The 2-D kernels are fused (projection + coefficients + gather). The 3-D kernels take precomputed
corner indices and coefficients (``reference.coefficients_3d``) and do the gather/scatter part.
"""
from __future__ import annotations

import math
import types

import numba as nb

_OPTS = dict(nogil=True, cache=True, fastmath=False, boundscheck=False)
CHANNEL_BLOCK = 64  # channels per backward task: 256 B..512 B rows, enough tasks for a few threads
SERIAL: dict = {}  # name -> single-threaded twin of each parallel kernel (see _dual)


def _dual(fn):
    """Compile ``fn`` twice: parallel (returned) and serial (``SERIAL[name]``, prange runs as range).

    Small calls use the serial twin: waking a second OpenMP pool next to torch's (whose idle workers
    spin) costs milliseconds on a busy machine, more than the whole kernel. The twin gets its own
    qualified name so that the on-disk caches of the two never collide.
    """
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "_serial"
    SERIAL[fn.__name__] = nb.njit(**_OPTS)(twin)
    return nb.njit(parallel=True, **_OPTS)(fn)


@nb.njit(**_OPTS)
def _axis(coord, size):
    """(i0, i1, frac, d ix/d coord) of a normalised coordinate, as ``reference._axis``."""
    ix = ((coord + 1.0) * size - 1.0) / 2.0
    ds = size / 2.0 if (ix >= 0.0 and ix <= size - 1.0) else 0.0
    ixc = min(max(ix, 0.0), size - 1.0)
    i0 = min(math.floor(ixc), max(size - 2, 0))
    frac = ixc - i0
    i1 = min(i0 + 1, size - 1)
    return int(i0), int(i1), frac, ds


@nb.njit(**_OPTS)
def _coef_2d(pts, intr, b, q, h, w):
    """Corner indices (4,) and coefficients (4 outputs x 4 corners) of query (b, q) as scalar tuples.

    Same formulas and operation order as ``reference.coefficients_2d`` (scalars, not arrays: no heap
    allocation inside the parallel loops).
    """
    x, y, z = pts[b, q, 0], pts[b, q, 1], pts[b, q, 2]
    a_u, a_v, c_u, c_v = intr[b, 0], intr[b, 1], intr[b, 2], intr[b, 3]
    u = a_u * x / z + c_u
    v = a_v * y / z + c_v
    x0, x1, fx, su = _axis(u, w)
    y0, y1, fy, sv = _axis(v, h)
    gx, gy = 1.0 - fx, 1.0 - fy
    idx = (y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1)
    val = (gx * gy, fx * gy, gx * fy, fx * fy)
    du = (su * -gy, su * gy, su * -fy, su * fy)
    dv = (sv * -gx, sv * -fx, sv * gx, sv * fx)
    inv_z = 1.0 / z
    kx, ky = a_u * inv_z, a_v * inv_z
    ru, rv = u - c_u, v - c_v
    ddx = (du[0] * kx, du[1] * kx, du[2] * kx, du[3] * kx)
    ddy = (dv[0] * ky, dv[1] * ky, dv[2] * ky, dv[3] * ky)
    ddz = (-(du[0] * ru + dv[0] * rv) * inv_z, -(du[1] * ru + dv[1] * rv) * inv_z,
           -(du[2] * ru + dv[2] * rv) * inv_z, -(du[3] * ru + dv[3] * rv) * inv_z)
    return idx, val, ddx, ddy, ddz


@_dual
def sample_2d_fwd(feat, pts, intr, h, w, out):
    """feat (B, H*W, C), pts (B, Q, 3), intr (B, 4) -> out (B, Q, 4, C) (preallocated)."""
    nb_, nq = pts.shape[0], pts.shape[1]
    nc = feat.shape[2]
    for t in nb.prange(nb_ * nq):
        b, q = t // nq, t % nq
        idx, val, ddx, ddy, ddz = _coef_2d(pts, intr, b, q, h, w)
        f0, f1, f2, f3 = feat[b, idx[0]], feat[b, idx[1]], feat[b, idx[2]], feat[b, idx[3]]
        r0, r1, r2, r3 = out[b, q, 0], out[b, q, 1], out[b, q, 2], out[b, q, 3]
        for c in range(nc):
            a0, a1, a2, a3 = f0[c], f1[c], f2[c], f3[c]
            r0[c] = val[0] * a0 + val[1] * a1 + val[2] * a2 + val[3] * a3
            r1[c] = ddx[0] * a0 + ddx[1] * a1 + ddx[2] * a2 + ddx[3] * a3
            r2[c] = ddy[0] * a0 + ddy[1] * a1 + ddy[2] * a2 + ddy[3] * a3
            r3[c] = ddz[0] * a0 + ddz[1] * a1 + ddz[2] * a2 + ddz[3] * a3


@_dual
def sample_2d_bwd(grad, pts, intr, h, w, gfeat):
    """grad (B, Q, 4, C) -> gfeat (B, H*W, C) (preallocated, zeroed); deterministic, no atomics."""
    nb_, nq = pts.shape[0], pts.shape[1]
    nc = gfeat.shape[2]
    nblk = (nc + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK
    for t in nb.prange(nb_ * nblk):
        b, blk = t // nblk, t % nblk
        c_lo, c_hi = blk * CHANNEL_BLOCK, min(nc, (blk + 1) * CHANNEL_BLOCK)
        for q in range(nq):
            idx, val, ddx, ddy, ddz = _coef_2d(pts, intr, b, q, h, w)
            # Contiguous slices let LLVM vectorise; corners can coincide at the clamped border, so
            # accumulate one corner after the other.
            g0, g1 = grad[b, q, 0, c_lo:c_hi], grad[b, q, 1, c_lo:c_hi]
            g2, g3 = grad[b, q, 2, c_lo:c_hi], grad[b, q, 3, c_lo:c_hi]
            for k in range(4):
                wv, wx, wy, wz = val[k], ddx[k], ddy[k], ddz[k]
                r = gfeat[b, idx[k], c_lo:c_hi]
                for c in range(c_hi - c_lo):
                    r[c] += wv * g0[c] + wx * g1[c] + wy * g2[c] + wz * g3[c]


@_dual
def combine_fwd(feat, idx, coef, out):
    """feat (B, S, C), idx (B, Q, K), coef (B, Q, 4, K) -> out (B, Q, 4, C)."""
    nb_, nq, nk = idx.shape
    nc = feat.shape[2]
    for t in nb.prange(nb_ * nq):
        b, q = t // nq, t % nq
        for o in range(4):
            row = out[b, q, o]
            row[:] = 0.0
            for k in range(nk):
                ck = coef[b, q, o, k]
                fk = feat[b, idx[b, q, k]]
                for c in range(nc):
                    row[c] += ck * fk[c]


@_dual
def combine_bwd(grad, idx, coef, gfeat):
    """grad (B, Q, 4, C) -> gfeat (B, S, C) (zeroed); parallel over (batch, channel block), no atomics."""
    nb_, nq, nk = idx.shape
    nc = gfeat.shape[2]
    nblk = (nc + CHANNEL_BLOCK - 1) // CHANNEL_BLOCK
    for t in nb.prange(nb_ * nblk):
        b, blk = t // nblk, t % nblk
        c_lo, c_hi = blk * CHANNEL_BLOCK, min(nc, (blk + 1) * CHANNEL_BLOCK)
        n = c_hi - c_lo
        for q in range(nq):
            g0, g1 = grad[b, q, 0, c_lo:c_hi], grad[b, q, 1, c_lo:c_hi]
            g2, g3 = grad[b, q, 2, c_lo:c_hi], grad[b, q, 3, c_lo:c_hi]
            for k in range(nk):
                c0, c1, c2, c3 = coef[b, q, 0, k], coef[b, q, 1, k], coef[b, q, 2, k], coef[b, q, 3, k]
                row = gfeat[b, idx[b, q, k], c_lo:c_hi]
                for c in range(n):
                    row[c] += c0 * g0[c] + c1 * g1[c] + c2 * g2[c] + c3 * g3[c]
