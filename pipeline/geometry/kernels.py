"""Numba kernels for the per-frame mesh work of SPEC §4: culling, surface sampling, exclusion.

Every kernel is a pure per-element map (``prange`` over faces or points) whose random inputs are
drawn with NumPy *outside* the kernel, so results never depend on thread scheduling. The slow,
obviously-correct NumPy references live in ``tests/test_geometry_kernels.py``.

All arrays are float64 unless stated; world coordinates in metres.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def cull_face_centroids(
    centroids: np.ndarray,
    candidates: np.ndarray,
    rotation_cw: np.ndarray,
    translation_cw: np.ndarray,
    proj: np.ndarray,
    widen: float,
    z_near: float,
    box_lo: np.ndarray,
    box_hi: np.ndarray,
) -> np.ndarray:
    """Mask of faces whose centroid is in the widened frustum and inside a world box (SPEC §4).

    centroids: (F, 3) world. candidates: (n,) int64 distinct face ids to test (faces not listed are
    not kept; pass all ids, or a superset of the kept ones such as ``chunks.faces_in_view``).
    rotation_cw (3, 3), translation_cw (3,): world → camera.
    proj: (4,) a_u, a_v, c_u, c_v with u = a_u·x/z + c_u, v = a_v·y/z + c_v (normalised units).
    A face is kept iff z > z_near, |u| < widen, |v| < widen and box_lo ≤ centroid ≤ box_hi.
    Returns (F,) bool.
    """
    keep = np.zeros(centroids.shape[0], dtype=np.bool_)
    for k in prange(candidates.shape[0]):
        i = candidates[k]
        c0 = centroids[i, 0]
        c1 = centroids[i, 1]
        c2 = centroids[i, 2]
        if not (box_lo[0] <= c0 <= box_hi[0] and box_lo[1] <= c1 <= box_hi[1]
                and box_lo[2] <= c2 <= box_hi[2]):
            continue
        x = rotation_cw[0, 0] * c0 + rotation_cw[0, 1] * c1 + rotation_cw[0, 2] * c2 + translation_cw[0]
        y = rotation_cw[1, 0] * c0 + rotation_cw[1, 1] * c1 + rotation_cw[1, 2] * c2 + translation_cw[1]
        z = rotation_cw[2, 0] * c0 + rotation_cw[2, 1] * c1 + rotation_cw[2, 2] * c2 + translation_cw[2]
        if z <= z_near:
            continue
        u = proj[0] * x / z + proj[2]
        v = proj[1] * y / z + proj[3]
        keep[i] = abs(u) < widen and abs(v) < widen
    return keep


@njit(cache=True)
def depth_world_box(depth: np.ndarray, intrinsics: np.ndarray, rotation_wc: np.ndarray,
                    translation_wc: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """World bounding box of a back-projected z-depth map, in one pass without temporaries.

    depth (H, W) float32 metres (NaN or ≤ 0: no reading); intrinsics (4,) fx, fy, cx, cy pixels
    (pixel centres at integer + 0.5); rotation_wc (3, 3), translation_wc (3,) camera → world.
    Returns lo (3,), hi (3,) float64 world metres (+inf / −inf if no pixel is valid) and the number
    of valid pixels.
    """
    fx, fy, cx, cy = intrinsics[0], intrinsics[1], intrinsics[2], intrinsics[3]
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    count = 0
    for i in range(depth.shape[0]):
        for j in range(depth.shape[1]):
            d = depth[i, j]
            if not (np.isfinite(d) and d > 0):
                continue
            count += 1
            z = np.float64(d)
            x = (j + 0.5 - cx) / fx * z
            y = (i + 0.5 - cy) / fy * z
            for a in range(3):
                p = rotation_wc[a, 0] * x + rotation_wc[a, 1] * y + rotation_wc[a, 2] * z
                lo[a] = min(lo[a], p)
                hi[a] = max(hi[a], p)
    for a in range(3):
        lo[a] += translation_wc[a]
        hi[a] += translation_wc[a]
    return lo, hi, count


@njit(cache=True)
def _lower_bound(keys: np.ndarray, key) -> int:
    """First index i with keys[i] ≥ key in the sorted (N,) ``keys`` (N if none)."""
    lo = 0
    hi = keys.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _pick(cdf: np.ndarray, target: float) -> int:
    """First index i with cdf[i] > target (binary search); the last positive-weight face if none."""
    lo = 0
    hi = cdf.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if cdf[mid] > target:
            hi = mid
        else:
            lo = mid + 1
    if lo == cdf.shape[0]:
        # target rounded up to the total: take the first face reaching the total (positive weight).
        lo = _lower_bound(cdf, cdf[cdf.shape[0] - 1])
    return lo


@njit(parallel=True, cache=True)
def sample_offset_surface(
    vertices: np.ndarray,
    faces: np.ndarray,
    candidates: np.ndarray,
    cdf: np.ndarray,
    normals: np.ndarray,
    camera_centre: np.ndarray,
    r_face: np.ndarray,
    r1: np.ndarray,
    r2: np.ndarray,
    offset: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample points on faces by a weight CDF and offset them along the camera-facing normal.

    vertices (V, 3) world; faces (F, 3) int; candidates (n,) int64 face ids; cdf (n,) cumulative
    (non-decreasing) weights of the candidates, cdf[-1] > 0; normals (F, 3) unit face normals
    (any winding); camera_centre (3,) world. r_face, r1, r2 (K,) uniform [0, 1); offset (K,) metres.

    Face k = candidates[first i with cdf[i] > r_face·cdf[-1]] (zero-weight faces are never picked);
    surface point = uniform on the triangle via (√r1, r2); the normal is flipped if needed so that it
    points toward the camera (n·(C − p) ≥ 0); point = surface + offset·n. Label (occupancy, SPEC §1):
    1 (inward/occupied) iff offset < 0, i.e. the point is on the side away from the camera.
    Returns surface (K, 3), points (K, 3), labels (K,) uint8, face ids (K,) int64.
    """
    k = r_face.shape[0]
    surface = np.empty((k, 3))
    points = np.empty((k, 3))
    labels = np.empty(k, dtype=np.uint8)
    face_ids = np.empty(k, dtype=np.int64)
    total = cdf[cdf.shape[0] - 1]
    for i in prange(k):
        f = candidates[_pick(cdf, r_face[i] * total)]
        s = np.sqrt(r1[i])
        a = 1.0 - s
        b = s * (1.0 - r2[i])
        c = s * r2[i]
        ia = faces[f, 0]
        ib = faces[f, 1]
        ic = faces[f, 2]
        side = 0.0
        for j in range(3):
            p = a * vertices[ia, j] + b * vertices[ib, j] + c * vertices[ic, j]
            surface[i, j] = p
            side += normals[f, j] * (camera_centre[j] - p)
        sign = 1.0 if side >= 0.0 else -1.0
        for j in range(3):
            points[i, j] = surface[i, j] + offset[i] * sign * normals[f, j]
        labels[i] = 1 if offset[i] < 0.0 else 0
        face_ids[i] = f
    return surface, points, labels, face_ids


@njit(parallel=True, cache=True)
def far_from_sorted_samples(
    queries: np.ndarray,
    samples: np.ndarray,
    keys: np.ndarray,
    origin: np.ndarray,
    dims: np.ndarray,
    cell: float,
    radius: float,
) -> np.ndarray:
    """Grid-hash test: True where a query is at distance ≥ radius from every sample.

    samples (N, 3) sorted by their cell key; keys (N,) int64 sorted, key = (ix·dims[1] + iy)·dims[2]
    + iz with i = floor((p − origin)/cell); cell ≥ radius so the 27 neighbouring cells hold every
    sample closer than radius. The three z-neighbours of an (x, y) column have consecutive keys, so
    each of the 9 columns costs one binary search and a scan. queries (M, 3). Returns (M,) bool.
    Points exactly at the radius are kept (d² ≥ r² compares the same float64 expression as the
    reference).
    """
    m = queries.shape[0]
    keep = np.ones(m, dtype=np.bool_)
    r2 = radius * radius
    for i in prange(m):
        q0 = queries[i, 0]
        q1 = queries[i, 1]
        q2 = queries[i, 2]
        cx = int(np.floor((q0 - origin[0]) / cell))
        cy = int(np.floor((q1 - origin[1]) / cell))
        cz = int(np.floor((q2 - origin[2]) / cell))
        z_lo = max(cz - 1, 0)
        z_hi = min(cz + 1, dims[2] - 1)
        far = True
        if z_lo > z_hi:  # no z-neighbour cell inside the grid: nothing near
            continue
        for gx in range(max(cx - 1, 0), min(cx + 2, dims[0])):
            for gy in range(max(cy - 1, 0), min(cy + 2, dims[1])):
                if not far:
                    break
                column = (gx * dims[1] + gy) * dims[2]
                last = column + z_hi
                j = _lower_bound(keys, column + z_lo)
                while j < keys.shape[0] and keys[j] <= last:
                    d0 = q0 - samples[j, 0]
                    d1 = q1 - samples[j, 1]
                    d2 = q2 - samples[j, 2]
                    if d0 * d0 + d1 * d1 + d2 * d2 < r2:
                        far = False
                        break
                    j += 1
        keep[i] = far
    return keep


def far_from_samples(queries: np.ndarray, samples: np.ndarray, radius: float) -> np.ndarray:
    """True where a query point is at distance ≥ ``radius`` from every sample (no O(N·M) loop).

    queries (M, 3), samples (N, 3): float, same frame and unit (metres). radius > 0.
    Builds a uniform grid hash of cell ≈ radius over the samples (sort by cell key) and checks the
    27 neighbouring cells per query in Numba. Returns (M,) bool.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float64)
    samples = np.asarray(samples, dtype=np.float64)
    if radius <= 0:
        raise ValueError(f"far_from_samples: expected radius > 0, got {radius}; pass the exclusion distance")
    if samples.shape[0] == 0:
        return np.ones(queries.shape[0], dtype=bool)
    # A cell a hair larger than the radius keeps samples at exactly `radius` within one cell
    # despite rounding in floor().
    cell = float(radius) * (1.0 + 1e-6)
    origin = samples.min(axis=0)
    idx = np.floor((samples - origin) / cell).astype(np.int64)
    dims = idx.max(axis=0) + 1
    keys = (idx[:, 0] * dims[1] + idx[:, 1]) * dims[2] + idx[:, 2]
    order = np.argsort(keys, kind="stable")
    return far_from_sorted_samples(queries, np.ascontiguousarray(samples[order]), keys[order],
                                   origin, dims, cell, float(radius))
