"""The point sets the 3-D metrics compare (SPEC §5.7): area-weighted surface samples (200,000 points)
or mesh vertices after a voxel down-sample (the Atlas/NeuralRecon convention, SPEC §5.11).

Sampling is fully vectorised numpy: faces are drawn by inverse-CDF lookup on the cumulative face
areas (``np.searchsorted``), and points inside a face by the square-root barycentric map, which is
uniform over the triangle. The same seed gives the same points byte for byte. Every function takes
(N, 3) arrays only: a (N, 6) array (points with normals or colours) is an error, never 2N points.

Note: ``pipeline/`` has its own near-surface sampler for training data (with the release's
"uniform faces" option and normal offsets); this one serves evaluation only.
"""
from __future__ import annotations

import numpy as np


def as_points(points: np.ndarray, name: str) -> np.ndarray:
    """``points`` as (N, 3) float64; ValueError naming ``name`` for any other shape."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"benchmark: {name} must have shape (N, 3), got {points.shape}; pass x, y, z "
                         f"only (no normals or colours).")
    return points


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
    vertices = as_points(vertices, "sample_surface vertices")
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"benchmark.sampling.sample_surface: expected faces (F, 3), got {faces.shape}.")
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


def voxel_down_sample(points: np.ndarray, voxel: float) -> np.ndarray:
    """One point per occupied voxel: the mean of the points in it (Open3D's ``voxel_down_sample``).

    As in Open3D, the grid starts half a voxel below the points' minimum: point p falls in voxel
    ⌊(p − (min − voxel/2))/voxel⌋ per axis. Args: points (N, 3) float metres (finite); voxel (m) > 0.
    Returns (M, 3) float64, M ≤ N, ordered by voxel index (Open3D's order is unspecified).
    """
    points = as_points(points, "voxel_down_sample points")
    if not voxel > 0:
        raise ValueError(f"benchmark.sampling.voxel_down_sample: voxel must be > 0, got {voxel!r}")
    if len(points) == 0:
        return points.reshape(0, 3)
    index = np.floor((points - (points.min(axis=0) - voxel / 2)) / voxel).astype(np.int64)
    _, inverse, counts = np.unique(index, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inverse, points)
    return sums / counts[:, None]


def mesh_vertices(vertices: np.ndarray, faces: np.ndarray, voxel: float | None = None) -> np.ndarray:
    """The vertices the faces use (each once), voxel-down-sampled when ``voxel`` is set.

    vertices (V, 3) float metres; faces (F, 3) int. Returns (M, 3) float64, finite rows only.
    """
    vertices = as_points(vertices, "mesh_vertices vertices")
    used = vertices[np.unique(np.asarray(faces, dtype=np.int64).ravel())]
    used = used[np.isfinite(used).all(axis=1)]
    return used if voxel is None else voxel_down_sample(used, voxel)
