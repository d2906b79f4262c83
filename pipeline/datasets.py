"""The dataset registry: which datasets exist, their splits, id patterns, readers and frame selection.

Everything that depends on *which* dataset a scene belongs to goes through :data:`DATASETS`: the
prepare job (scene sources), the ground truth (scene meshes), the workflow rules (scene lists,
wildcard constraints) and the config schema (its dataset enums are tested against this registry).
Adding a dataset means one :class:`DatasetSpec` here plus its reader in ``pipeline/formats/``.

Ids read from a dataset's files (split lists, folder names) become file names and command-line
arguments, so :meth:`DatasetSpec.check_id` accepts only ids of the dataset's own pattern.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipeline.errors import InputError, check_name
from pipeline.formats import matterport as mp
from pipeline.formats import scannet as sn
from pipeline.prepare_config import JobOptions, PrepareConfig
from pipeline.sources import SceneSource, matterport_scene, scannet_scene


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset the toolkit reads.

    name: its key in configs, folders and manifests. title: its name in reports.
    splits: the splits the toolkit prepares for it (Matterport3D is a test set only, SPEC §5).
    id_pattern: regular expression every scene (or house) id matches in full.
    scenes(root, split): the scene ids of a split, in the dataset's order.
    source(root, scene_id, split, cfg, opts): the scene's mesh and frames for the prepare job.
    mesh_path(root, scene_id): the scene mesh whose face order visible-face ids refer to.
    check_layout(root): human-readable problems with a root ([] when it is complete), each naming
    the missing file and how to get it.
    """

    name: str
    title: str
    splits: tuple[str, ...]
    id_pattern: str
    scenes: Callable[[Path, str], list[str]]
    source: Callable[[Path, str, str, PrepareConfig, JobOptions], SceneSource]
    mesh_path: Callable[[Path, str], Path]
    check_layout: Callable[[Path], list[str]]

    def check_id(self, scene_id: str, where: str = "") -> str:
        """``scene_id`` if it matches :attr:`id_pattern` in full, else :class:`InputError` (a
        ValueError) naming ``where`` it came from; no id that passes can be a path."""
        return check_name(scene_id, f"{self.title} scene id", pattern=self.id_pattern, where=where)


def _camera(cfg: PrepareConfig) -> dict:
    return {"width": cfg.width, "height": cfg.height, "focal": cfg.focal}


def _scannet_source(root: Path, scene_id: str, split: str, cfg: PrepareConfig,
                    opts: JobOptions) -> SceneSource:
    return scannet_scene(root, scene_id, split, stride=opts.frame_stride,
                         test_frames=opts.test_frames_per_scene, **_camera(cfg))


def _matterport_source(root: Path, house_id: str, split: str, cfg: PrepareConfig,
                       opts: JobOptions) -> SceneSource:
    return matterport_scene(root, house_id, split, n_frames=opts.matterport_frames_per_house,
                            max_pitch_deg=opts.max_pitch_deg, **_camera(cfg))


def _matterport_houses(root: Path, split: str) -> list[str]:
    return mp.list_houses(root)


DATASETS: dict[str, DatasetSpec] = {
    "scannet": DatasetSpec(
        name="scannet", title="ScanNet v2", splits=("train", "val", "test"),
        id_pattern=sn.SCENE_ID_PATTERN, scenes=sn.read_split, source=_scannet_source,
        mesh_path=lambda root, scene_id: sn.scene_paths(root, scene_id).mesh, check_layout=sn.check_layout),
    "matterport": DatasetSpec(
        name="matterport", title="Matterport3D", splits=("test",),
        id_pattern=mp.HOUSE_ID_PATTERN, scenes=_matterport_houses, source=_matterport_source,
        mesh_path=lambda root, house_id: mp.house_paths(root, house_id).mesh, check_layout=mp.check_layout),
}
"""Every dataset the toolkit reads, by name."""


def get_dataset(name: str) -> DatasetSpec:
    """The registry entry of ``name``; ValueError listing the known datasets otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise InputError(f"unknown dataset {name!r}; the toolkit reads {sorted(DATASETS)}") from None


def scene_source(dataset: str, root: str | os.PathLike, scene_id: str, split: str, cfg: PrepareConfig,
                 opts: JobOptions) -> SceneSource:
    """The prepare job's input for one scene of ``dataset`` (id and split checked first)."""
    spec = get_dataset(dataset)
    if split not in spec.splits:
        raise InputError(f"{spec.title} has no split {split!r} here; its splits are {list(spec.splits)}")
    return spec.source(Path(root), spec.check_id(scene_id, "--scene"), split, cfg, opts)
