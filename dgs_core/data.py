"""Training data: prepared HDF5 shards, read through their manifest, as batches for the loss.

A :class:`ShardDataset` lists the usable frames of one manifest (``status == "ok"``) and reads a
frame's row on demand: only that row's chunks are decompressed, and shard files are opened lazily in
the process that reads them, so DataLoader workers never share an HDF5 handle. Per item it draws the
configured numbers of near-surface and non-surface points from the frame's valid points with a
random stream derived from ``(seed, epoch, index)``: an item is the same whichever worker reads it
and whenever, which is what makes resumed training reproduce the uninterrupted run. Runs that need
the on-surface samples (the SDF loss, a colour head) also get ``surface_points`` of them and the
near-surface offsets; these come from shards of schema version ``pipeline.shards.SURFACE_SAMPLES``
on, drawn after every other random number of the item, so an occupancy run's items are unchanged.

Conventions (SPEC §1): points are camera frame (OpenCV), metres; labels 1 = inward/occupied;
intrinsics are handed to the model normalised (``dgs_core.camera``); images stay uint8 until
:func:`to_device` turns them into the model's input convention (``model.input_norm``,
:mod:`dgs_core.model.inputs`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dgs_core.camera import normalised_intrinsics
from dgs_core.model.inputs import normalise_images
from pipeline.manifest import read_manifest
from pipeline.shards import ShardLayout, ShardReader

_FIELDS = ("image", "depth", "intrinsics", "near_surface_points", "near_surface_labels", "non_surface_points")
_MASKS = ("near_surface_valid", "non_surface_valid")
SURFACE_FIELDS = ("near_surface_offsets", "surface_points", "surface_normals", "surface_colors", "surface_colored")
"""The shard fields a run with on-surface samples reads (schema version ``SURFACE_SAMPLES`` on)."""



@dataclass
class DataConfig:
    """What one training item holds. ``augment`` is off by default: the release used none."""

    near_points: int = 2048   # near-surface points per frame, drawn from its valid ones
    non_points: int = 512     # non-surface points per frame
    surface_points: int = 512  # on-surface samples per frame (SDF and colour losses only)
    augment: bool = False     # True: mirror image, depth and points left↔right with probability 1/2
    workers: int = 2          # DataLoader worker processes

    def __post_init__(self) -> None:
        if self.near_points < 1 or self.non_points < 1 or self.surface_points < 1 or self.workers < 0:
            raise ValueError(f"DataConfig: near_points, non_points and surface_points must be ≥ 1 and workers ≥ 0, "
                             f"found {self.near_points}, {self.non_points}, {self.surface_points}, {self.workers}")


@dataclass
class Batch:
    """One training batch (camera frame, metres).

    images (B, 3, H, W); intrinsics (B, 4) normalised; near_points (B, N, 3) with near_labels (B, N)
    in {0, 1} (1 = inward/occupied); far_points (B, M, 3) non-surface points; depth (B, H, W) metric
    depth target with NaN holes or None. With on-surface samples (SDF loss, colour head):
    near_offsets (B, N) the signed offset d of each near-surface point along its camera-facing normal
    (≥ 0 free); surface_points (B, S, 3); surface_normals (B, S, 3) unit, toward the camera (= toward
    free space, the SDF's gradient direction); surface_colors (B, S, 3) RGB in [0, 1], NaN for frames
    whose mesh has no colours.
    """

    images: torch.Tensor
    intrinsics: torch.Tensor
    near_points: torch.Tensor
    near_labels: torch.Tensor
    far_points: torch.Tensor
    depth: torch.Tensor | None = None
    surface_points: torch.Tensor | None = None
    surface_normals: torch.Tensor | None = None
    near_offsets: torch.Tensor | None = None
    surface_colors: torch.Tensor | None = None


def _draw(rng: np.random.Generator, valid: np.ndarray, n: int) -> np.ndarray:
    """``n`` indices of the True entries of ``valid``: without replacement when there are enough."""
    idx = np.flatnonzero(valid)
    return idx[rng.choice(len(idx), n, replace=len(idx) < n)]


class ShardDataset(Dataset):
    """The usable frames of one manifest as training items (see the module docstring).

    Args:
        manifest: a merged (or per-scene) manifest; its ``shard`` column is relative to its folder.
        config: point counts and augmentation.
        seed: base of every item's random stream.
        expect: layout the caller relies on, e.g. ``{"width": 256, "height": 192}``; a shard with
            another layout raises a ValueError naming it.
        surface: why on-surface samples are needed (e.g. ``"loss.kind=sdf"``), or None (not read). A
            shard without them raises a ``pipeline.shards.SchemaError`` naming it and the fix.
    Raises:
        FileNotFoundError naming the manifest and the first missing shard; ValueError when the
        manifest has no usable frame.
    """

    def __init__(self, manifest: str | os.PathLike, config: DataConfig | None = None, *, seed: int = 0,
                 expect: dict[str, int] | None = None, surface: str | None = None) -> None:
        self.manifest = Path(manifest)
        self.config = config or DataConfig()
        self.seed, self.epoch = int(seed), 0
        df = read_manifest(self.manifest)
        self.frames = df[df.status == "ok"].reset_index(drop=True)
        if self.frames.empty:
            raise ValueError(f"{self.manifest}: no usable frame ({len(df)} rows, all skipped); "
                             f"check the prepare logs for the skip reasons")
        names = sorted(set(self.frames.shard))
        self._paths = [self.manifest.parent / name for name in names]
        missing = [p for p in self._paths if not p.exists()]
        if missing:
            raise FileNotFoundError(f"{self.manifest} lists {len(missing)} shard(s) that do not exist, first "
                                    f"{missing[0]}; rerun the prepare job of that scene")
        index = {name: i for i, name in enumerate(names)}
        self._shard = self.frames.shard.map(index).to_numpy(np.int64)
        self._row = self.frames.row.to_numpy(np.int64)
        self._valid_counts = self.frames[["n_valid_near", "n_valid_non"]].to_numpy(np.int64)
        self._expect = dict(expect or {})
        self.surface = surface
        self._readers: dict[int, ShardReader] = {}
        self._layouts: dict[int, ShardLayout] = {}
        layout = self._reader(0).layout
        self.width, self.height = layout.width, layout.height
        self._close()  # workers start without inherited HDF5 handles

    def _close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_readers"] = {}
        return state

    def _reader(self, shard: int) -> ShardReader:
        reader = self._readers.get(shard)
        if reader is None:
            reader = ShardReader(self._paths[shard])
            layout = reader.layout  # opens the file and checks the schema version
            for key, want in self._expect.items():
                if getattr(layout, key) != want:
                    raise ValueError(f"shard {reader.path}: {key} is {getattr(layout, key)}, expected {want} "
                                     f"(all shards of a run must share one virtual camera); re-prepare it")
            if self.surface:
                reader.require(SURFACE_FIELDS, self.surface)
                if layout.n_surface == 0:
                    raise ValueError(f"shard {reader.path}: {self.surface} needs on-surface samples, it was "
                                     f"prepared with prepare.surface_points: 0; re-prepare it with a positive count")
            self._readers[shard], self._layouts[shard] = reader, layout
        return reader

    def __len__(self) -> int:
        return len(self.frames)

    def _padded_masks(self, i: int, layout: ShardLayout) -> tuple[str, ...]:
        """The validity masks worth reading for item ``i``: only those of a padded point set (the
        manifest counts the valid points; a full set needs no mask, saving two reads per item)."""
        full = (layout.n_near, layout.n_non)
        return tuple(m for m, n, k in zip(_MASKS, self._valid_counts[i], full) if n < k)

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of ``epoch`` (call before iterating a DataLoader for it)."""
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Item ``i``: image (3, H, W) uint8 (made the model's input by :func:`to_device`, after the
        transfer from a worker, which moves a quarter of the bytes that way); intrinsics (4,) normalised; near_points (N, 3) and
        near_labels (N,) float {0, 1}; far_points (M, 3); depth (H, W) sensor metres, NaN holes;
        index () int64; with ``surface``: near_offsets (N,), surface_points and surface_normals
        (S, 3), surface_colors (S, 3) in [0, 1] or NaN (see :class:`Batch`)."""
        reader, row = self._reader(int(self._shard[i])), int(self._row[i])
        extra = SURFACE_FIELDS if self.surface else ()
        f = reader.read(row, _FIELDS + extra + self._padded_masks(i, self._layouts[int(self._shard[i])]))
        for mask, points in zip(_MASKS, ("near_surface_points", "non_surface_points")):
            f.setdefault(mask, np.ones(len(f[points]), dtype=bool))
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        cfg = self.config
        if not f["near_surface_valid"].any() or not f["non_surface_valid"].any():
            raise ValueError(f"shard {reader.path} row {row}: no valid near- or non-surface point, yet the "
                             f"manifest {self.manifest} marks it ok; re-prepare that scene")
        near = _draw(rng, f["near_surface_valid"], cfg.near_points)
        far = _draw(rng, f["non_surface_valid"], cfg.non_points)
        image, depth = f["image"], f["depth"]
        points, labels = f["near_surface_points"][near], f["near_surface_labels"][near]
        far_points = f["non_surface_points"][far]
        fx, fy, cx, cy = (float(v) for v in f["intrinsics"])
        mirror = cfg.augment and rng.random() < 0.5
        if mirror:  # mirror: x → −x, cx → W − cx (pixel-edge convention)
            image, depth = image[:, :, ::-1], depth[:, ::-1]
            points, far_points = points * [-1, 1, 1], far_points * [-1, 1, 1]
            cx = self.width - cx
        k = normalised_intrinsics(fx, fy, cx, cy, self.width, self.height)
        extra = self._surface_item(f, rng, near, mirror) if self.surface else {}
        return {**extra,
            "image": torch.from_numpy(np.ascontiguousarray(image)),
            "intrinsics": torch.tensor(k, dtype=torch.float32),
            "near_points": torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)),
            "near_labels": torch.from_numpy(labels.astype(np.float32)),
            "far_points": torch.from_numpy(np.ascontiguousarray(far_points, dtype=np.float32)),
            "depth": torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32)),
            "index": torch.tensor(int(i), dtype=torch.int64),
        }


    def _surface_item(self, f: dict, rng: np.random.Generator, near: np.ndarray, mirror: bool
                      ) -> dict[str, torch.Tensor]:
        """The on-surface part of an item: ``surface_points`` samples drawn from the frame's S (after
        every other draw of the item) and the drawn near-surface points' offsets."""
        n = len(f["surface_points"])
        pick = rng.choice(n, self.config.surface_points, replace=n < self.config.surface_points)
        flip = np.array([-1.0, 1.0, 1.0]) if mirror else np.ones(3)
        colors = f["surface_colors"][pick].astype(np.float32) / 255.0
        if not f["surface_colored"]:
            colors[:] = np.nan
        as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
        return {"near_offsets": as_tensor(f["near_surface_offsets"][near]),
                "surface_points": as_tensor(f["surface_points"][pick] * flip),
                "surface_normals": as_tensor(f["surface_normals"][pick] * flip), "surface_colors": as_tensor(colors)}


def collate(items: list[dict[str, torch.Tensor]]) -> Batch:
    """Stack items into a :class:`Batch` with **uint8** images (the ``index`` entries
    are dropped); :func:`to_device` turns it into the loss's input."""
    stack = {key: torch.stack([item[key] for item in items]) for key in items[0] if key != "index"}
    return Batch(images=stack["image"], intrinsics=stack["intrinsics"], near_points=stack["near_points"],
                 near_labels=stack["near_labels"], far_points=stack["far_points"], depth=stack["depth"],
                 **{k: stack.get(k) for k in ("near_offsets", "surface_points", "surface_normals", "surface_colors")})


def to_device(batch: Batch, device: torch.device | str, input_norm: str) -> Batch:
    """Every tensor of a collated ``batch`` on ``device``, uint8 images turned there into the model's
    input under ``input_norm`` (``ModelConfig.input_norm``)."""
    moved = {k: (v.to(device, non_blocking=True) if v is not None else None) for k, v in vars(batch).items()}
    if moved["images"].dtype == torch.uint8:
        moved["images"] = normalise_images(moved["images"], input_norm)
    return Batch(**moved)


class ResumableSampler(Sampler[int]):
    """This rank's share of an epoch's permutation, from an offset, for exact resume under DDP.

    The permutation of epoch e is ``default_rng([seed, e]).permutation(n)`` (identity without
    shuffling); rank r of W takes every W-th entry starting at r, truncated so all ranks get
    ``n // W`` items; ``set_epoch(e, start)`` skips the first ``start`` of them (already consumed).
    """

    def __init__(self, n: int, *, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"ResumableSampler: rank must lie in [0, {world_size}), found {rank}")
        if n < world_size:
            raise ValueError(f"ResumableSampler: {n} frames cannot be split across {world_size} ranks")
        self.n, self.seed, self.shuffle = int(n), int(seed), bool(shuffle)
        self.rank, self.world_size = int(rank), int(world_size)
        self.per_rank = self.n // self.world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` from this rank's ``start``-th index on."""
        if not 0 <= start <= self.per_rank:
            raise ValueError(f"ResumableSampler: start must lie in [0, {self.per_rank}], found {start}")
        self.epoch, self.start = int(epoch), int(start)

    def __iter__(self) -> Iterator[int]:
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle
                 else np.arange(self.n))
        mine = order[self.rank:self.per_rank * self.world_size:self.world_size]
        return iter(mine[self.start:].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.start


def make_loader(dataset: ShardDataset, batch_size: int, *, sampler: ResumableSampler, workers: int) -> DataLoader:
    """Batches of ``batch_size`` (per rank) items in ``sampler``'s order; incomplete last batch dropped."""
    if batch_size > sampler.per_rank:
        raise ValueError(f"{dataset.manifest}: batch size {batch_size} per rank exceeds the {sampler.per_rank} "
                         f"frames each of {sampler.world_size} rank(s) gets; lower the batch size")
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      collate_fn=collate, drop_last=True)
