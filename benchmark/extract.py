"""Marching cubes on an occupancy grid (SPEC §5: 128³ grid, level 0.5, no half-cell offset).

Uses scikit-image's ``measure.marching_cubes`` when it is installed, else Open3D's
``TriangleMesh.create_isosurfaces`` (Flying Edges, the same isosurface as marching cubes up to
triangulation of ambiguous cells); Open3D is a dependency of the toolkit, so one is always there.

Grid convention: ``occupancy[i, j, k]`` is the value at the *centre* of cell (i, j, k), located at
``origin + (i, j, k) * cell`` — array axis 0 is coordinate x of ``origin``, axis 1 is y, axis 2 is
z. A grid stored as (z, y, x) must be transposed first. Occupancy follows SPEC §1: 1 = occupied
(inside/behind the surface), 0 = free.
"""
from __future__ import annotations

import numpy as np


def extract_mesh(occupancy: np.ndarray, origin: np.ndarray, cell: np.ndarray | float,
                 level: float = 0.5, backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Isosurface of an occupancy grid.

    Args:
        occupancy: (D, H, W) float occupancy probabilities on the grid described above.
        origin: (3,) float, metres, position of the centre of cell (0, 0, 0) (any frame; the
            evaluation uses the camera frame).
        cell: (3,) float or scalar, metres, cell size along axes 0, 1, 2.
        level: iso-value (0.5 for occupancy probabilities).
        backend: "auto" (scikit-image if importable, else open3d), "skimage" or "open3d".
    Returns:
        vertices: (V, 3) float64 metres, vertex = origin + fractional index · cell.
        faces: (F, 3) int64, oriented so that normals (right-hand rule) point from occupied to
        free space. Both are empty when the level is never crossed.
    """
    occ = np.asarray(occupancy, dtype=np.float32)
    if occ.ndim != 3 or min(occ.shape) < 2:
        raise ValueError(f"benchmark.extract.extract_mesh: occupancy must be a 3-D grid with at "
                         f"least 2 cells per axis, got shape {occ.shape}.")
    origin = np.asarray(origin, dtype=np.float64).reshape(3)
    cell = np.broadcast_to(np.asarray(cell, dtype=np.float64), (3,))
    empty = (np.zeros((0, 3), dtype=np.float64), np.zeros((0, 3), dtype=np.int64))
    finite = occ[np.isfinite(occ)]
    if finite.size == 0 or not (finite.min() < level < finite.max()):
        return empty
    # NaN cells would poison the interpolation; treat them as free (0 = free, SPEC §1).
    occ = np.where(np.isfinite(occ), occ, 0.0).astype(np.float32)
    if backend == "auto":
        backend = "skimage" if _has_skimage() else "open3d"
    if backend == "skimage":
        idx, faces = _skimage(occ, level)
    elif backend == "open3d":
        idx, faces = _open3d(occ, level)
    else:
        raise ValueError(f"benchmark.extract.extract_mesh: backend must be 'auto', 'skimage' or "
                         f"'open3d', got {backend!r}.")
    if len(faces) == 0:
        return empty
    return origin + idx * cell, faces


def _has_skimage() -> bool:
    try:
        import skimage.measure  # noqa: F401
    except ImportError:
        return False
    return True


def _skimage(occ: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    try:
        from skimage.measure import marching_cubes
    except ImportError as err:
        raise ImportError("benchmark.extract: backend='skimage' needs scikit-image "
                          "(pip install scikit-image), or use backend='open3d'.") from err
    # skimage returns vertices in array-index order; its gradient_direction="descent" (default)
    # orients faces toward decreasing values, i.e. from occupied (1) to free (0).
    verts, faces, _, _ = marching_cubes(occ, level=level)
    return verts.astype(np.float64), faces.astype(np.int64)


def _open3d(occ: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    import open3d as o3d

    mesh = o3d.t.geometry.TriangleMesh.create_isosurfaces(o3d.core.Tensor(occ), [level])
    if "positions" not in mesh.vertex or "indices" not in mesh.triangle:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    # Open3D places voxel [i, j, k] at (k, j, i): reverse the columns back to array-index order.
    verts = mesh.vertex.positions.numpy().astype(np.float64)[:, ::-1]
    faces = mesh.triangle.indices.numpy().astype(np.int64)
    # Open3D's faces face decreasing values in its own (k, j, i) frame; reversing the columns
    # is a reflection, which flips the winding, so swap two corners to restore "toward free".
    return np.ascontiguousarray(verts), faces[:, [0, 2, 1]]
