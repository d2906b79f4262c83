"""Triangle meshes of the scene's primitives: subdivided rectangles, boxes and cylinders.

Every builder returns `(vertices (V, 3) float64, faces (F, 3) int64)` in the primitive's own frame
(metres) with counter-clockwise winding seen from the side the normal points to, so
`cross(v1 - v0, v2 - v0)` is the outward normal. Surfaces are subdivided so that no triangle edge
along a side is longer than `edge` (metres): the face count is the scene's density knob.
"""
from __future__ import annotations

import math

import numpy as np

Mesh = tuple[np.ndarray, np.ndarray]


def _steps(length: float, edge: float) -> int:
    return max(1, int(math.ceil(length / edge - 1e-9)))


def rectangle(origin: np.ndarray, axis_u: np.ndarray, axis_v: np.ndarray, edge: float) -> Mesh:
    """A planar rectangle `origin + s*axis_u + t*axis_v`, s, t in [0, 1], as a grid of triangles.

    Args:
        origin: (3,) corner, metres. axis_u, axis_v: (3,) side vectors (their lengths are the side
            lengths). The normal is `cross(axis_u, axis_v)` (right-hand rule).
        edge: target edge length, metres.
    Returns: vertices (V, 3) float64, faces (F, 3) int64, F = 2 * nu * nv.
    """
    origin, axis_u, axis_v = (np.asarray(a, dtype=np.float64) for a in (origin, axis_u, axis_v))
    nu = _steps(float(np.linalg.norm(axis_u)), edge)
    nv = _steps(float(np.linalg.norm(axis_v)), edge)
    s, t = np.meshgrid(np.linspace(0.0, 1.0, nu + 1), np.linspace(0.0, 1.0, nv + 1), indexing="ij")
    vertices = origin + s.reshape(-1, 1) * axis_u + t.reshape(-1, 1) * axis_v
    idx = np.arange((nu + 1) * (nv + 1)).reshape(nu + 1, nv + 1)
    a, b = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel()
    c, d = idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return vertices, faces


def merge(parts: list[Mesh]) -> Mesh:
    """Concatenate meshes, offsetting face indices (vertices are not welded)."""
    offsets = np.cumsum([0] + [len(v) for v, _ in parts[:-1]])
    vertices = np.concatenate([v for v, _ in parts])
    faces = np.concatenate([f + o for (_, f), o in zip(parts, offsets)])
    return vertices, faces


def box(size: np.ndarray, edge: float, *, bottom: bool = True, inward: bool = False) -> Mesh:
    """An axis-aligned box centred on the origin; normals point out (or in, for a room shell).

    Args:
        size: (3,) full extents along x, y, z, metres.
        edge: target edge length, metres.
        bottom: include the face at z = -size_z/2 (scans leave it out: nothing sees under furniture).
        inward: flip every face so the normals point into the box (the inside of a room).
    Returns: vertices (V, 3), faces (F, 3); each side has its own vertices.
    """
    hx, hy, hz = np.asarray(size, dtype=np.float64) / 2.0
    ex, ey, ez = np.array([2 * hx, 0, 0]), np.array([0, 2 * hy, 0]), np.array([0, 0, 2 * hz])
    sides = [
        rectangle([-hx, -hy, hz], ex, ey, edge),  # top, normal +z
        rectangle([hx, -hy, -hz], ey, ez, edge),  # +x
        rectangle([-hx, -hy, -hz], ez, ey, edge),  # -x
        rectangle([-hx, hy, -hz], ez, ex, edge),  # +y
        rectangle([-hx, -hy, -hz], ex, ez, edge),  # -y
    ]
    if bottom:
        sides.append(rectangle([-hx, -hy, -hz], ey, ex, edge))  # -z
    vertices, faces = merge(sides)
    if inward:
        faces = faces[:, ::-1].copy()
    return vertices, faces


def cylinder(radius: float, height: float, edge: float, *, bottom: bool = True) -> Mesh:
    """A vertical cylinder centred on the origin (axis z, from -height/2 to +height/2), normals out.

    The side is a grid of `n` segments around and enough rings to keep edges below `edge`; each
    cap is a polar grid (concentric rings around a centre vertex). `bottom=False` leaves the lower
    cap out (an open scan mesh). Returns vertices (V, 3), faces (F, 3).
    """
    n = max(12, _steps(2 * math.pi * radius, edge))
    rings = _steps(height, edge)
    theta = 2 * math.pi * np.arange(n) / n
    circle = np.stack([radius * np.cos(theta), radius * np.sin(theta)], 1)
    z = np.linspace(-height / 2, height / 2, rings + 1)
    side_v = np.concatenate([np.column_stack([circle, np.full(n, zk)]) for zk in z])
    i = np.arange(n)
    j = (i + 1) % n
    side_f = []
    for r in range(rings):
        lo, hi = r * n, (r + 1) * n
        side_f += [np.stack([lo + i, lo + j, hi + j], 1), np.stack([lo + i, hi + j, hi + i], 1)]
    parts = [(side_v, np.concatenate(side_f))]
    caps = [(height / 2, True)] + ([(-height / 2, False)] if bottom else [])
    for zc, up in caps:
        parts.append(_disc(circle, zc, _steps(radius, edge), up))
    return merge(parts)


def _disc(circle: np.ndarray, zc: float, rings: int, up: bool) -> Mesh:
    """Polar-grid disc of the given rim (n, 2) at height zc, normal +z if `up` else -z."""
    n = len(circle)
    verts = [np.array([[0.0, 0.0, zc]])]
    for k in range(1, rings + 1):
        verts.append(np.column_stack([circle * (k / rings), np.full(n, zc)]))
    vertices = np.concatenate(verts)
    i = np.arange(n)
    j = (i + 1) % n
    faces = [np.stack([np.zeros(n, dtype=np.int64), 1 + i, 1 + j], 1)]
    for k in range(1, rings):
        lo, hi = 1 + (k - 1) * n, 1 + k * n
        faces += [np.stack([lo + i, hi + i, hi + j], 1), np.stack([lo + i, hi + j, lo + j], 1)]
    faces = np.concatenate(faces)
    if not up:
        faces = faces[:, ::-1].copy()
    return vertices, faces
