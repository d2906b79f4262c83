"""The structure of an apartment plan: the scanned surfaces (wall sheets with their openings cut
out, reveals, floors, ceilings, facades outside the windows) and the analytic room shell.

Conventions as in `plan`: world z up, metres; every `Surface` normal points into free space.
"""
from __future__ import annotations

import numpy as np

from .plan import OUTER_WALL, SLAB, Opening, Room, Surface, apartment_bounds, axis_rect
from .solids import Solid, any_contains


def _wall_pieces(name: str, axis: int, value: float, sign: int, span: tuple[float, float],
                 holes: list[tuple[float, float, float, float]], height: float) -> list[Surface]:
    """The sheet `x[axis] = value` over `span` × [0, height] minus `holes` (s0, s1, z0, z1), as
    rectangles: full-height strips between holes, and the parts below and above each hole."""
    along = 1 - axis
    pieces: list[tuple[float, float, float, float]] = []
    cursor = span[0]
    for s0, s1, z0, z1 in sorted(holes):
        if s0 > cursor:
            pieces.append((cursor, s0, 0.0, height))
        if z0 > 0:
            pieces.append((s0, s1, 0.0, z0))
        if z1 < height:
            pieces.append((s0, s1, z1, height))
        cursor = s1
    if span[1] > cursor:
        pieces.append((cursor, span[1], 0.0, height))
    out = []
    for k, (s0, s1, z0, z1) in enumerate(pieces):
        lo, hi = [0.0, 0.0, z0], [0.0, 0.0, z1]
        lo[along], hi[along] = s0, s1
        out.append(axis_rect(f"{name}_{k}", "wall", axis, value, lo, hi, sign))
    return out


def _reveals(index: int, opening: Opening) -> list[Surface]:
    """The four faces lining an opening's passage (normals into the passage)."""
    x0, y0, z0, x1, y1, z1 = opening.box
    lo, hi = np.array([x0, y0, z0]), np.array([x1, y1, z1])
    along = 1 - opening.axis
    frame = "door" if opening.kind == "doorway" else "window"
    name = f"{opening.kind}_{index}"
    out = [axis_rect(f"{name}_jamb0", frame, along, lo[along], lo, hi, +1),
           axis_rect(f"{name}_jamb1", frame, along, hi[along], lo, hi, -1),
           axis_rect(f"{name}_head", frame, 2, hi[2], lo, hi, -1)]
    bottom = "floor" if opening.kind == "doorway" else "window"  # threshold or sill
    out.append(axis_rect(f"{name}_{'threshold' if bottom == 'floor' else 'sill'}", bottom, 2, lo[2], lo, hi, +1))
    return out


def room_surfaces(rooms: list[Room], openings: list[Opening], height: float) -> list[Surface]:
    """Floors, ceilings, wall sheets (openings cut out) and opening reveals of every room."""
    out: list[Surface] = []
    for k, room in enumerate(rooms):
        x0, y0, x1, y1 = room.box
        out.append(axis_rect(f"{room.name}_floor", "floor", 2, 0.0, [x0, y0, 0], [x1, y1, 0], +1))
        out.append(axis_rect(f"{room.name}_ceiling", "ceiling", 2, height, [x0, y0, 0], [x1, y1, 0], -1))
        for axis in (0, 1):
            for side in (-1, 1):
                value = room.box[axis + 2] if side > 0 else room.box[axis]
                holes = []
                for o in openings:
                    if o.axis == axis and k in o.rooms and (o.side if o.rooms[0] == k else -o.side) == side:
                        b = o.box
                        holes.append((b[1 - axis], b[4 - axis], b[2], b[5]))
                span = (room.box[1 - axis], room.box[3 - axis])
                out += _wall_pieces(f"{room.name}_wall_{'xy'[axis]}{'01'[side > 0]}", axis, value, -side,
                                    span, holes, height)
    for index, opening in enumerate(openings):
        out += _reveals(index, opening)
    return out


def facades(rooms: list[Room], openings: list[Opening], height: float,
            rng: np.random.Generator) -> tuple[list[Surface], list[Solid]]:
    """A neighbouring building's facade outside every outer wall that has a window: its surface
    (facing the apartment, 2.5–5 m from the outer wall) and its solid (0.5 m thick)."""
    bounds = apartment_bounds(rooms)
    surfaces, solids = [], []
    walls = sorted({(o.axis, o.side) for o in openings if o.kind == "window"})
    for axis, side in walls:
        along = 1 - axis
        outer = (bounds[axis + 3] if side > 0 else bounds[axis]) + side * OUTER_WALL
        value = outer + side * rng.uniform(2.5, 5.0)
        lo, hi = [0.0, 0.0, -1.0], [0.0, 0.0, height + 3.0]
        lo[along], hi[along] = bounds[along] - 3.0, bounds[along + 3] + 3.0
        surfaces.append(axis_rect(f"facade_{'xy'[axis]}{'01'[side > 0]}", "wall", axis, value, lo, hi, -side))
        centre, size = np.array(lo, float) / 2 + np.array(hi, float) / 2, np.array(hi, float) - np.array(lo, float)
        centre[axis], size[axis] = value + side * 0.25, 0.5
        solids.append(Solid("box", [float(v) for v in centre], [float(v) for v in size]))
    return surfaces, solids


def shell_solids(rooms: list[Room], openings: list[Opening], height: float) -> tuple[list[Solid], list[Solid]]:
    """(grown room boxes, free boxes): the shell is inside a grown box and inside no free box."""
    grown, free = [], []
    for room in rooms:
        x0, y0, x1, y1 = room.box
        grown.append(Solid("box", [(x0 + x1) / 2, (y0 + y1) / 2, height / 2],
                           [x1 - x0 + 2 * OUTER_WALL, y1 - y0 + 2 * OUTER_WALL, height + 2 * SLAB]))
        free.append(Solid("box", [(x0 + x1) / 2, (y0 + y1) / 2, height / 2], [x1 - x0, y1 - y0, height]))
    for o in openings:
        lo, hi = np.array(o.box[:3]), np.array(o.box[3:])
        free.append(Solid("box", [float(v) for v in (lo + hi) / 2], [float(v) for v in hi - lo]))
    return grown, free


def shell_contains(grown: list[Solid], free: list[Solid], points: np.ndarray) -> np.ndarray:
    """(N,) bool: world `points` (N, 3) inside the walls, floor or ceiling slabs."""
    return any_contains(grown, points) & ~any_contains(free, points)


def ray_rectangles(surfaces: list[Surface], origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Analytic ray casting against rectangles: (N, S) ray parameters t > 0 at which the rays
    `origin + t * directions[n]` (world, any length) cross surface s, inf where they miss it.
    Both sides of a rectangle count. float64."""
    o = np.asarray(origin, dtype=np.float64)
    d = np.asarray(directions, dtype=np.float64)
    out = np.full((len(d), len(surfaces)), np.inf)
    for k, s in enumerate(surfaces):
        c, u, v = (np.asarray(x, dtype=np.float64) for x in (s.origin, s.axis_u, s.axis_v))
        n = np.cross(u, v)
        denom = d @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((c - o) @ n) / denom
            p = o + t[:, None] * d - c
            a, b = p @ u / (u @ u), p @ v / (v @ v)
        hit = (np.abs(denom) > 1e-12) & (t > 0) & (a >= 0) & (a <= 1) & (b >= 0) & (b <= 1)
        out[hit, k] = t[hit]
    return out
