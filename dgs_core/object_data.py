"""Training data from prepared *object* shards (:mod:`pipeline.object_shards`), and the dataset chooser.

An :class:`ObjectShardDataset` item is one model seen from one of its views, in the same form as a
scene frame (:class:`dgs_core.data.ShardDataset`), so the loss, the loop and the gradient modes are
shared: the view is drawn per item, the occupancy points are moved from the normalised cube into that
view's camera frame (OpenCV axes, cube units: the cube has side 1), and

- ``near_points``/``near_labels`` (the BCE points, ``data.near_points`` of them): half drawn from the
  near-surface samples, half from the uniform samples of the cube, with their inside (1) / outside
  (0) labels;
- ``far_points`` (the gradient term's points, ``data.non_points``): uniform samples flagged ``far``
  (at least the prepare stage's exclusion distance from the surface);
- ``depth``: the view's rendered z-depth, NaN on the background (the depth term skips it).

Draws come from ``(seed, epoch, index)`` like the scene items. :func:`open_dataset` returns the right
dataset class for a manifest (object manifests have a ``model_id`` column).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dgs_core.camera import normalised_intrinsics
from dgs_core.data import DataConfig, ShardDataset, _draw
from pipeline.object_shards import ObjectShardReader, is_object_manifest, read_object_manifest

_FIELDS = ("image", "depth", "intrinsics", "world_to_camera", "uniform_points", "uniform_labels", "uniform_far",
           "near_points", "near_labels")


class ObjectShardDataset(Dataset):
    """The ``ok`` models of an object manifest as training items (module docstring).

    Args and errors as :class:`dgs_core.data.ShardDataset` (``expect`` checks the view size).
    """

    def __init__(self, manifest: str | os.PathLike, config: DataConfig | None = None, *, seed: int = 0,
                 expect: dict[str, int] | None = None) -> None:
        self.manifest = Path(manifest)
        self.config = config or DataConfig()
        self.seed, self.epoch = int(seed), 0
        df = read_object_manifest(self.manifest)
        self.frames = df[df.status == "ok"].reset_index(drop=True)
        if self.frames.empty:
            raise ValueError(f"{self.manifest}: no usable model ({len(df)} rows, all skipped); see the "
                             f"prepare_objects log for the reasons")
        self._paths = [self.manifest.parent / s for s in self.frames.shard]
        missing = [p for p in self._paths if not p.exists()]
        if missing:
            raise FileNotFoundError(f"{self.manifest} lists {len(missing)} shard(s) that do not exist, first "
                                    f"{missing[0]}; rerun prepare_objects for that split")
        self._readers: dict[Path, ObjectShardReader] = {}
        layout = self._reader(self._paths[0]).layout
        self.width, self.height = layout.width, layout.height
        for key, value in (expect or {}).items():
            if getattr(layout, key) != value:
                raise ValueError(f"{self._paths[0]}: views are {layout.width}×{layout.height}, the run expects "
                                 f"{key}={value}; all splits of a run need one view size")
        self._close()

    def _reader(self, path: Path) -> ObjectShardReader:
        if path not in self._readers:
            self._readers[path] = ObjectShardReader(path)
        return self._readers[path]

    def _close(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers = {}

    def __len__(self) -> int:
        return len(self.frames)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        """Item ``i`` (module docstring); keys and shapes as :meth:`dgs_core.data.ShardDataset.__getitem__`."""
        f = self._reader(self._paths[i]).read(int(self.frames.row[i]), _FIELDS)
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        cfg = self.config
        view = int(rng.integers(len(f["image"])))
        half = cfg.near_points // 2
        near = _draw(rng, np.ones(len(f["near_points"]), bool), half)
        uni = _draw(rng, np.ones(len(f["uniform_points"]), bool), cfg.near_points - half)
        if not f["uniform_far"].any():
            raise ValueError(f"{self._paths[i]} row {self.frames.row[i]}: no uniform point is far from the surface; "
                             f"lower objects.prepare.exclusion and re-prepare")
        far = _draw(rng, f["uniform_far"], cfg.non_points)
        t = f["world_to_camera"][view].astype(np.float64)

        def camera(points: np.ndarray) -> torch.Tensor:
            return torch.from_numpy((points.astype(np.float64) @ t[:3, :3].T + t[:3, 3]).astype(np.float32))

        points = np.concatenate([f["near_points"][near], f["uniform_points"][uni]])
        labels = np.concatenate([f["near_labels"][near], f["uniform_labels"][uni]])
        fx, fy, cx, cy = (float(v) for v in f["intrinsics"][view])
        return {
            "image": torch.from_numpy(np.ascontiguousarray(f["image"][view])),
            "intrinsics": torch.tensor(normalised_intrinsics(fx, fy, cx, cy, self.width, self.height),
                                       dtype=torch.float32),
            "near_points": camera(points),
            "near_labels": torch.from_numpy(labels.astype(np.float32)),
            "far_points": camera(f["uniform_points"][far]),
            "depth": torch.from_numpy(np.ascontiguousarray(f["depth"][view], dtype=np.float32)),
            "index": torch.tensor(int(i), dtype=torch.int64),
        }


def open_dataset(manifest: str | os.PathLike, config: DataConfig | None = None, *, seed: int = 0,
                 expect: dict[str, int] | None = None, surface: str | None = None) -> ShardDataset | ObjectShardDataset:
    """The training dataset of a manifest: objects for an object manifest, scene frames otherwise.

    ``surface``: why on-surface samples are needed (:class:`~dgs_core.data.ShardDataset`), or None;
    object shards hold none, so an object manifest with a ``surface`` purpose is a ValueError."""
    path = Path(manifest)
    if path.exists() and is_object_manifest(path):
        if surface:
            raise ValueError(f"{path}: {surface} needs on-surface samples, which object shards do not hold; "
                             "train objects with loss.kind: occupancy and model.color: false")
        return ObjectShardDataset(path, config, seed=seed, expect=expect)
    return ShardDataset(path, config, seed=seed, expect=expect, surface=surface)
