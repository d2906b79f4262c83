"""Procedural albedo of the synthetic surfaces, evaluated at mesh vertices.

Each surface or object gets a base colour drawn around its category's palette entry, modulated by
a pattern: wooden planks or tiles on the floor, vertical grain on doors and wooden furniture, soft
value noise elsewhere. Colours are sRGB uint8 albedo; the renderer adds the lighting.
"""
from __future__ import annotations

import numpy as np

# Base sRGB colours per category (0..1) and the pattern each uses.
PALETTE = {
    "wall": ((0.86, 0.84, 0.78), "noise"),
    "floor": ((0.62, 0.45, 0.30), "floor"),
    "ceiling": ((0.93, 0.93, 0.91), "noise"),
    "door": ((0.55, 0.38, 0.24), "grain"),
    "window": ((0.70, 0.82, 0.92), "noise"),
    "cabinet": ((0.58, 0.42, 0.28), "grain"),
    "bed": ((0.80, 0.78, 0.85), "noise"),
    "chair": ((0.35, 0.30, 0.28), "noise"),
    "sofa": ((0.30, 0.40, 0.55), "noise"),
    "table": ((0.50, 0.35, 0.22), "grain"),
    "bookshelf": ((0.45, 0.32, 0.22), "grain"),
    "desk": ((0.65, 0.55, 0.42), "grain"),
    "lamp": ((0.90, 0.85, 0.60), "noise"),
    "ottoman": ((0.60, 0.25, 0.22), "noise"),
}
_TABLE_SIZE = 4096


def _value_noise(points: np.ndarray, scale: float, table: np.ndarray) -> np.ndarray:
    """Smooth lattice noise in [0, 1] at `points` (N, 3) metres with lattice spacing `scale` metres."""
    p = points / scale
    base = np.floor(p).astype(np.int64)
    frac = p - base
    w = frac * frac * (3.0 - 2.0 * frac)  # smoothstep: continuous derivative across cells
    out = np.zeros(len(points))
    for corner in range(8):
        offset = np.array([(corner >> k) & 1 for k in range(3)])
        lattice = base + offset
        key = (lattice[:, 0] * 73856093) ^ (lattice[:, 1] * 19349663) ^ (lattice[:, 2] * 83492791)
        weight = np.prod(np.where(offset == 1, w, 1.0 - w), axis=1)
        out += weight * table[key % _TABLE_SIZE]
    return out


def surface_colors(category: str, vertices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Albedo of one surface/object at its vertices.

    Args:
        category: key of `PALETTE` (the generator's category name). vertices: (V, 3) world metres.
        rng: consumed in a fixed order, so colours are deterministic from the scene seed.
    Returns: (V, 3) uint8 sRGB.
    """
    base, pattern = PALETTE[category]
    table = rng.random(_TABLE_SIZE)
    tint = np.clip(np.asarray(base) * rng.uniform(0.85, 1.15) + rng.normal(0, 0.03, 3), 0.05, 0.98)
    v = np.asarray(vertices, dtype=np.float64)
    shade = 0.93 + 0.14 * _value_noise(v, 0.35, table)  # soft large-scale variation
    if pattern == "floor":
        if rng.random() < 0.5:  # planks along x with per-plank tone
            width = rng.uniform(0.12, 0.2)
            plank = np.floor(v[:, 1] / width).astype(np.int64)
            shade *= 0.8 + 0.4 * table[(plank * 2654435761) % _TABLE_SIZE]
            shade *= 0.93 + 0.07 * np.sin(v[:, 0] * 40.0 + plank)
        else:  # tiles: a checker of two tones
            tile = rng.uniform(0.4, 0.6)
            checker = (np.floor(v[:, 0] / tile) + np.floor(v[:, 1] / tile)) % 2
            shade *= np.where(checker == 0, 1.0, 0.75)
    elif pattern == "grain":
        shade *= 0.9 + 0.1 * np.sin(v[:, 2] * rng.uniform(25, 45) + 6.0 * _value_noise(v, 0.1, table))
    rgb = np.clip(tint[None, :] * shade[:, None], 0.0, 1.0)
    return np.round(rgb * 255.0).astype(np.uint8)
