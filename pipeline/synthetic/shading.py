"""Numba kernel of the renderer's per-pixel shading (one serial pass instead of ~20 NumPy temporaries;
ray casting dominates the frame time, so threads would buy little here).

Reference semantics (what `tests/test_synthetic_render.py` checks against a NumPy version):
colour = (interpolated linear albedo) x (ambient + (1 - ambient) * 1.6 * max(0, n.l) /
(1 + 0.08 d^2)), clipped to [0, 1], gamma-encoded with 1/2.2 (via a 65536-entry table),
uint8; black on a miss.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def shade_kernel(face: np.ndarray, uv: np.ndarray, normal: np.ndarray, depth: np.ndarray,
                 directions: np.ndarray, origin: np.ndarray, light: np.ndarray,
                 faces: np.ndarray, albedo: np.ndarray, ambient: float, encode: np.ndarray) -> np.ndarray:
    """Shade every pixel.

    face: (H, W) int64 face index (-1 = miss); uv: (H, W, 2) barycentrics; normal: (H, W, 3) unit
    world normals facing the camera; depth: (H, W) z metres; directions: (H, W, 3) world ray
    directions with camera z = 1; origin, light: (3,) world metres; faces: (F, 3) int64;
    albedo: (V, 3) float32 linear; encode: (K,) uint8 table of the gamma encoding of linear
    values k / (K - 1) (a table lookup instead of three `pow` calls per pixel).
    Returns (H, W, 3) uint8 sRGB.
    """
    height, width = face.shape
    out = np.zeros((height, width, 3), np.uint8)
    for i in range(height):
        for j in range(width):
            f = face[i, j]
            if f < 0:
                continue
            u = uv[i, j, 0]
            v = uv[i, j, 1]
            w = 1.0 - u - v
            lx = light[0] - origin[0] - directions[i, j, 0] * depth[i, j]
            ly = light[1] - origin[1] - directions[i, j, 1] * depth[i, j]
            lz = light[2] - origin[2] - directions[i, j, 2] * depth[i, j]
            dist2 = lx * lx + ly * ly + lz * lz
            cos = normal[i, j, 0] * lx + normal[i, j, 1] * ly + normal[i, j, 2] * lz
            cos /= np.sqrt(max(dist2, 1e-12))
            cos = min(max(cos, 0.0), 1.0)
            light_level = ambient + (1.0 - ambient) * 1.6 * cos / (1.0 + 0.08 * dist2)
            a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
            top = encode.shape[0] - 1
            for k in range(3):
                value = (w * albedo[a, k] + u * albedo[b, k] + v * albedo[c, k]) * light_level
                value = min(max(value, 0.0), 1.0)
                out[i, j, k] = encode[int(value * top + 0.5)]
    return out


def gamma_table(gamma: float, size: int = 1 << 16) -> np.ndarray:
    """(size,) uint8: round(255 * (k / (size - 1)) ** (1 / gamma)), the sRGB-like encoding."""
    return np.round(255.0 * np.linspace(0.0, 1.0, size) ** (1.0 / gamma)).astype(np.uint8)
