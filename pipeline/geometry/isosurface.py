"""Marching cubes on a grid of an implicit field (SPEC §5.3: 128³ grid, no half-cell offset).

Shared by inference (coloured meshes, ``dgs_core``) and scoring (``benchmark``), so both extract the
same mesh from a grid. Uses scikit-image's ``measure.marching_cubes`` when it is installed, else
Open3D's ``TriangleMesh.create_isosurfaces`` (Flying Edges, the same isosurface as marching cubes
up to triangulation of ambiguous cells); Open3D is a dependency of the toolkit, so one is always there.

Grid convention: ``values[i, j, k]`` is the value at the *centre* of cell (i, j, k), located at
``origin + (i, j, k) * cell`` — array axis 0 is coordinate x of ``origin``, axis 1 is y, axis 2 is
z. A grid stored as (z, y, x) must be transposed first. Two fields (:data:`FIELDS`, SPEC §1):
``"occupancy"`` in [0, 1], 1 = occupied (inside/behind the surface), level 0.5; ``"sdf"`` in metres,
positive in free space, level 0.
"""
from __future__ import annotations

import numpy as np

FIELDS = {"occupancy": 0.5, "sdf": 0.0}
"""Field kinds of a grid and their default iso-level."""
FREE = {"occupancy": 0.0, "sdf": 1.0}
"""A value that means "free space" in each field (metres for the SDF): NaN cells and cells never
queried (outside the frustum) take it."""
DEPTH_SOURCES = ("mesh", "trace")
"""Where the evaluation takes a grid prediction's depth map (``evaluate.depth_source``): rendered from
the mesh extracted here, or sphere-traced from the field by ``predict`` (SDF models; the grid file's
``trace_depth``, :mod:`dgs_core.sphere_trace`)."""


def extract_mesh(values: np.ndarray, origin: np.ndarray, cell: np.ndarray | float,
                 level: float | None = None, backend: str = "auto", field: str = "occupancy"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Isosurface of a field grid.

    Args:
        values: (D, H, W) float field values on the grid described above.
        origin: (3,) float, metres, position of the centre of cell (0, 0, 0) (any frame; the
            evaluation uses the camera frame).
        cell: (3,) float or scalar, metres, cell size along axes 0, 1, 2.
        level: iso-value; None = the field's default (0.5 for occupancy, 0 for an SDF).
        backend: "auto" (scikit-image if importable, else open3d), "skimage" or "open3d".
        field: "occupancy" (larger = occupied) or "sdf" (larger = free).
    Returns:
        vertices: (V, 3) float64 metres, vertex = origin + fractional index · cell.
        faces: (F, 3) int64, oriented so that normals (right-hand rule) point from occupied to
        free space. Both are empty when the level is never crossed.
    """
    if field not in FIELDS:
        raise ValueError(f"extract_mesh: field must be one of {list(FIELDS)}, got {field!r}.")
    level = FIELDS[field] if level is None else float(level)
    sign = 1.0 if field == "occupancy" else -1.0  # an SDF is negated: larger = occupied for both
    occ = np.asarray(values, dtype=np.float32)
    if occ.ndim != 3 or min(occ.shape) < 2:
        raise ValueError(f"extract_mesh: the {field} grid must be 3-D with at least 2 cells per axis, "
                         f"got shape {occ.shape}.")
    origin = np.asarray(origin, dtype=np.float64).reshape(3)
    cell = np.broadcast_to(np.asarray(cell, dtype=np.float64), (3,))
    empty = (np.zeros((0, 3), dtype=np.float64), np.zeros((0, 3), dtype=np.int64))
    finite = occ[np.isfinite(occ)]
    if finite.size == 0 or not (finite.min() < level < finite.max()):
        return empty
    # NaN cells would poison the interpolation; treat them as free (SPEC §1).
    occ = (sign * np.where(np.isfinite(occ), occ, FREE[field])).astype(np.float32)
    level *= sign
    if backend == "auto":
        backend = "skimage" if _has_skimage() else "open3d"
    if backend == "skimage":
        idx, faces = _skimage(occ, level)
    elif backend == "open3d":
        idx, faces = _open3d(occ, level)
    else:
        raise ValueError(f"extract_mesh: backend must be 'auto', 'skimage' or 'open3d', got {backend!r}.")
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
        raise ImportError("extract_mesh: backend='skimage' needs scikit-image "
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
