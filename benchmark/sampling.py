"""Deterministic area-weighted point sampling on a triangle mesh (SPEC §5: 200,000 points).

Fully vectorised numpy: faces are drawn by inverse-CDF lookup on the cumulative face areas
(``np.searchsorted``), and points inside a face by the square-root barycentric map, which is
uniform over the triangle. The same seed gives the same points byte for byte.

Note: ``pipeline/`` has its own near-surface sampler for training data (with the release's
"uniform faces" option and normal offsets); this one serves evaluation only.
"""
from __future__ import annotations

import numpy as np


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int = 200_000,
                   seed: int = 0) -> np.ndarray:
    """Sample ``n`` points uniformly by area on a triangle mesh.

    Args:
        vertices: (V, 3) float, metres, any frame.
        faces: (F, 3) integer vertex indices.
        n: number of points.
        seed: seed of the numpy ``default_rng`` stream.
    Returns:
        (n, 3) float64 points in the frame of ``vertices``; (0, 3) when the mesh has no faces
        or zero total area (the caller reports it as an empty surface).
    """
    return sample_surface_faces(vertices, faces, n, seed)[0]


def sample_surface_faces(vertices: np.ndarray, faces: np.ndarray, n: int = 200_000,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sample_surface` plus the (n,) int64 index of the face each point lies on (for normals)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"benchmark.sampling.sample_surface: expected vertices (V, 3) and faces "
                         f"(F, 3), got {vertices.shape} and {faces.shape}.")
    empty = (np.zeros((0, 3), dtype=np.float64), np.zeros(0, dtype=np.int64))
    if len(faces) == 0 or n <= 0:
        return empty
    a = vertices[faces[:, 0]]
    e1 = vertices[faces[:, 1]] - a
    e2 = vertices[faces[:, 2]] - a
    area = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)
    area = np.where(np.isfinite(area), area, 0.0)
    cdf = np.cumsum(area)
    total = cdf[-1]
    if not total > 0.0:
        return empty
    rng = np.random.default_rng(seed)
    r = rng.random((n, 3))
    # side="right" never selects a zero-area face (its cdf equals its predecessor's).
    face = np.searchsorted(cdf, r[:, 0] * total, side="right")
    face = np.minimum(face, len(faces) - 1)
    s = np.sqrt(r[:, 1])
    # Barycentric (1 − s, s(1 − t), s·t) is uniform on the triangle for s = sqrt(U1), t = U2.
    w1 = (s * (1.0 - r[:, 2]))[:, None]
    w2 = (s * r[:, 2])[:, None]
    return a[face] + w1 * e1[face] + w2 * e2[face], face.astype(np.int64)
