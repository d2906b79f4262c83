"""Analytic solids (boxes, vertical cylinders) and the union surface of a composite object.

A `Solid` lives in its owner's frame (an object's own frame, or the world): `center` and `size`
(extents along x, y, z; a cylinder's x and y are its diameter), metres. Composite furniture is a
union of solids; `union_mesh` triangulates the boundary of that union as a scan would see it: every
part is subdivided with extra grid lines where the other parts' boundaries cross it, and the
triangles that lie inside (or flush against) another part, or against the room shell (a bottom on
the floor), are dropped, as is the second of two coplanar faces covering the same spot. The
remaining triangles have outward normals (`cross(v1 - v0, v2 - v0)`) and cover the boundary once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .primitives import Mesh, box, cylinder, merge

_EPS = 1e-6  # metres: how far off a triangle its "outside" test point lies


@dataclass
class Solid:
    """A box or vertical cylinder: `center` (3,) and `size` (3,) extents in its owner's frame, metres."""

    primitive: str
    center: list[float]
    size: list[float]


def solid_contains(solid: Solid, points: np.ndarray) -> np.ndarray:
    """(N,) bool: `points` (N, 3), in the solid's frame, lie strictly inside it."""
    d = np.asarray(points, dtype=np.float64) - np.asarray(solid.center)
    half = np.asarray(solid.size, dtype=np.float64) / 2.0
    if solid.primitive == "box":
        return np.all(np.abs(d) < half, axis=1)
    return (d[:, 0] ** 2 + d[:, 1] ** 2 < half[0] ** 2) & (np.abs(d[:, 2]) < half[2])


def any_contains(solids: list[Solid], points: np.ndarray) -> np.ndarray:
    """(N,) bool: inside at least one of `solids` (all in the frame of `points`)."""
    inside = np.zeros(len(points), dtype=bool)
    for solid in solids:
        inside |= solid_contains(solid, points)
    return inside


def _part_mesh(part: Solid, others: list[Solid], edge: float) -> Mesh:
    """The part's surface in the owner's frame with grid lines at the other parts' boundaries."""
    c = np.asarray(part.center, dtype=np.float64)
    size = np.asarray(part.size, dtype=np.float64)
    if part.primitive == "box":
        cuts = tuple([v - c[k] for o in others for v in (o.center[k] - o.size[k] / 2, o.center[k] + o.size[k] / 2)]
                     for k in range(3))
        v, f = box(size, edge, cuts=cuts)
    else:
        if any(o.primitive != "cylinder" or not np.allclose(o.center[:2], c[:2]) for o in others):
            raise ValueError("union_mesh: a cylinder may only be combined with coaxial cylinders")
        cuts_z = [v - c[2] for o in others for v in (o.center[2] - o.size[2] / 2, o.center[2] + o.size[2] / 2)]
        v, f = cylinder(size[0] / 2, size[2], edge, cuts_z=cuts_z, cuts_r=[o.size[0] / 2 for o in others])
    return v + c, f


def union_mesh(parts: list[Solid], edge: float, to_world: Callable[[np.ndarray], np.ndarray],
               blocked: Callable[[np.ndarray], np.ndarray]) -> Mesh:
    """Boundary of the union of `parts` as a triangle mesh in WORLD coordinates.

    Args:
        parts: the solids, in the object's frame. Boxes must be axis-aligned in that frame (they
            are by construction); cylinders combine only with coaxial cylinders.
        edge: target edge length, metres.
        to_world: maps (N, 3) object-frame points to world (a rigid motion).
        blocked: (N, 3) world points -> (N,) bool, True where other solid matter is (the room
            shell): triangles whose outside touches it are dropped (e.g. a bottom on the floor).
    Returns: vertices (V, 3) float64 world, faces (F, 3) int64; vertices used by no face are removed.
    """
    meshes = []
    for i, part in enumerate(parts):
        others = parts[:i] + parts[i + 1:]
        v, f = _part_mesh(part, others, edge)
        tri = v[f]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        centre = tri.mean(axis=1)
        probe = centre + _EPS * normal
        keep = ~any_contains(others, probe) & ~blocked(to_world(probe))
        keep &= ~any_contains(parts[:i], centre - _EPS * normal)  # a coplanar twin of an earlier part's face
        meshes.append((v, f[keep]))
    vertices, faces = merge(meshes)
    used = np.unique(faces)
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return to_world(vertices[used]), remap[faces]
