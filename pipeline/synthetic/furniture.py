"""Composite analytic furniture: each piece is a union of boxes (or coaxial cylinders).

Object frame: origin at floor level under the piece, x across its width, y from its front (−y) to
its back (+y), z up; metres. Pieces with a back (sofa, bed, shelves, cabinet, desk, chair) are
placed with +y toward a wall. Thin parts (legs 3.5–6 cm, boards 2–4 cm, backs) and cavities
(open-front shelves and cabinets, the space under tables and chairs) are what make the occupancy
labels and the gradient term matter.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .solids import Solid

Builder = Callable[[np.random.Generator], list[Solid]]


def _box(cx: float, cy: float, z0: float, sx: float, sy: float, sz: float) -> Solid:
    """A box standing on height z0 (its bottom), centred at (cx, cy)."""
    return Solid("box", [float(cx), float(cy), float(z0 + sz / 2)], [float(sx), float(sy), float(sz)])


def _legs(width: float, depth: float, height: float, leg: float, inset: float) -> list[Solid]:
    ox, oy = width / 2 - inset - leg / 2, depth / 2 - inset - leg / 2
    return [_box(sx * ox, sy * oy, 0.0, leg, leg, height) for sx in (-1, 1) for sy in (-1, 1)]


def table(rng: np.random.Generator) -> list[Solid]:
    """A top on four square legs."""
    w, d, h, t = rng.uniform(0.8, 1.4), rng.uniform(0.6, 0.9), rng.uniform(0.72, 0.76), rng.uniform(0.03, 0.045)
    return [_box(0, 0, h - t, w, d, t)] + _legs(w, d, h - t, rng.uniform(0.04, 0.06), rng.uniform(0.03, 0.08))


def desk(rng: np.random.Generator) -> list[Solid]:
    """A top on two side panels with a modesty panel at the back."""
    w, d, h, t, p = rng.uniform(1.0, 1.5), rng.uniform(0.6, 0.75), rng.uniform(0.72, 0.76), 0.03, 0.025
    return [_box(0, 0, h - t, w, d, t), _box(-(w - p) / 2, 0, 0, p, d, h - t), _box((w - p) / 2, 0, 0, p, d, h - t),
            _box(0, d / 2 - 0.06, h - t - 0.4, w - 2 * p, 0.02, 0.4)]


def chair(rng: np.random.Generator) -> list[Solid]:
    """A seat on four legs with a backrest standing on the seat's back edge."""
    w, d, seat, t = rng.uniform(0.42, 0.5), rng.uniform(0.42, 0.5), rng.uniform(0.43, 0.47), 0.04
    back_t, back_h = rng.uniform(0.025, 0.04), rng.uniform(0.38, 0.5)
    return ([_box(0, 0, seat - t, w, d, t), _box(0, (d - back_t) / 2, seat, w, back_t, back_h)]
            + _legs(w, d, seat - t, rng.uniform(0.03, 0.04), 0.01))


def _sofa_body(rng: np.random.Generator) -> tuple[list[Solid], float, float, float]:
    w, d, total = rng.uniform(1.5, 2.1), rng.uniform(0.8, 0.95), rng.uniform(0.75, 0.9)
    seat, back, arm, arm_h = rng.uniform(0.4, 0.45), rng.uniform(0.15, 0.22), rng.uniform(0.12, 0.18), rng.uniform(0.55, 0.65)
    parts = [_box(0, 0, 0, w, d, seat), _box(0, (d - back) / 2, 0, w, back, total),
             _box(-(w - arm) / 2, 0, 0, arm, d, arm_h), _box((w - arm) / 2, 0, 0, arm, d, arm_h)]
    return parts, w, d, seat


def sofa(rng: np.random.Generator) -> list[Solid]:
    """Seat block, back and two arms."""
    return _sofa_body(rng)[0]


def l_sofa(rng: np.random.Generator) -> list[Solid]:
    """A sofa with a chaise reaching forward from one end (an L seen from above)."""
    parts, w, d, seat = _sofa_body(rng)
    side, width, reach = rng.choice([-1.0, 1.0]), rng.uniform(0.75, 0.95), rng.uniform(0.7, 1.1)
    cx = side * (w - width) / 2
    parts.append(_box(cx, -(d + reach) / 2, 0, width, reach, seat))
    arm = parts[3 if side > 0 else 2]
    parts.append(_box(arm.center[0], -(d + reach) / 2, 0, arm.size[0], reach, arm.size[2]))
    return parts


def bed(rng: np.random.Generator) -> list[Solid]:
    """A mattress block on the floor and a headboard at the back."""
    w, length, h = rng.uniform(1.4, 1.8), rng.uniform(1.9, 2.1), rng.uniform(0.45, 0.6)
    head_t, head_h = rng.uniform(0.05, 0.08), rng.uniform(0.9, 1.1)
    return [_box(0, -head_t / 2, 0, w, length - head_t, h), _box(0, (length - head_t) / 2, 0, w, head_t, head_h)]


def _carcass(w: float, d: float, h: float, t: float, bottom: float, shelves: int) -> list[Solid]:
    """Open-front case: two sides, top, bottom board at `bottom`, back, `shelves` inner boards."""
    inner = w - 2 * t
    parts = [_box(-(w - t) / 2, 0, 0, t, d, h), _box((w - t) / 2, 0, 0, t, d, h), _box(0, 0, h - t, inner, d, t),
             _box(0, 0, bottom, inner, d, t), _box(0, (d - t) / 2, bottom + t, inner, t, h - bottom - 2 * t)]
    gap = (h - t - bottom - t) / (shelves + 1)
    parts += [_box(0, -t / 2, bottom + t + k * gap, inner, d - t, t) for k in range(1, shelves + 1)]
    return parts


def bookshelf(rng: np.random.Generator) -> list[Solid]:
    """Tall open shelves: 3–5 cavities between boards."""
    w, d, h = rng.uniform(0.6, 1.1), rng.uniform(0.3, 0.4), rng.uniform(1.6, 2.0)
    return _carcass(w, d, h, rng.uniform(0.02, 0.03), 0.0, int(rng.integers(2, 5)))


def cabinet(rng: np.random.Generator) -> list[Solid]:
    """An open-front cabinet on a recessed plinth, with one or two shelves."""
    w, d, h, t = rng.uniform(0.5, 1.0), rng.uniform(0.4, 0.6), rng.uniform(0.8, 1.4), rng.uniform(0.02, 0.03)
    plinth = rng.uniform(0.06, 0.1)
    return _carcass(w, d, h, t, plinth, int(rng.integers(1, 3))) + [_box(0, 0.03, 0, w - 2 * t, d - 0.06, plinth)]


def lamp(rng: np.random.Generator) -> list[Solid]:
    """A floor lamp: base disc, thin pole, shade (coaxial cylinders)."""
    base_r, pole_r, shade_r = rng.uniform(0.12, 0.16), rng.uniform(0.012, 0.02), rng.uniform(0.15, 0.22)
    height, shade_h, base_h = rng.uniform(1.3, 1.7), rng.uniform(0.22, 0.3), 0.03

    def cyl(radius: float, z0: float, z1: float) -> Solid:
        return Solid("cylinder", [0.0, 0.0, (z0 + z1) / 2], [2 * radius, 2 * radius, z1 - z0])

    return [cyl(base_r, 0.0, base_h), cyl(pole_r, base_h, height - shade_h), cyl(shade_r, height - shade_h, height)]


def ottoman(rng: np.random.Generator) -> list[Solid]:
    """A round or square footstool."""
    h = rng.uniform(0.4, 0.5)
    if rng.random() < 0.5:
        r = rng.uniform(0.2, 0.35)
        return [Solid("cylinder", [0.0, 0.0, h / 2], [2 * r, 2 * r, h])]
    s = rng.uniform(0.4, 0.6)
    return [_box(0, 0, 0, s, s, h)]


# name -> (category, builder, most per room, stands against a wall)
CATALOGUE: dict[str, tuple[str, Builder, int, bool]] = {
    "bed": ("bed", bed, 1, True),
    "sofa": ("sofa", sofa, 1, True),
    "l_sofa": ("sofa", l_sofa, 1, True),
    "chair": ("chair", chair, 3, False),
    "table": ("table", table, 1, False),
    "desk": ("desk", desk, 1, True),
    "cabinet": ("cabinet", cabinet, 2, True),
    "bookshelf": ("bookshelf", bookshelf, 2, True),
    "lamp": ("lamp", lamp, 2, False),
    "ottoman": ("ottoman", ottoman, 2, False),
}


def local_footprint(parts: list[Solid]) -> np.ndarray:
    """[xmin, ymin, xmax, ymax] of the parts in the object frame (metres)."""
    lo = np.min([np.asarray(p.center[:2]) - np.asarray(p.size[:2]) / 2 for p in parts], axis=0)
    hi = np.max([np.asarray(p.center[:2]) + np.asarray(p.size[:2]) / 2 for p in parts], axis=0)
    return np.concatenate([lo, hi])
