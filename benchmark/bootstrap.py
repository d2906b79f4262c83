"""Bootstrap intervals for benchmark means and paired differences (SPEC §5.9).

The test frames of a dataset are not independent: the 10 frames of one scene share its room. So the
resampling is hierarchical: scenes are drawn with replacement, and within every drawn scene its
frames are drawn with replacement (as many as it has); for the ablation, training seeds are drawn
with replacement too (independently per experiment: the seeds of two experiments are separate
runs). One set of frame draws is shared by every method of a (dataset, protocol) block, so a
difference between two methods is *paired*: both are averaged over the same resampled frames.
A replicate mean is Σ w·x / Σ w over the values that are not NaN (a ``drop``-ped frame), with w the
number of times its frame (and seed) was drawn. Intervals are the 2.5 and 97.5 percentiles of
``n_boot`` replicates (percentile bootstrap); the stream is seeded (:data:`SEED` and the ids of the
frames drawn), so a report is reproducible byte for byte.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

SEED = 0
"""Seed of every bootstrap stream (fixed: the same per-frame table gives the same intervals)."""

LEVEL = 0.95


def frame_weights(scenes: Sequence, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, F) float64 draw counts of F frames whose scene ids are ``scenes`` (F,).

    Each replicate draws S scenes with replacement out of the S distinct ones, then for each drawn
    scene n_s of its n_s frames with replacement.
    """
    names, scene_of = np.unique(np.asarray(scenes, dtype=object).astype(str), return_inverse=True)
    scene_of = scene_of.ravel()
    n_frames, n_scenes = len(scene_of), len(names)
    weights = np.zeros((n_boot, n_frames))
    if n_frames == 0:
        return weights
    order = np.argsort(scene_of, kind="stable")  # frames grouped by scene
    sizes = np.bincount(scene_of, minlength=n_scenes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    drawn = rng.integers(0, n_scenes, size=(n_boot, n_scenes))  # scene draws per replicate
    longest = int(sizes.max())
    pick = rng.random((n_boot, n_scenes, longest))  # frame draws within each drawn scene
    size = sizes[drawn][..., None]
    position = starts[drawn][..., None] + np.minimum((pick * size).astype(np.int64), size - 1)
    valid = np.arange(longest)[None, None, :] < size
    replicate = np.broadcast_to(np.arange(n_boot)[:, None, None], position.shape)
    np.add.at(weights, (replicate[valid], order[position[valid]]), 1.0)
    return weights


def seed_weights(n_seeds: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_seeds) float64 draw counts of ``n_seeds`` training seeds drawn with replacement."""
    drawn = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    return np.stack([np.bincount(row, minlength=n_seeds) for row in drawn]).astype(np.float64)


def replicate_means(values: np.ndarray, frames: np.ndarray, seeds: np.ndarray | None = None) -> np.ndarray:
    """(n_boot, M) replicate means of ``values`` (S, F, M) (seeds × frames × metrics, NaN = no value)
    under frame weights (n_boot, F) and seed weights (n_boot, S) (None: S = 1, weight 1).
    A replicate whose draws hold no value of a metric is NaN there."""
    values = np.asarray(values, dtype=np.float64)
    if seeds is None:
        seeds = np.ones((frames.shape[0], values.shape[0]))
    have = np.isfinite(values)
    filled = np.where(have, values, 0.0)
    num = np.einsum("bs,bf,sfm->bm", seeds, frames, filled, optimize=True)
    den = np.einsum("bs,bf,sfm->bm", seeds, frames, have.astype(np.float64), optimize=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval (lo, hi), each (M,), of replicates (n_boot, M); NaN replicates are ignored
    (all NaN: NaN)."""
    tail = 100.0 * (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(replicates)
        lo = np.full(replicates.shape[1], np.nan)
        hi = np.full(replicates.shape[1], np.nan)
        for m in range(replicates.shape[1]):
            column = replicates[finite[:, m], m]
            if column.size:
                lo[m], hi[m] = np.percentile(column, [tail, 100.0 - tail])
    return lo, hi


def resolved(lo: float, hi: float) -> bool:
    """A difference is resolved when its interval excludes 0."""
    return bool(np.isfinite(lo) and np.isfinite(hi) and (lo > 0 or hi < 0))


def block_rng(key: tuple) -> np.random.Generator:
    """A bootstrap stream seeded by :data:`SEED` and ``key`` (e.g. the ids of the frames resampled),
    so a block's intervals do not depend on which other blocks a table holds."""
    text = "\x1f".join(str(k) for k in (SEED, *key))
    words = np.frombuffer(hashlib.sha256(text.encode()).digest(), dtype="<u4")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words.tolist())))
