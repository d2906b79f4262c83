"""HDF5 shards of prepared *objects* (one row per model) and their manifest (SPEC §6.6).

A record of its own, with its own schema version (:data:`OBJECT_SCHEMA_VERSION`), next to the scene
shards of :mod:`pipeline.shards` whose writer mechanism it reuses (rows buffered per shard, one row per
chunk, the same compression filters, no timestamps, atomic rename). Row ``r`` of every dataset belongs
to one model; its V rendered views share the row:

==========================  =========  ==============  ============================================
HDF5 path                   dtype      shape           content
==========================  =========  ==============  ============================================
``dataset``, ``synset``,    utf-8      (N,)            provenance (``source_file``: the mesh, relative
``model_id``, ``split``,                               to the dataset root)
``source_file``
``image``                   uint8      (N, V, 3, H, W) RGB of every view
``depth``                   float32    (N, V, H, W)    z-depth, cube units, NaN = background
``intrinsics``              float32    (N, V, 4)       fx, fy, cx, cy, pixels
``world_to_camera``         float32    (N, V, 4, 4)    normalised cube → OpenCV camera of each view
``uniform/points``          float32    (N, U, 3)       uniform in the cube [−½, ½]³ (the IoU points)
``uniform/labels``          uint8      (N, U)          1 = inside the watertight mesh
``uniform/far``             bool       (N, U)          ≥ ``exclusion`` from the surface samples
``near_surface/points``     float32    (N, K, 3)       surface samples + N(0, σ²) along the normal
``near_surface/labels``     uint8      (N, K)          1 = inside
==========================  =========  ==============  ============================================

File attributes: ``schema_version``, ``record = "object"``, ``n_rows``, ``views``, ``width``,
``height``, ``n_uniform``, ``n_near``, ``compression`` and the caller's (the prepare config as JSON).
The manifest (Parquet, :data:`MANIFEST_COLUMNS`) lists every model considered, kept or skipped.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc filter for readers)
import numpy as np
import pandas as pd

from pipeline.atomic import atomic_path
from pipeline.manifest import make_manifest, read_manifest, write_manifest
from pipeline.shards import LIBVER, SchemaError, _filter_kwargs, _group, shard_name

OBJECT_SCHEMA_VERSION = 1
"""Bumped whenever a dataset name, dtype or meaning of the object record changes."""
MANIFEST_COLUMNS: dict[str, str] = {
    "dataset": "string", "synset": "string", "model_id": "string", "split": "string", "shard": "string",
    "row": "int64", "status": "string", "reason": "string", "views": "int64", "faces": "int64"}
_STR = h5py.string_dtype("utf-8")


@dataclass
class ObjectSample:
    """One model's record (shapes in the module docstring; V views, U uniform and K near points)."""

    dataset: str
    synset: str
    model_id: str
    split: str
    source_file: str
    image: np.ndarray
    depth: np.ndarray
    intrinsics: np.ndarray
    world_to_camera: np.ndarray
    uniform_points: np.ndarray
    uniform_labels: np.ndarray
    uniform_far: np.ndarray
    near_points: np.ndarray
    near_labels: np.ndarray


@dataclass(frozen=True)
class ObjectLayout:
    """Per-row sizes of an object shard."""

    views: int
    width: int
    height: int
    n_uniform: int
    n_near: int

    @classmethod
    def of(cls, s: ObjectSample) -> "ObjectLayout":
        v, _, h, w = s.image.shape
        return cls(int(v), int(w), int(h), len(s.uniform_points), len(s.near_points))


_Shape = Callable[[ObjectLayout], tuple[int, ...]]
STRING_FIELDS = ("dataset", "synset", "model_id", "split", "source_file")
ARRAY_FIELDS: tuple[tuple[str, str, Any, _Shape], ...] = (
    ("image", "image", np.uint8, lambda lay: (lay.views, 3, lay.height, lay.width)),
    ("depth", "depth", np.float32, lambda lay: (lay.views, lay.height, lay.width)),
    ("intrinsics", "intrinsics", np.float32, lambda lay: (lay.views, 4)),
    ("world_to_camera", "world_to_camera", np.float32, lambda lay: (lay.views, 4, 4)),
    ("uniform/points", "uniform_points", np.float32, lambda lay: (lay.n_uniform, 3)),
    ("uniform/labels", "uniform_labels", np.uint8, lambda lay: (lay.n_uniform,)),
    ("uniform/far", "uniform_far", np.bool_, lambda lay: (lay.n_uniform,)),
    ("near_surface/points", "near_points", np.float32, lambda lay: (lay.n_near, 3)),
    ("near_surface/labels", "near_labels", np.uint8, lambda lay: (lay.n_near,)),
)
"""(HDF5 path, ObjectSample attribute, dtype, row shape) of every array field."""


class ObjectShardWriter:
    """Append :class:`ObjectSample` rows to ``shard_00000.h5``, … in ``out_dir`` (``per_shard`` rows each).

    Same contract as :class:`pipeline.shards.ShardWriter`: rows are buffered, a full shard is written
    atomically, :meth:`close` writes the last one, the same rows give the same bytes.
    """

    def __init__(self, out_dir: str | os.PathLike, *, per_shard: int = 16, compression: str = "zstd",
                 attrs: dict[str, Any] | None = None) -> None:
        if per_shard < 1:
            raise ValueError(f"models per shard must be >= 1, got {per_shard}")
        self.filters = _filter_kwargs(compression)
        self.out_dir, self.per_shard, self.compression = Path(out_dir), per_shard, compression
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.attrs, self.layout = dict(attrs or {}), None
        self.rows: list[ObjectSample] = []
        self.finished: list[str] = []

    def append(self, sample: ObjectSample) -> tuple[str, int]:
        """Buffer one model; returns (shard file name, row in it)."""
        self.layout = self.layout or ObjectLayout.of(sample)
        for path, attr, _, shape in ARRAY_FIELDS:
            if np.shape(getattr(sample, attr)) != shape(self.layout):
                raise ValueError(f"model {sample.synset}/{sample.model_id}: {attr} has shape "
                                 f"{np.shape(getattr(sample, attr))}, the shard expects {shape(self.layout)}; every "
                                 f"model of a split needs the same view count, image size and point counts")
        self.rows.append(sample)
        name, row = shard_name(len(self.finished)), len(self.rows) - 1
        if len(self.rows) == self.per_shard:
            self._finish()
        return name, row

    def _finish(self) -> None:
        name = shard_name(len(self.finished))
        with atomic_path(self.out_dir / name) as tmp, h5py.File(tmp, "w", libver=LIBVER, track_times=False) as f:
            for attr in STRING_FIELDS:
                f.create_dataset(attr, data=np.array([getattr(r, attr) for r in self.rows], dtype=object),
                                 dtype=_STR, track_times=False)
            for path, attr, dtype, shape in ARRAY_FIELDS:
                parent, _, leaf = path.rpartition("/")
                group = _group(f, parent) if parent else f
                data = np.stack([np.asarray(getattr(r, attr), dtype=dtype) for r in self.rows])
                group.create_dataset(leaf, data=data, chunks=(1, *shape(self.layout)), track_times=False,
                                     **self.filters)
            for key in sorted(self.attrs):
                f.attrs[key] = self.attrs[key]
            f.attrs.update({"schema_version": OBJECT_SCHEMA_VERSION, "record": "object", "n_rows": len(self.rows),
                            "compression": self.compression,
                            **{k.name: getattr(self.layout, k.name) for k in fields(ObjectLayout)}})
        self.finished.append(name)
        self.rows = []

    def close(self) -> list[str]:
        if self.rows:
            self._finish()
        return list(self.finished)


class ObjectShardReader:
    """Lazy random access to the rows of one object shard (picklable before first use)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._f: h5py.File | None = None

    @property
    def file(self) -> h5py.File:
        if self._f is None:
            if not self.path.exists():
                raise FileNotFoundError(f"object shard {self.path} does not exist; rerun its prepare_objects job")
            f = h5py.File(self.path, "r")
            found = f.attrs.get("schema_version")
            if f.attrs.get("record") != "object" or found is None or int(found) != OBJECT_SCHEMA_VERSION:
                f.close()
                raise SchemaError(f"object shard {self.path}: record {f.attrs.get('record')!r} version {found}, this "
                                  f"code reads object records of version {OBJECT_SCHEMA_VERSION}; re-prepare the "
                                  f"objects (python -m pipeline.prepare_objects)")
            self._f = f
        return self._f

    @property
    def layout(self) -> ObjectLayout:
        a = self.file.attrs
        return ObjectLayout(*(int(a[k.name]) for k in fields(ObjectLayout)))

    def __len__(self) -> int:
        return int(self.file.attrs["n_rows"])

    def read(self, row: int, attrs: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Selected :class:`ObjectSample` attributes of ``row`` (all when ``attrs`` is None)."""
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} out of range for object shard {self.path} with {len(self)} rows")
        out: dict[str, Any] = {}
        for attr in STRING_FIELDS:
            if attrs is None or attr in attrs:
                value = self.file[attr][row]
                out[attr] = value.decode("utf-8") if isinstance(value, bytes) else str(value)
        for path, attr, _, _ in ARRAY_FIELDS:
            if attrs is None or attr in attrs:
                out[attr] = self.file[path][row]
        return out

    def __getitem__(self, row: int) -> ObjectSample:
        return ObjectSample(**self.read(row))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])

    def __enter__(self) -> "ObjectShardReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_object_manifest(rows: list[dict]) -> pd.DataFrame:
    """An object manifest table (:data:`MANIFEST_COLUMNS`; see :func:`pipeline.manifest.make_manifest`)."""
    return make_manifest(rows, MANIFEST_COLUMNS)


def write_object_manifest(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write atomically as Parquet (:func:`pipeline.manifest.write_manifest`)."""
    return write_manifest(df, path, MANIFEST_COLUMNS)


def read_object_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read an object manifest, checking its columns (a scene manifest is refused naming them)."""
    return read_manifest(path, MANIFEST_COLUMNS)


def is_object_manifest(path: str | os.PathLike) -> bool:
    """True when the Parquet file at ``path`` has the object manifest's ``model_id`` column."""
    import pyarrow.parquet as pq

    return "model_id" in pq.read_schema(path).names
