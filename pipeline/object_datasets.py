"""The registry of object datasets: a sibling of :mod:`pipeline.datasets` (scenes), for single objects.

Object datasets differ from scene datasets in every function the scene registry holds: a model has no
frames, poses or visible faces, but a normalised mesh, a few rendered views and split lists per
category (synset). So they get their own small registry instead of optional fields on
:class:`pipeline.datasets.DatasetSpec`; both registries share the id discipline (every id read from a
file is checked against its pattern before it becomes a path). Adding an object dataset means one
:class:`ObjectDatasetSpec` here plus its reader in ``pipeline/formats/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from pipeline.formats import shapenet as sn


@dataclass(frozen=True)
class ObjectDatasetSpec:
    """One object dataset.

    name: its key in configs, folders and manifests; title: its name in reports; splits.
    synsets(root): the category folders. models(root, synset, split): the split's model ids.
    mesh(root, synset, model): (vertices (V, 3), faces (F, 3)) as stored.
    views(root, synset, model): the rendered views (:class:`pipeline.formats.shapenet.View`).
    mesh_path(root, synset, model): the mesh file (provenance in manifests and shards).
    """

    name: str
    title: str
    splits: tuple[str, ...]
    synsets: Callable[[Path], list[str]]
    models: Callable[[Path, str, str], list[str]]
    mesh: Callable[[Path, str, str], tuple[np.ndarray, np.ndarray]]
    views: Callable[[Path, str, str], list[sn.View]]
    mesh_path: Callable[[Path, str, str], Path]


OBJECT_DATASETS: dict[str, ObjectDatasetSpec] = {
    "shapenet": ObjectDatasetSpec(
        name="shapenet", title="ShapeNetCore v2 layout", splits=sn.SPLITS, synsets=sn.list_synsets,
        models=sn.read_split, mesh=lambda root, synset, model: sn.read_obj(sn.mesh_path(root, synset, model)),
        views=sn.read_views, mesh_path=sn.mesh_path),
}
"""Every object dataset the toolkit reads, by name."""


def get_object_dataset(name: str) -> ObjectDatasetSpec:
    """The registry entry of ``name``; ValueError listing the known object datasets otherwise."""
    try:
        return OBJECT_DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown object dataset {name!r}; the toolkit reads {sorted(OBJECT_DATASETS)}") from None
