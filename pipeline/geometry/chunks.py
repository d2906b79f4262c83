"""Faces grouped into small spatially coherent chunks with world bounding boxes, built once per scene.

Per-frame work (rasterising depth, culling face centroids) first tests each chunk's box against the
view's planes and then visits only the faces of chunks that may be in view: a room seen from inside
has ~5–20 % of its faces in any one frustum. Faces are ordered along a Morton (Z-order) curve of
their centroids and cut into runs of ``size`` faces, so a chunk is a compact patch of surface. The
order never changes a result: every per-face decision is the same, only faces of rejected chunks
(which would all have been rejected) are skipped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit


@dataclass(frozen=True)
class FaceChunks:
    """Faces in chunk order (world frame, metres).

    face_ids: (F,) int64 original face index of each position; faces: (F, 3) int32 = faces[face_ids];
    structure: (F,) bool in the same order; starts: (C + 1,) int64, chunk c holds positions
    starts[c]:starts[c+1]; lo, hi: (C, 3) float64 world bounding box of the chunk's vertices
    (padded by 1 µm).
    """

    face_ids: np.ndarray
    faces: np.ndarray
    structure: np.ndarray
    starts: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def _spread_bits(x: np.ndarray) -> np.ndarray:
    """(N,) uint64 with the low 21 bits of x moved to every third bit (Morton interleave)."""
    x = x.astype(np.uint64) & np.uint64(0x1FFFFF)
    for shift, mask in ((32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F),
                        (4, 0x10C30C30C30C30C3), (2, 0x1249249249249249)):
        x = (x | (x << np.uint64(shift))) & np.uint64(mask)
    return x


def build_chunks(vertices: np.ndarray, faces: np.ndarray, structure: np.ndarray,
                 size: int = 64) -> FaceChunks:
    """Chunks of ``size`` faces along the Morton curve of the face centroids.

    vertices (V, 3) float64 world; faces (F, 3) int vertex ids; structure (F,) bool.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    s = np.asarray(structure, dtype=bool)
    if f.shape[0] == 0:
        return FaceChunks(np.zeros(0, np.int64), np.zeros((0, 3), np.int32), s, np.zeros(1, np.int64),
                          np.zeros((0, 3)), np.zeros((0, 3)))
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]            # (F, 3) each
    centroid = (a + b + c) / 3.0
    lo, hi = centroid.min(axis=0), centroid.max(axis=0)
    q = ((centroid - lo) / np.maximum(hi - lo, 1e-12) * (2**21 - 1)).astype(np.int64)
    key = _spread_bits(q[:, 0]) | (_spread_bits(q[:, 1]) << np.uint64(1)) | (_spread_bits(q[:, 2]) << np.uint64(2))
    order = np.argsort(key, kind="stable")
    starts = np.append(np.arange(0, f.shape[0], size), f.shape[0]).astype(np.int64)
    face_lo = np.minimum(np.minimum(a, b), c)[order]
    face_hi = np.maximum(np.maximum(a, b), c)[order]
    # Boxes padded by 1 µm so that no rounding in the per-frame plane tests can reject a face's point.
    chunk_lo = np.minimum.reduceat(face_lo, starts[:-1], axis=0) - 1e-6
    chunk_hi = np.maximum.reduceat(face_hi, starts[:-1], axis=0) + 1e-6
    return FaceChunks(order.astype(np.int64), np.ascontiguousarray(f[order], dtype=np.int32),
                      np.ascontiguousarray(s[order]), starts, np.ascontiguousarray(chunk_lo),
                      np.ascontiguousarray(chunk_hi))


@njit(cache=True)
def chunks_in_view(lo: np.ndarray, hi: np.ndarray, rotation_cw: np.ndarray, translation_cw: np.ndarray,
                   planes: np.ndarray) -> np.ndarray:
    """(C,) bool: False only where a chunk box lies wholly outside one of the camera-frame planes.

    lo, hi (C, 3) world boxes; rotation_cw (3, 3), translation_cw (3,) world → camera; planes (P, 4)
    camera-frame half-spaces a·x + b·y + c·z + d ≥ 0 (the inside). Conservative: the test uses the
    camera-frame box around the rotated world box.
    """
    n = lo.shape[0]
    ok = np.ones(n, dtype=np.bool_)
    centre = np.empty(3)
    extent = np.empty(3)
    for c in range(n):
        for a in range(3):
            m = 0.0
            e = 0.0
            for b in range(3):
                mid = 0.5 * (lo[c, b] + hi[c, b])
                half = 0.5 * (hi[c, b] - lo[c, b])
                m += rotation_cw[a, b] * mid
                e += abs(rotation_cw[a, b]) * half
            centre[a] = m + translation_cw[a]
            extent[a] = e
        for p in range(planes.shape[0]):
            reach = planes[p, 3]
            for a in range(3):
                reach += planes[p, a] * centre[a] + abs(planes[p, a]) * extent[a]
            if reach < 0.0:
                ok[c] = False
                break
    return ok


@njit(cache=True)
def chunk_members(starts: np.ndarray, chunk_ok: np.ndarray) -> np.ndarray:
    """(n,) int64 chunk-order positions of the faces of the chunks marked True in chunk_ok (C,)."""
    n = 0
    for c in range(chunk_ok.shape[0]):
        if chunk_ok[c]:
            n += starts[c + 1] - starts[c]
    out = np.empty(n, dtype=np.int64)
    k = 0
    for c in range(chunk_ok.shape[0]):
        if chunk_ok[c]:
            for f in range(starts[c], starts[c + 1]):
                out[k] = f
                k += 1
    return out


def frustum_planes(proj: np.ndarray, widen: float, z_near: float) -> np.ndarray:
    """(5, 4) camera-frame half-spaces (a, b, c, d: a·x + b·y + c·z + d ≥ 0) of |u|, |v| ≤ widen and
    z ≥ z_near, for proj = (a_u, a_v, c_u, c_v) with u = a_u·x/z + c_u, v = a_v·y/z + c_v."""
    a_u, a_v, c_u, c_v = (float(x) for x in proj)
    return np.array([[a_u, 0.0, widen + c_u, 0.0], [-a_u, 0.0, widen - c_u, 0.0],
                     [0.0, a_v, widen + c_v, 0.0], [0.0, -a_v, widen - c_v, 0.0],
                     [0.0, 0.0, 1.0, -z_near]])


def faces_in_view(chunks: FaceChunks, rotation_cw: np.ndarray, translation_cw: np.ndarray,
                  planes: np.ndarray, box_lo: np.ndarray, box_hi: np.ndarray) -> np.ndarray:
    """(n,) int64 original ids of the faces of every chunk that may meet both the camera-frame
    ``planes`` (P, 4) and the world box [box_lo, box_hi] (3,) each; a superset of the faces with any
    point in both, in chunk order."""
    ok = chunks_in_view(chunks.lo, chunks.hi, rotation_cw, translation_cw, planes)
    ok &= np.all(chunks.hi >= box_lo, axis=1) & np.all(chunks.lo <= box_hi, axis=1)
    return chunks.face_ids[chunk_members(chunks.starts, ok)]
