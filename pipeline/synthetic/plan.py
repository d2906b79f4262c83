"""Floor plans of the synthetic apartments: rooms, doorways, windows, the structure surfaces of the
scan mesh and the analytic room shell.

World frame: z up, metres, floor at z = 0, ceiling at z = height. Rooms are axis-aligned boxes of
free space; walls between rooms are `wall_thickness` thick, outer walls `OUTER_WALL` thick, floor
and ceiling slabs `SLAB` thick. A doorway is an opening through a wall between two rooms; a window
an opening through an outer wall, with a neighbouring building's facade a few metres outside. Each
opening is a free "passage" box through its wall, lined by reveal surfaces (door frame: door label;
window frame and sill: window; threshold: floor). Two plans exist: a row of 2–4 rooms, each opening
into the next, and a corridor along the apartment with 2–3 rooms opening off it.

The shell is solid where a room's box grown by the outer wall and slab thickness reaches and no
room or passage is: walls, floor and ceiling slabs. Every structure surface is a `Surface` whose
normal points into free space.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .categories import BY_NAME

OUTER_WALL = 0.25  # metres: outer wall thickness (window reveals are this deep)
SLAB = 0.25  # metres: floor and ceiling slab thickness
DOOR_KEEPOUT = 0.9  # metres kept free of furniture in front of a doorway


@dataclass
class Surface:
    """A structural rectangle `origin + s*axis_u + t*axis_v`, s, t in [0, 1] (world, metres).

    Its normal `cross(axis_u, axis_v)` points into free space. `face_range` = [start, stop) of its
    faces in the scene mesh.
    """

    name: str
    category: str
    label: int
    origin: list[float]
    axis_u: list[float]
    axis_v: list[float]
    face_range: list[int] | None = None


@dataclass
class Room:
    """`box` [x0, y0, x1, y1] of free floor (metres, world); `kind` "room" or "corridor";
    `camera_zone` [x0, y0, x1, y1] inside it is kept free of furniture for the camera path."""

    name: str
    kind: str
    box: list[float]
    camera_zone: list[float]


@dataclass
class Opening:
    """A doorway (`rooms` = [a, b]) or window (`rooms` = [a]) through a wall of room a.

    `box` [x0, y0, z0, x1, y1, z1]: the free passage through the wall (world, metres); `axis` (0 or 1)
    is the world axis across the wall; `side` is +1 when the wall is on room a's high side."""

    kind: str
    rooms: list[int]
    axis: int
    side: int
    box: list[float]


def axis_rect(name: str, category: str, axis: int, value: float, lo, hi, sign: int) -> Surface:
    """The rectangle on the plane `x[axis] = value` spanning [lo, hi] on the two other axes, with
    normal `sign * e_axis`."""
    a, b = (axis + 1) % 3, (axis + 2) % 3
    origin = np.zeros(3)
    origin[axis], origin[a], origin[b] = value, lo[a], lo[b]
    ua, vb = np.zeros(3), np.zeros(3)
    ua[a], vb[b] = hi[a] - lo[a], hi[b] - lo[b]
    u, v = (ua, vb) if sign > 0 else (vb, ua)  # e_a x e_b = e_axis
    return Surface(name, category, BY_NAME[category].nyu40id, [float(x) for x in origin],
                   [float(x) for x in u], [float(x) for x in v])


def _zone(box: list[float], kind: str) -> list[float]:
    x0, y0, x1, y1 = box
    if kind == "corridor":  # a strip along the corridor's long axis
        if x1 - x0 >= y1 - y0:
            cy = (y0 + y1) / 2
            return [x0 + 0.5, cy - 0.15, x1 - 0.5, cy + 0.15]
        cx = (x0 + x1) / 2
        return [cx - 0.15, y0 + 0.5, cx + 0.15, y1 - 0.5]
    return [x0 + 0.32 * (x1 - x0), y0 + 0.32 * (y1 - y0), x0 + 0.68 * (x1 - x0), y0 + 0.68 * (y1 - y0)]


def _room(name: str, kind: str, box) -> Room:
    box = [float(v) for v in box]
    return Room(name, kind, box, _zone(box, kind))


def draw_rooms(count: int, wall_range: tuple[float, float],
               rng: np.random.Generator) -> tuple[list[Room], list[tuple[int, int]], float]:
    """`count` (2–4) rooms, the pairs joined by a doorway, and the inner wall thickness (metres,
    drawn from `wall_range`)."""
    t = float(rng.uniform(*wall_range))
    depth = rng.uniform(3.6, 5.2)
    if count >= 3 and rng.random() < 0.5:  # corridor along x, rooms on its +y side
        widths = rng.uniform(3.0, 4.6, count - 1)
        c = rng.uniform(1.3, 1.7)
        length = widths.sum() + t * (count - 2)
        rooms = [_room("corridor", "corridor", (0.0, 0.0, length, c))]
        x = 0.0
        for k, w in enumerate(widths):
            rooms.append(_room(f"room_{k}", "room", (x, c + t, x + w, c + t + depth)))
            x += w + t
        pairs = [(0, k) for k in range(1, count)]
        pairs += [(k, k + 1) for k in range(1, count - 1) if rng.random() < 0.5]
        return rooms, pairs, t
    widths = rng.uniform(3.2, 5.0, count)
    rooms, x = [], 0.0
    for k, w in enumerate(widths):
        rooms.append(_room(f"room_{k}", "room", (x, 0.0, x + w, depth)))
        x += w + t
    return rooms, [(k, k + 1) for k in range(count - 1)], t


def _free_interval(lo: float, hi: float, width: float, taken: list[tuple[float, float]],
                   rng: np.random.Generator) -> tuple[float, float] | None:
    """A [s, s + width] inside [lo + 0.3, hi - 0.3] clear of `taken` by 0.3 m, or None."""
    for _ in range(30):
        s = rng.uniform(lo + 0.3, hi - 0.3 - width) if hi - lo - 0.6 > width else None
        if s is None:
            return None
        if all(s + width + 0.3 <= a or s >= b + 0.3 for a, b in taken):
            return s, s + width
    return None


def _shared_wall(a: Room, b: Room) -> tuple[int, int, float, float, float, float]:
    """(axis, side of a, a's wall coordinate, b's wall coordinate, overlap lo, hi) of adjacent rooms."""
    for axis in (0, 1):
        other = 1 - axis
        lo, hi = max(a.box[other], b.box[other]), min(a.box[other + 2], b.box[other + 2])
        if a.box[axis + 2] < b.box[axis] and hi > lo:
            return axis, 1, a.box[axis + 2], b.box[axis], lo, hi
        if b.box[axis + 2] < a.box[axis] and hi > lo:
            return axis, -1, a.box[axis], b.box[axis + 2], lo, hi
    raise ValueError(f"rooms {a.name} and {b.name} share no wall")


def draw_openings(rooms: list[Room], pairs: list[tuple[int, int]], height: float,
                  rng: np.random.Generator) -> list[Opening]:
    """One doorway per joined pair; one or two windows per room on its outer walls."""
    openings: list[Opening] = []
    taken: dict[tuple[int, int, int], list[tuple[float, float]]] = {}  # (room, axis, side) -> spans

    def box(axis: int, c0: float, c1: float, s0: float, s1: float, z0: float, z1: float) -> list[float]:
        lo, hi = [0.0, 0.0, z0], [0.0, 0.0, z1]
        lo[axis], hi[axis], lo[1 - axis], hi[1 - axis] = min(c0, c1), max(c0, c1), s0, s1
        return [float(v) for v in lo + hi]

    for a, b in pairs:
        axis, side, ca, cb, lo, hi = _shared_wall(rooms[a], rooms[b])
        span = _free_interval(lo, hi, rng.uniform(0.8, 1.0), taken.get((a, axis, side), []), rng)
        if span is None:
            continue
        taken.setdefault((a, axis, side), []).append(span)
        taken.setdefault((b, axis, -side), []).append(span)
        openings.append(Opening("doorway", [a, b], axis, side, box(axis, ca, cb, *span, 0.0, rng.uniform(2.0, 2.1))))
    bounds = apartment_bounds(rooms)
    for k, room in enumerate(rooms):
        if room.kind != "room":
            continue
        outer = [(axis, side) for axis in (0, 1) for side in (-1, 1)
                 if np.isclose(room.box[axis + (2 if side > 0 else 0)], bounds[axis + (3 if side > 0 else 0)])]
        for _ in range(int(rng.integers(1, 3))):
            axis, side = outer[int(rng.integers(len(outer)))]
            wall = room.box[axis + 2] if side > 0 else room.box[axis]
            sill = rng.uniform(0.8, 1.0)
            top = min(height - 0.2, sill + rng.uniform(1.0, 1.4))
            span = _free_interval(room.box[1 - axis], room.box[3 - axis], rng.uniform(0.9, 1.6),
                                  taken.get((k, axis, side), []), rng)
            if span is None:
                continue
            taken.setdefault((k, axis, side), []).append(span)
            openings.append(Opening("window", [k], axis, side,
                                    box(axis, wall, wall + side * (OUTER_WALL + 0.01), *span, sill, top)))
    return openings


def apartment_bounds(rooms: list[Room]) -> list[float]:
    """[x0, y0, 0, x1, y1, 0] of the rooms' free space (z left 0; the caller knows the height)."""
    boxes = np.array([r.box for r in rooms])
    return [float(boxes[:, 0].min()), float(boxes[:, 1].min()), 0.0,
            float(boxes[:, 2].max()), float(boxes[:, 3].max()), 0.0]
