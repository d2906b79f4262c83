"""Triangle meshes of the scene's primitives: subdivided rectangles, boxes and cylinders.

Every builder returns `(vertices (V, 3) float64, faces (F, 3) int64)` in the primitive's own frame
(metres) with counter-clockwise winding seen from the side the normal points to, so
`cross(v1 - v0, v2 - v0)` is the outward normal. Surfaces are subdivided so that no triangle edge
along a side is longer than `edge` (metres): the face count is the scene's density knob. Optional
`cuts` add grid lines where another solid's boundary crosses the surface, so that every triangle
lies wholly inside or wholly outside that solid (composite furniture drops the covered ones).
"""
from __future__ import annotations

import math

import numpy as np

Mesh = tuple[np.ndarray, np.ndarray]


def _steps(length: float, edge: float) -> int:
    return max(1, int(math.ceil(length / edge - 1e-9)))


def _breaks(length: float, edge: float, cuts=()) -> np.ndarray:
    """Sorted fractions in [0, 1]: a uniform subdivision to `edge` plus the `cuts` inside (0, 1)."""
    uniform = np.linspace(0.0, 1.0, _steps(length, edge) + 1)
    inner = [c for c in cuts if 1e-9 < c < 1.0 - 1e-9]
    out = np.unique(np.concatenate([uniform, np.asarray(inner, dtype=np.float64)]))
    return out[np.concatenate([[True], np.diff(out) > 1e-9])]


def rectangle(origin: np.ndarray, axis_u: np.ndarray, axis_v: np.ndarray, edge: float,
              cuts_u=(), cuts_v=()) -> Mesh:
    """A planar rectangle `origin + s*axis_u + t*axis_v`, s, t in [0, 1], as a grid of triangles.

    Args:
        origin: (3,) corner, metres. axis_u, axis_v: (3,) side vectors (their lengths are the side
            lengths). The normal is `cross(axis_u, axis_v)` (right-hand rule).
        edge: target edge length, metres.
        cuts_u, cuts_v: extra grid lines at these fractions of axis_u / axis_v (outside (0, 1): ignored).
    Returns: vertices (V, 3) float64, faces (F, 3) int64, F = 2 * nu * nv (nu, nv grid cells).
    """
    origin, axis_u, axis_v = (np.asarray(a, dtype=np.float64) for a in (origin, axis_u, axis_v))
    bu = _breaks(float(np.linalg.norm(axis_u)), edge, cuts_u)
    bv = _breaks(float(np.linalg.norm(axis_v)), edge, cuts_v)
    nu, nv = len(bu) - 1, len(bv) - 1
    s, t = np.meshgrid(bu, bv, indexing="ij")
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


def _side(origin, axis_u, axis_v, edge: float, cuts) -> Mesh:
    """A box side with grid lines at the box-frame coordinates `cuts[k]` along its axes."""
    origin, axis_u, axis_v = (np.asarray(a, dtype=np.float64) for a in (origin, axis_u, axis_v))

    def fractions(axis: np.ndarray) -> list[float]:
        k = int(np.argmax(np.abs(axis)))
        return [(c - origin[k]) / axis[k] for c in cuts[k]]

    return rectangle(origin, axis_u, axis_v, edge, fractions(axis_u), fractions(axis_v))


def box(size: np.ndarray, edge: float, *, bottom: bool = True, inward: bool = False,
        cuts=((), (), ())) -> Mesh:
    """An axis-aligned box centred on the origin; normals point out (or in, for a room shell).

    Args:
        size: (3,) full extents along x, y, z, metres.
        edge: target edge length, metres.
        bottom: include the face at z = -size_z/2 (scans leave it out: nothing sees under furniture).
        inward: flip every face so the normals point into the box (the inside of a room).
        cuts: three sequences of box-frame coordinates (metres) along x, y, z where extra grid
            lines run across the sides.
    Returns: vertices (V, 3), faces (F, 3); each side has its own vertices.
    """
    hx, hy, hz = np.asarray(size, dtype=np.float64) / 2.0
    ex, ey, ez = np.array([2 * hx, 0, 0]), np.array([0, 2 * hy, 0]), np.array([0, 0, 2 * hz])
    sides = [
        _side([-hx, -hy, hz], ex, ey, edge, cuts),  # top, normal +z
        _side([hx, -hy, -hz], ey, ez, edge, cuts),  # +x
        _side([-hx, -hy, -hz], ez, ey, edge, cuts),  # -x
        _side([-hx, hy, -hz], ez, ex, edge, cuts),  # +y
        _side([-hx, -hy, -hz], ex, ez, edge, cuts),  # -y
    ]
    if bottom:
        sides.append(_side([-hx, -hy, -hz], ey, ex, edge, cuts))  # -z
    vertices, faces = merge(sides)
    if inward:
        faces = faces[:, ::-1].copy()
    return vertices, faces


def cylinder(radius: float, height: float, edge: float, *, bottom: bool = True,
             cuts_z=(), cuts_r=()) -> Mesh:
    """A vertical cylinder centred on the origin (axis z, from -height/2 to +height/2), normals out.

    The side is a grid of `n` segments around and enough rings to keep edges below `edge`; each
    cap is a polar grid (concentric rings around a centre vertex). `bottom=False` leaves the lower
    cap out (an open scan mesh). `cuts_z` (heights in the cylinder frame) and `cuts_r` (radii) add
    rings where a coaxial solid's boundary crosses the side or the caps. Returns vertices (V, 3),
    faces (F, 3).
    """
    n = max(12, _steps(2 * math.pi * radius, edge))
    theta = 2 * math.pi * np.arange(n) / n
    circle = np.stack([radius * np.cos(theta), radius * np.sin(theta)], 1)
    z = _breaks(height, edge, [(c + height / 2) / height for c in cuts_z]) * height - height / 2
    side_v = np.concatenate([np.column_stack([circle, np.full(n, zk)]) for zk in z])
    i = np.arange(n)
    j = (i + 1) % n
    side_f = []
    for r in range(len(z) - 1):
        lo, hi = r * n, (r + 1) * n
        side_f += [np.stack([lo + i, lo + j, hi + j], 1), np.stack([lo + i, hi + j, hi + i], 1)]
    parts = [(side_v, np.concatenate(side_f))]
    caps = [(height / 2, True)] + ([(-height / 2, False)] if bottom else [])
    rings = _breaks(radius, edge, [c / radius for c in cuts_r])[1:]
    for zc, up in caps:
        parts.append(_disc(circle, zc, rings, up))
    return merge(parts)


def _disc(circle: np.ndarray, zc: float, rings: np.ndarray, up: bool) -> Mesh:
    """Polar-grid disc of the given rim (n, 2) at height zc with rings at the radius fractions
    `rings` (increasing, last = 1), normal +z if `up` else -z."""
    n = len(circle)
    verts = [np.array([[0.0, 0.0, zc]])]
    for fraction in rings:
        verts.append(np.column_stack([circle * fraction, np.full(n, zc)]))
    vertices = np.concatenate(verts)
    i = np.arange(n)
    j = (i + 1) % n
    faces = [np.stack([np.zeros(n, dtype=np.int64), 1 + i, 1 + j], 1)]
    for k in range(1, len(rings)):
        lo, hi = 1 + (k - 1) * n, 1 + k * n
        faces += [np.stack([lo + i, hi + i, hi + j], 1), np.stack([lo + i, hi + j, lo + j], 1)]
    faces = np.concatenate(faces)
    if not up:
        faces = faces[:, ::-1].copy()
    return vertices, faces
