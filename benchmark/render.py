"""Z-depth rendering of a camera-frame triangle mesh by ray casting (open3d ``RaycastingScene``).

Ray casting hits both sides of a triangle (no back-face culling), so the render is double-sided
as SPEC §5 asks: the orientation of the marching-cubes faces does not matter.
"""
from __future__ import annotations

import numpy as np
import open3d as o3d


def render_depth(vertices: np.ndarray, faces: np.ndarray, fx: float, fy: float, cx: float,
                 cy: float, width: int, height: int) -> np.ndarray:
    """Render the z-depth of a mesh seen from the camera at the origin.

    Args:
        vertices: (V, 3) float, metres, camera frame (x right, y down, z forward).
        faces: (F, 3) integer vertex indices.
        fx, fy, cx, cy: pinhole intrinsics in pixels; pixel (i, j) is sampled at its centre
            (j + 0.5, i + 0.5).
        width, height: image size in pixels.
    Returns:
        (height, width) float32 z-depth in metres of the first hit, NaN where the ray misses.
    """
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces, dtype=np.uint32)
    out = np.full((height, width), np.nan, dtype=np.float32)
    keep = np.isfinite(vertices).all(axis=1)
    if len(faces):
        faces = faces[keep[faces].all(axis=1)]
    if len(faces) == 0:
        return out
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices), o3d.core.Tensor(faces))
    jj, ii = np.meshgrid(np.arange(width, dtype=np.float32) + 0.5,
                         np.arange(height, dtype=np.float32) + 0.5)
    # Direction with unit z: the hit parameter t is then the z-depth directly.
    rays = np.zeros((height, width, 6), dtype=np.float32)
    rays[..., 3] = (jj - cx) / fx
    rays[..., 4] = (ii - cy) / fy
    rays[..., 5] = 1.0
    t = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
    out[np.isfinite(t)] = t[np.isfinite(t)]
    return out
