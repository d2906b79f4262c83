"""Triangle mesh from a depth map, for scoring depth-only methods (SPEC §5: MiDaS/LeReS rows).

Neighbouring pixels are connected: each 2×2 block of pixels whose four depths are valid gives two
triangles, and a triangle with any edge longer than ``max_edge`` (0.1 m) is cut, so depth
discontinuities do not become walls. Vertices are the back-projected pixel centres.
"""
from __future__ import annotations

import numpy as np


def mesh_from_depth(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                    max_edge: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Mesh a z-depth map in the camera frame.

    Args:
        depth: (H, W) float, metres, z-depth; NaN or ≤ 0 = no value.
        fx, fy, cx, cy: pinhole intrinsics in pixels (pixel centres at integer + 0.5).
        max_edge: triangles with an edge longer than this (metres) are dropped.
    Returns:
        vertices: (H·W, 3) float64, camera frame (x right, y down, z forward), metres; the vertex
            of pixel (row i, column j) is row i·W + j (NaN where the pixel has no depth).
        faces: (F, 3) int64 vertex indices, oriented so normals point toward the camera.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"benchmark.depth_mesh.mesh_from_depth: depth must be (H, W), got "
                         f"{depth.shape}.")
    h, w = depth.shape
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0)
    z = np.where(valid, depth, np.nan)
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    vertices = np.stack([(jj - cx) / fx * z, (ii - cy) / fy * z, z], axis=-1).reshape(-1, 3)
    if h < 2 or w < 2:
        return vertices, np.zeros((0, 3), dtype=np.int64)
    idx = np.arange(h * w).reshape(h, w)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()  # top-left, top-right
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()  # bottom-left, bottom-right
    vflat = valid.ravel()
    quad = vflat[a] & vflat[b] & vflat[c] & vflat[d]
    # (a, c, b) and (b, c, d): with y down, this winding gives normals toward −z (the camera).
    faces = np.concatenate([np.stack([a, c, b], 1)[quad], np.stack([b, c, d], 1)[quad]])
    if len(faces) == 0:
        return vertices, faces.astype(np.int64)
    p = vertices[faces]
    edges = np.stack([np.linalg.norm(p[:, 0] - p[:, 1], axis=1),
                      np.linalg.norm(p[:, 1] - p[:, 2], axis=1),
                      np.linalg.norm(p[:, 2] - p[:, 0], axis=1)], axis=1)
    keep = edges.max(axis=1) <= max_edge
    return vertices, faces[keep].astype(np.int64)
