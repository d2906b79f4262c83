"""Per-scene mesh state built once and reused for every frame, plus the ray-casting wrappers.

``SceneGeometry`` holds float64 face normals, areas and centroids (for the Numba kernels), a per-face
"structure" mask (for amodal depth) and an Open3D Embree ``RaycastingScene``. The Embree BVH cannot
be pickled: pickling drops it and the receiving process (e.g. a Dask worker) rebuilds it lazily on
first use (about 0.1 s per 300k faces), so sending a ``SceneGeometry`` to workers is cheap and correct.
Depth maps here are z-depths in metres of the virtual camera, NaN where the ray hits nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import open3d as o3d


@dataclass(eq=False)
class SceneGeometry:
    """A triangle mesh in world coordinates with what per-frame work needs.

    vertices: (V, 3) float64 world metres. faces: (F, 3) int32. face_labels: (F,) int (NYU40).
    structure: (F,) bool, face label in the structure classes. normals: (F, 3) float64 unit normals by
    winding (zero for degenerate faces; the side is re-decided per frame toward the camera).
    areas: (F,) float64 m². centroids: (F, 3) float64 world.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_labels: np.ndarray
    structure: np.ndarray
    normals: np.ndarray
    areas: np.ndarray
    centroids: np.ndarray
    _raycaster: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_mesh(cls, vertices: np.ndarray, faces: np.ndarray, face_labels: np.ndarray | None,
                  structure_labels: Sequence[int]) -> "SceneGeometry":
        """Validate a mesh and precompute face data.

        vertices (V, 3) float world metres; faces (F, 3) int vertex indices; face_labels (F,) NYU40
        ids or None (then no face is structure). Raises ValueError on NaN/inf vertices, bad face
        indices or shapes — fix the mesh (or skip the scene) rather than prepare wrong rows.
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
        a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
        cross = np.cross(b - a, c - a)
        norm = np.linalg.norm(cross, axis=1)
        normals = np.divide(cross, norm[:, None], out=np.zeros_like(cross), where=norm[:, None] > 0)
        structure = np.isin(labels, np.asarray(list(structure_labels), dtype=np.int32))
        return cls(v, f, labels, structure, normals, 0.5 * norm, (a + b + c) / 3.0)

    @property
    def raycaster(self) -> o3d.t.geometry.RaycastingScene:
        """The Embree scene (built on first use, then cached)."""
        if self._raycaster is None:
            scene = o3d.t.geometry.RaycastingScene()
            scene.add_triangles(o3d.core.Tensor(self.vertices.astype(np.float32)),
                                o3d.core.Tensor(self.faces.astype(np.uint32)))
            self._raycaster = scene
        return self._raycaster

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_raycaster"] = None  # Embree BVH is not picklable; rebuilt lazily in the receiver
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _rays(origin: np.ndarray, directions: np.ndarray) -> o3d.core.Tensor:
    """(H, W, 6) float32 Open3D rays from one world origin (3,) along world directions (H, W, 3)."""
    rays = np.empty(directions.shape[:-1] + (6,), dtype=np.float32)
    rays[..., :3] = origin
    rays[..., 3:] = directions
    return o3d.core.Tensor(rays)


def render_depth(scene: SceneGeometry, origin: np.ndarray, directions: np.ndarray,
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


def depth_maps_repeated(scene: SceneGeometry, origin: np.ndarray, directions: np.ndarray,
                        max_layers: int = 64, step: float = 1e-4,
                        nthreads: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rendered and amodal depth (H, W) float32 by repeated first-hit casting past the previous hit.

    Same definitions as ``depth_maps_listed``; the first cast is the rendered depth. ``step`` (in t
    units, ≈ metres) skips the surface just hit. A ray stops at its first structure hit (every later
    hit is farther, so the minimum is settled); rays still hitting after ``max_layers`` casts keep
    the last hit found as the farthest.
    """
    h, w = directions.shape[:2]
    n = h * w
    rays = np.empty((n, 6), dtype=np.float32)
    rays[:, :3] = origin
    rays[:, 3:] = directions.reshape(n, 3)
    res = scene.raycaster.cast_rays(o3d.core.Tensor(rays), nthreads=nthreads)
    near = res["t_hit"].numpy().astype(np.float64)  # inf where no hit
    hit = np.isfinite(near)
    amodal = near.copy()  # = farthest hit so far; overwritten below while rays continue
    prim = np.where(hit, res["primitive_ids"].numpy(), 0).astype(np.int64)
    # Rays that hit a non-structure face first continue; all others are settled after one cast.
    active = np.flatnonzero(hit & ~scene.structure[prim])
    d = rays[active, 3:].astype(np.float64)
    t = near[active]
    for _ in range(max_layers - 1):
        if active.size == 0:
            break
        sub = np.empty((active.size, 6), dtype=np.float32)
        sub[:, :3] = origin + (t + step)[:, None] * d
        sub[:, 3:] = d
        res = scene.raycaster.cast_rays(o3d.core.Tensor(sub), nthreads=nthreads)
        dt = res["t_hit"].numpy().astype(np.float64)
        more = np.isfinite(dt)
        active, d, t = active[more], d[more], t[more] + step + dt[more]
        amodal[active] = t  # farthest so far, or the first structure hit (then the ray stops)
        go_on = ~scene.structure[res["primitive_ids"].numpy()[more].astype(np.int64)]
        active, d, t = active[go_on], d[go_on], t[go_on]
    return _finite(near, h, w), _finite(amodal, h, w)
