"""Per-scene mesh state built once and reused for every frame, plus the ray-casting wrappers.

``SceneGeometry`` holds float64 face normals, areas and centroids (for the Numba kernels), a per-face
"structure" mask (for amodal depth), the faces in spatially coherent chunks (for the rasterising
depth kernel) and an Open3D Embree ``RaycastingScene``. The Embree BVH cannot be pickled: pickling
drops it and the chunks, and the receiving process (e.g. a Dask worker) rebuilds them lazily on first
use (about 0.1 s per 300k faces each), so sending a ``SceneGeometry`` to workers is cheap and correct.
Depth maps here are z-depths in metres of the virtual camera, NaN where the ray hits nothing.

Open3D is imported on first Embree use, not at module import: it costs about 1.5 s per process and
the default depth method (the Numba rasteriser) never needs it, so prepare jobs and Dask workers
that only rasterise do not pay for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from pipeline.geometry.chunks import FaceChunks, build_chunks
from pipeline.geometry.structure import face_geometry

if TYPE_CHECKING:
    import open3d as o3d


@dataclass(eq=False)
class SceneGeometry:
    """A triangle mesh in world coordinates with what per-frame work needs.

    vertices: (V, 3) float64 world metres. faces: (F, 3) int32. face_labels: (F,) int (NYU40).
    structure: (F,) bool, face label in the structure classes. normals: (F, 3) float64 unit normals by
    winding (zero for degenerate faces; the side is re-decided per frame toward the camera).
    areas: (F,) float64 m². centroids: (F, 3) float64 world. structure_source: where ``structure``
    came from, "labels" or "inferred" (SPEC §4.9). vertex_colors: (V, 3) uint8 RGB, or None when the
    mesh has no colours.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_labels: np.ndarray
    structure: np.ndarray
    normals: np.ndarray
    areas: np.ndarray
    centroids: np.ndarray
    structure_source: str = "labels"
    vertex_colors: np.ndarray | None = None
    _raycaster: Any = field(default=None, repr=False, compare=False)
    _structure_raycaster: Any = field(default=None, repr=False, compare=False)
    _chunks: FaceChunks | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_mesh(cls, vertices: np.ndarray, faces: np.ndarray, face_labels: np.ndarray | None,
                  structure_labels: Sequence[int], *, structure: np.ndarray | None = None,
                  structure_source: str = "labels", vertex_colors: np.ndarray | None = None) -> "SceneGeometry":
        """Validate a mesh and precompute face data.

        vertices (V, 3) float world metres; faces (F, 3) int vertex indices; face_labels (F,) NYU40
        ids or None (then no face is structure). structure: (F,) bool structure faces decided by
        the caller (``pipeline.geometry.structure.choose_structure``), overriding the labels; its
        ``structure_source`` is recorded. vertex_colors: (V, 3) uint8 RGB or None. Raises ValueError
        on NaN/inf vertices, bad face indices or shapes — fix the mesh (or skip the scene) rather
        than prepare wrong rows.
        """
        v = np.asarray(vertices, dtype=np.float64)
        f = np.asarray(faces)
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"SceneGeometry.from_mesh: expected vertices (V, 3) and faces (F, 3), "
                             f"found {v.shape} and {f.shape}; pass a triangle mesh")
        if not np.all(np.isfinite(v)):
            bad = int((~np.isfinite(v).all(axis=1)).sum())
            raise ValueError(f"SceneGeometry.from_mesh: {bad} vertices are NaN/inf; repair or skip this scene")
        if f.size and (f.min() < 0 or f.max() >= v.shape[0]):
            raise ValueError(f"SceneGeometry.from_mesh: face indices must lie in [0, {v.shape[0]}), "
                             f"found [{f.min()}, {f.max()}]; the face list does not match the vertices")
        f = f.astype(np.int32)
        if face_labels is None:
            labels = np.zeros(f.shape[0], dtype=np.int32)
        else:
            labels = np.asarray(face_labels).astype(np.int32)
            if labels.shape != (f.shape[0],):
                raise ValueError(f"SceneGeometry.from_mesh: expected face_labels ({f.shape[0]},), "
                                 f"found {labels.shape}; give one NYU40 id per face")
        normals, areas, centroids = face_geometry(v, f)
        if structure is None:
            structure = np.isin(labels, np.asarray(list(structure_labels), dtype=np.int32))
        else:
            structure = np.asarray(structure, dtype=bool)
            if structure.shape != (f.shape[0],):
                raise ValueError(f"SceneGeometry.from_mesh: expected structure ({f.shape[0]},), "
                                 f"found {structure.shape}; give one flag per face")
        if vertex_colors is not None:
            vertex_colors = np.asarray(vertex_colors)
            if vertex_colors.shape != v.shape or vertex_colors.dtype != np.uint8:
                raise ValueError(f"SceneGeometry.from_mesh: expected vertex_colors ({v.shape[0]}, 3) uint8, "
                                 f"found {vertex_colors.dtype} {vertex_colors.shape}; give one RGB per vertex")
        return cls(v, f, labels, structure, normals, areas, centroids, structure_source, vertex_colors)

    @property
    def chunks(self) -> FaceChunks:
        """The faces in spatially coherent chunks with world boxes (built on first use, then cached)."""
        if self._chunks is None:
            self._chunks = build_chunks(self.vertices, self.faces, self.structure)
        return self._chunks

    @property
    def raycaster(self) -> o3d.t.geometry.RaycastingScene:
        """The Embree scene of all faces (built on first use, then cached)."""
        if self._raycaster is None:
            self._raycaster = _embree_scene(self.vertices, self.faces)
        return self._raycaster

    @property
    def structure_raycaster(self) -> o3d.t.geometry.RaycastingScene | None:
        """An Embree scene of the structure faces only (None if there are none); its first hit along
        a ray is the ray's first structure hit in one cast, whatever stands in front."""
        if self._structure_raycaster is None and self.structure.any():
            self._structure_raycaster = _embree_scene(self.vertices, self.faces[self.structure])
        return self._structure_raycaster

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        # Embree BVHs are not picklable, chunks are big: the receiver rebuilds them lazily.
        state["_raycaster"] = state["_structure_raycaster"] = state["_chunks"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _open3d():
    """The ``open3d`` module, imported on first call (see the module docstring for why)."""
    import open3d

    return open3d


def _tensor(array: np.ndarray) -> o3d.core.Tensor:
    """An Open3D tensor over ``array`` (same shape and dtype)."""
    return _open3d().core.Tensor(array)


def _embree_scene(vertices: np.ndarray, faces: np.ndarray) -> o3d.t.geometry.RaycastingScene:
    scene = _open3d().t.geometry.RaycastingScene()
    scene.add_triangles(_tensor(vertices.astype(np.float32)),
                        _tensor(np.ascontiguousarray(faces, dtype=np.uint32)))
    return scene


def _rays(origin: np.ndarray, directions: np.ndarray) -> o3d.core.Tensor:
    """(H, W, 6) float32 Open3D rays from one world origin (3,) along world directions (H, W, 3)."""
    rays = np.empty(directions.shape[:-1] + (6,), dtype=np.float32)
    rays[..., :3] = origin
    rays[..., 3:] = directions
    return _tensor(rays)


def distance_to_mesh(scene: SceneGeometry, points: np.ndarray) -> np.ndarray:
    """Unsigned distance (N,) float32, metres, from world points (N, 3) to the nearest face (Embree)."""
    query = _tensor(np.ascontiguousarray(points, dtype=np.float32))
    return scene.raycaster.compute_distance(query).numpy()


def first_hit_depth(scene: SceneGeometry, origin: np.ndarray, directions: np.ndarray,
                 nthreads: int = 0) -> np.ndarray:
    """First-hit depth (H, W) float32: t of the nearest hit along world directions (H, W, 3).

    Directions are camera rays scaled to camera z = 1 and rotated to world, so t is the z-depth.
    NaN where nothing is hit.
    """
    t = scene.raycaster.cast_rays(_rays(origin, directions), nthreads=nthreads)["t_hit"].numpy()
    return np.where(np.isfinite(t), t, np.nan).astype(np.float32)


def depth_maps_listed(scene: SceneGeometry, origin: np.ndarray,
                      directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rendered and amodal depth, each (H, W) float32, from all hits per ray (``list_intersections``).

    rendered = nearest hit; amodal (SPEC §4) = min(first hit on a structure face, farthest hit of
    any face); NaN where no hit. directions (H, W, 3) world, scaled to camera z = 1.
    """
    h, w = directions.shape[:2]
    hits = scene.raycaster.list_intersections(_rays(origin, directions).reshape((-1, 6)))
    ray_ids = hits["ray_ids"].numpy().astype(np.int64)
    t = hits["t_hit"].numpy().astype(np.float64)
    prim = hits["primitive_ids"].numpy().astype(np.int64)
    near = np.full(h * w, np.inf)
    np.minimum.at(near, ray_ids, t)
    far = np.full(h * w, -np.inf)
    np.maximum.at(far, ray_ids, t)
    first_structure = np.full(h * w, np.inf)
    s = scene.structure[prim]
    np.minimum.at(first_structure, ray_ids[s], t[s])
    return _finite(near, h, w), _finite(np.minimum(first_structure, far), h, w)


def _finite(depth: np.ndarray, h: int, w: int) -> np.ndarray:
    """(h, w) float32 with ±inf (no hit) replaced by NaN."""
    return np.where(np.isfinite(depth), depth, np.nan).reshape(h, w).astype(np.float32)


def depth_maps_first_hits(scene: SceneGeometry, origin: np.ndarray, directions: np.ndarray,
                        max_layers: int = 64, step: float = 1e-4,
                        nthreads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rendered and amodal depth (H, W) float32 from first-hit casts.

    Same definitions as ``depth_maps_listed``. The first cast (all faces) is the rendered depth.
    Where a ray has a structure hit, amodal = that hit (every hit, the farthest too, lies at or
    beyond it), found by one cast on the structure-only scene for the rays whose first hit is not
    structure. Only rays with no structure hit at all (open scans, windows without glass) need the
    farthest hit: they are re-cast from just past each hit (``step`` in t units, ≈ metres) until
    they leave the mesh; after ``max_layers`` casts the last hit found counts as the farthest.
    """
    h, w = directions.shape[:2]
    n = h * w
    rays = np.empty((n, 6), dtype=np.float32)
    rays[:, :3] = origin
    rays[:, 3:] = directions.reshape(n, 3)
    res = scene.raycaster.cast_rays(_tensor(rays), nthreads=nthreads)
    near = res["t_hit"].numpy().astype(np.float64)  # inf where no hit
    hit = np.isfinite(near)
    amodal = near.copy()  # right for rays whose first hit is structure, and for misses (inf)
    prim = np.where(hit, res["primitive_ids"].numpy(), 0).astype(np.int64)
    behind = np.flatnonzero(hit & ~scene.structure[prim])  # first hit on furniture/objects
    if behind.size and scene.structure_raycaster is not None:
        sub = _tensor(np.ascontiguousarray(rays[behind]))
        t_structure = scene.structure_raycaster.cast_rays(sub, nthreads=nthreads)["t_hit"].numpy()
        found = np.isfinite(t_structure)
        amodal[behind[found]] = t_structure[found]
        behind = behind[~found]
    _farthest_hits(scene, origin, rays[behind, 3:].astype(np.float64), near[behind], amodal, behind,
                   max_layers, step, nthreads)
    return _finite(near, h, w), _finite(amodal, h, w)


def _farthest_hits(scene: SceneGeometry, origin: np.ndarray, d: np.ndarray, t: np.ndarray,
                   out: np.ndarray, active: np.ndarray, max_layers: int, step: float,
                   nthreads: int) -> None:
    """Write into ``out[active]`` the farthest hit of rays (origin + t·d) by re-casting past each hit."""
    for _ in range(max_layers - 1):
        if active.size == 0:
            return
        sub = np.empty((active.size, 6), dtype=np.float32)
        sub[:, :3] = origin + (t + step)[:, None] * d
        sub[:, 3:] = d
        dt = scene.raycaster.cast_rays(_tensor(sub), nthreads=nthreads)["t_hit"].numpy()
        more = np.isfinite(dt)
        active, d, t = active[more], d[more], t[more] + step + dt[more]
        out[active] = t
