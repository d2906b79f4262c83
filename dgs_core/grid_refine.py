"""Coarse-to-fine evaluation of an occupancy field on the R³ evaluation grid (SPEC §5.2).

A dense grid queries the network at every in-frustum cell centre (about a million points at 128³),
although marching cubes only reads values where the field crosses the iso-level. Here the field is
first evaluated on a coarse lattice (every ``stride``-th grid point per axis, plus the last one),
then level by level the stride halves and only the new lattice points inside *uncertain* coarse
cells are evaluated; the others are filled from their cell. The idea is the coarse-to-fine schedule
of DIST's sphere tracing and Occupancy Networks' multiresolution extraction.

A coarse cell (the box between neighbouring lattice points) is uncertain when its 8 corner values
straddle ``level`` (some below, some at or above), when one of them lies within ``band`` of it, or
when it touches such a cell (``margin`` cells of dilation). Every other point of the finer lattice
inside a certain cell takes the mean of that cell's corners, which lies on the same side of the
level as all of them. So wherever the coarse samples see the surface, the points around it are
evaluated exactly at full resolution, and the extracted mesh is the dense one there. A feature that
fits *between* coarse samples (thinner than the coarse spacing, no corner near the level) is
invisible to the coarse lattice; to catch it, ``verify`` filled points (a seeded random choice) are
evaluated too and compared: a sign that differs from the filled value is counted in
:attr:`RefineStats.mismatches`, the caller's signal that the field is under-resolved for the
chosen start (dgs_core.infer warns and records it).

Grid convention as ``dgs_core.infer``: values at points ``origin + (i, j, k) · cell``, axis 0 = x.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.ndimage import binary_dilation

Evaluate = Callable[[np.ndarray], np.ndarray]
"""Field at grid points: (N, 3) int64 indices (i, j, k) -> (N,) float32 values."""


@dataclass
class RefineStats:
    """What a coarse-to-fine evaluation cost and found.

    queries: grid points sent to the field (verification included); dense: in-frustum points a
    dense grid would query; verified: filled points re-evaluated as a check; mismatches: those
    whose sign differed from the filled value (0 when the start resolution sees every feature).
    """

    queries: int = 0
    dense: int = 0
    verified: int = 0
    mismatches: int = 0


COARSE_POINTS = 32
"""Points per axis of the first lattice (at least): a quarter of 128³, DIST's starting resolution."""


def start_stride(resolution: int, coarse_points: int = COARSE_POINTS) -> int:
    """The largest power-of-two stride whose lattice has at least ``coarse_points`` points per axis
    (1, i.e. dense, for grids smaller than that)."""
    stride = 1
    while resolution // (2 * stride) >= coarse_points:
        stride *= 2
    return stride


def lattice(resolution: int, stride: int) -> np.ndarray:
    """Indices of one axis's lattice at ``stride``: 0, stride, 2·stride, … and the last index."""
    return np.unique(np.append(np.arange(0, resolution, stride), resolution - 1))


def _cells(values: np.ndarray, level: float, band: float) -> np.ndarray:
    """(n−1, n−1, n−1) bool: the lattice cell's 8 corners straddle ``level`` or come within ``band``."""
    corners = [values[a:values.shape[0] - 1 + a, b:values.shape[1] - 1 + b, c:values.shape[2] - 1 + c]
               for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    lo = np.minimum.reduce(corners)
    hi = np.maximum.reduce(corners)
    return ((lo < level) & (hi >= level)) | ((hi > level - band) & (lo < level + band))


def _containing(coarse: np.ndarray, fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For fine lattice indices on one axis: the coarse cell at or left of each, and the one at or
    right of it (equal unless the point sits on a coarse lattice index, then the two neighbours)."""
    right = np.clip(np.searchsorted(coarse, fine, side="right") - 1, 0, len(coarse) - 2)
    on_node = coarse[np.clip(np.searchsorted(coarse, fine), 0, len(coarse) - 1)] == fine
    left = np.where(on_node, np.maximum(right - 1, 0), right)
    return left, right


def refine(evaluate: Evaluate, inside: np.ndarray, *, stride: int | None = None, level: float = 0.5,
           band: float = 0.25, margin: int = 1, verify: int = 2048, seed: int = 0, free: float = 0.0
           ) -> tuple[np.ndarray, RefineStats]:
    """The field on the full grid, evaluated coarse to fine.

    Args:
        evaluate: the field at grid indices (see :data:`Evaluate`); called only for ``inside`` points.
        inside: (R, R, R) bool, points that may be queried (the frustum); the rest are ``free``.
        stride: spacing of the first lattice in grid cells (a power of two; 1 = dense); by
            default :func:`start_stride` of the grid's resolution.
        level: the iso-level marching cubes extracts (0.5 for occupancy).
        band: a cell whose corner value is within this of ``level`` is refined even if its corners
            do not straddle it (0 = straddling only): a surface that passes between two lattice
            points still pulls the field toward the level there (a one-cell slab between two
            stride-2 samples shows up as 0.3 at the nearer one).
        margin: cells of dilation around every uncertain cell.
        verify: filled in-frustum points re-evaluated to count sign mismatches (0 = none).
        seed: seed of the verification choice.
        free: the value of points never queried (0 for occupancy; a positive distance for an SDF,
            whose level is 0 and whose band is a distance: the coarse cell's diagonal makes the
            test exact for a true distance field).
    Returns:
        values (R, R, R) float32 and the :class:`RefineStats`.
    """
    r = inside.shape[0]
    if inside.shape != (r, r, r):
        raise ValueError(f"dgs_core.grid_refine.refine: inside must be a cube (R, R, R), got {inside.shape}")
    stride = start_stride(r) if stride is None else stride
    if stride < 1 or stride & (stride - 1):
        raise ValueError(f"dgs_core.grid_refine.refine: stride must be a power of two, got {stride}")
    values = np.full(inside.shape, free, dtype=np.float32)
    known = ~inside  # outside the frustum the field is free by definition (never queried)
    filled = np.zeros(inside.shape, dtype=bool)
    stats = RefineStats(dense=int(inside.sum()))

    def query(ijk: np.ndarray) -> None:
        known[tuple(ijk.T)] = True
        ijk = ijk[inside[tuple(ijk.T)]]
        if len(ijk):
            values[tuple(ijk.T)] = evaluate(ijk)
            stats.queries += len(ijk)

    axis = lattice(r, stride)
    query(np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3))
    while stride > 1:
        stride //= 2
        finer = lattice(r, stride)
        uncertain = _cells(values[np.ix_(axis, axis, axis)], level, band)
        if margin:
            uncertain = binary_dilation(uncertain, iterations=margin)
        lo, hi = _containing(axis, finer)
        ii, jj, kk = np.meshgrid(np.arange(len(finer)), np.arange(len(finer)), np.arange(len(finer)),
                                 indexing="ij")
        need = np.zeros(ii.shape, dtype=bool)
        for cx in (lo, hi):
            for cy in (lo, hi):
                for cz in (lo, hi):
                    need |= uncertain[cx[ii], cy[jj], cz[kk]]
        points = np.stack([finer[ii], finer[jj], finer[kk]], -1)
        fresh = ~known[np.ix_(finer, finer, finer)]
        query(points[need & fresh])
        fill = ~need & fresh  # inside a certain cell: the mean of its corners, same side as all
        cell_lo = [lo[ii[fill]], lo[jj[fill]], lo[kk[fill]]]
        corners = [values[axis[cell_lo[0] + a], axis[cell_lo[1] + b], axis[cell_lo[2] + c]]
                   for a in (0, 1) for b in (0, 1) for c in (0, 1)]
        target = tuple(points[fill].T)
        values[target] = np.mean(corners, axis=0)
        known[target] = True
        filled[target] = inside[target]
        axis = finer
    if verify:
        _verify(evaluate, values, filled, stats, level, verify, seed)
    return values, stats


def _verify(evaluate: Evaluate, values: np.ndarray, filled: np.ndarray, stats: RefineStats,
            level: float, n: int, seed: int) -> None:
    """Evaluate ``n`` random filled points exactly and count sign disagreements with ``values``."""
    candidates = np.flatnonzero(filled.ravel())
    if not len(candidates):
        return
    rng = np.random.default_rng(seed)
    pick = rng.choice(candidates, size=min(n, len(candidates)), replace=False)
    ijk = np.stack(np.unravel_index(pick, values.shape), axis=1)
    exact = evaluate(ijk)
    stats.queries += len(ijk)
    stats.verified += len(ijk)
    stats.mismatches += int(np.sum((exact >= level) != (values.ravel()[pick] >= level)))
