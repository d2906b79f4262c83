"""HDF5 shards of prepared frames: the schema in one place, a deterministic writer and a lazy reader.

A shard is one HDF5 file holding up to ``frames_per_shard`` rows; row ``r`` of every per-frame
dataset belongs to the same frame (a :class:`pipeline.frame_sample.FrameSample`). The layout:

================================  =============  ===============  ==================================
HDF5 path                         dtype          shape            content (SPEC §1, §4)
================================  =============  ===============  ==================================
``dataset``, ``scene_id``,        utf-8 vlen     (N,)             provenance
``source_file``, ``split``        string
``frame_index``                   int64          (N,)             index in the source file
``image``                         uint8          (N, 3, H, W)     RGB
``depth``                         float32        (N, H, W)        sensor depth, metres, NaN holes
``rendered_depth``                float32        (N, H, W)        first mesh hit z, metres, NaN = none
``amodal_depth``                  float32        (N, H, W)        SPEC §4, metres, NaN = none
``intrinsics``                    float32        (N, 4)           fx, fy, cx, cy, virtual pixels
``world_to_camera``               float32        (N, 4, 4)        world → OpenCV camera
``near_surface/points``           float32        (N, K, 3)        camera frame, metres
``near_surface/labels``           uint8          (N, K)           1 = inward/occupied, 0 = outward
``near_surface/valid``            bool           (N, K)           False = padding
``non_surface/points``            float32        (N, M, 3)        camera frame, metres
``non_surface/valid``             bool           (N, M)           False = padding
``visible_faces/count``           int64          (N,)             number of visible faces
``visible_faces/offset``          int64          (N + 1,)         row r owns ``delta[offset[r]:offset[r+1]]``
``visible_faces/delta``           int32          (total,)         sorted face ids, delta-encoded
``structure_source``              utf-8 vlen     (N,)             "labels" | "inferred" (SPEC §4.9; v2)
                                  string
``near_surface/offsets``          float32        (N, K)           offset d along the normal, metres (v3)
``surface/points``, ``/normals``  float32        (N, S, 3)        on-surface samples, camera frame (v3)
``surface/colors``, ``/colored``  uint8, bool    (N, S, 3), (N,)  vertex colours; False: none (v3)
================================  =============  ===============  ==================================

File attributes: ``schema_version`` (:data:`SCHEMA_VERSION`), ``n_rows``, ``width``, ``height``,
``n_near``, ``n_non``, ``n_surface``, ``compression`` and any caller attributes (e.g. the prepare
config as JSON).

Versions: :data:`SCHEMA_VERSION` is written, :data:`MIN_SCHEMA_VERSION` up to it are read. A field
added later (:attr:`Field.since`, "(vN)" above) reads as its :attr:`Field.missing` (None unless
stated) in older rows; :meth:`ShardReader.require` names the shard and how to re-prepare it for a
feature that needs such a field.

Design decisions (why):
- Every per-frame dataset is chunked with one frame per chunk, so reading a row decompresses only
  that row. Compression defaults to Zstandard (level 1) behind a byte shuffle via hdf5plugin's
  Blosc filter: within ~5 % of gzip's size on these arrays and several times faster to write and
  read (see ``docs/shards.md`` for the measurements; readers must ``import hdf5plugin``); ``"gzip"`` (readable by any HDF5 build) and
  ``"lzf"`` are options.
- Visible-face sets vary in length; they are stored sorted and delta-encoded in one flat, chunked,
  compressed dataset (consecutive ids → small deltas that compress to almost nothing) instead of a
  vlen dataset, whose heap HDF5 cannot compress.
- Rows of the open shard are buffered in memory (bounded by ``frames_per_shard``) and written with
  one h5py call per dataset when the shard is full: per-row calls made writing ~3× slower.
- A full disk is an error that names the folder and the bytes needed, not a crash inside HDF5: the
  free space is checked before each shard is written (estimated from the previous shard's bytes per
  row; the first shard is not pre-checked), a write that fails for lack of space is caught, and the
  partial file is removed (:class:`pipeline.errors.DiskFullError`).
- Byte-identical re-runs: object creation/modification times are disabled for every dataset and
  group (``track_times`` / ``obj_track_times``), the file format bounds are pinned
  (:data:`LIBVER`), and datasets are created in a fixed order. A shard is written to a temporary
  sibling (:mod:`pipeline.atomic`) and renamed only after it is closed, so a killed job never
  leaves a file that looks finished.
"""
from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import h5py
import hdf5plugin
import numpy as np

from pipeline.atomic import PARTIAL, atomic_path
from pipeline.errors import DiskFullError, UserError
from pipeline.frame_sample import FrameSample

SCHEMA_VERSION = 3
"""The version written. Bumped whenever a dataset is added or a name, dtype or meaning changes."""
MIN_SCHEMA_VERSION = 1
"""The oldest version still read (a field added later reads as its ``Field.missing``)."""
STRUCTURE_SOURCE = 2
"""The version that added ``structure_source``."""
SURFACE_SAMPLES = 3
"""The version that added ``near_surface/offsets`` and the ``surface/*`` on-surface samples."""

LIBVER = ("v110", "v110")
"""HDF5 file-format bounds, pinned so the same HDF5 library writes the same bytes."""

ZSTD_LEVEL = 1  # level 1: ~2x faster writes than 5 for a few % more bytes (docs/shards.md)
COMPRESSIONS = ("zstd", "gzip", "lzf", "none")
_STR = h5py.string_dtype("utf-8")


@dataclass(frozen=True)
class ShardLayout:
    """Per-frame array sizes of a shard: virtual image W×H pixels, K near- and M non-surface points."""

    width: int
    height: int
    n_near: int
    n_non: int
    n_surface: int = 0

    @classmethod
    def of(cls, sample: FrameSample) -> "ShardLayout":
        """Layout that fits ``sample`` (image (3, H, W), K near-, M non- and S on-surface points)."""
        _, h, w = sample.image.shape
        n_surface = 0 if sample.surface_points is None else int(sample.surface_points.shape[0])
        return cls(int(w), int(h), int(sample.near_surface_points.shape[0]),
                   int(sample.non_surface_points.shape[0]), n_surface)


@dataclass(frozen=True)
class Field:
    """One fixed-shape per-frame dataset: HDF5 path, FrameSample attribute, dtype, row shape; the
    schema version that added it and what a reader returns for it from an older file."""

    path: str
    attr: str
    dtype: Any
    shape: Callable[[ShardLayout], tuple[int, ...]]
    since: int = 1
    missing: Any = None


STRING_FIELDS: tuple[Field, ...] = tuple(
    Field(name, name, _STR, lambda lay: ()) for name in ("dataset", "scene_id", "source_file", "split")
) + (Field("structure_source", "structure_source", _STR, lambda lay: (), since=STRUCTURE_SOURCE, missing="unknown"),)

ARRAY_FIELDS: tuple[Field, ...] = (
    Field("frame_index", "frame_index", np.int64, lambda lay: ()),
    Field("image", "image", np.uint8, lambda lay: (3, lay.height, lay.width)),
    Field("depth", "depth", np.float32, lambda lay: (lay.height, lay.width)),
    Field("rendered_depth", "rendered_depth", np.float32, lambda lay: (lay.height, lay.width)),
    Field("amodal_depth", "amodal_depth", np.float32, lambda lay: (lay.height, lay.width)),
    Field("intrinsics", "intrinsics", np.float32, lambda lay: (4,)),
    Field("world_to_camera", "world_to_camera", np.float32, lambda lay: (4, 4)),
    Field("near_surface/points", "near_surface_points", np.float32, lambda lay: (lay.n_near, 3)),
    Field("near_surface/labels", "near_surface_labels", np.uint8, lambda lay: (lay.n_near,)),
    Field("near_surface/valid", "near_surface_valid", np.bool_, lambda lay: (lay.n_near,)),
    Field("non_surface/points", "non_surface_points", np.float32, lambda lay: (lay.n_non, 3)),
    Field("non_surface/valid", "non_surface_valid", np.bool_, lambda lay: (lay.n_non,)),
    Field("near_surface/offsets", "near_surface_offsets", np.float32, lambda lay: (lay.n_near,), SURFACE_SAMPLES),
    Field("surface/points", "surface_points", np.float32, lambda lay: (lay.n_surface, 3), SURFACE_SAMPLES),
    Field("surface/normals", "surface_normals", np.float32, lambda lay: (lay.n_surface, 3), SURFACE_SAMPLES),
    Field("surface/colors", "surface_colors", np.uint8, lambda lay: (lay.n_surface, 3), SURFACE_SAMPLES),
    Field("surface/colored", "surface_colored", np.bool_, lambda lay: (), SURFACE_SAMPLES),
)
FACES_COUNT, FACES_OFFSET, FACES_DELTA = "visible_faces/count", "visible_faces/offset", "visible_faces/delta"
_FACE_CHUNK = 1 << 16  # elements per chunk of the flat face-id dataset (256 KiB of int32)


def shard_name(index: int) -> str:
    """File name of the ``index``-th shard of a directory: ``shard_00000.h5``."""
    return f"shard_{index:05d}.h5"


def _filter_kwargs(compression: str) -> dict[str, Any]:
    if compression == "zstd":
        return dict(hdf5plugin.Blosc(cname="zstd", clevel=ZSTD_LEVEL, shuffle=hdf5plugin.Blosc.SHUFFLE))
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 6, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    if compression == "none":
        return {}
    raise ValueError(f"shard compression {compression!r} is unknown; use one of {COMPRESSIONS}")


def _group(parent: h5py.Group, name: str) -> h5py.Group:
    """Create (or open) a group whose object header carries no timestamps (for identical bytes)."""
    if name in parent:
        return parent[name]
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


class _OpenShard:
    """One shard being filled: rows are validated and buffered in memory (at most
    ``frames_per_shard`` frames, ~0.85 MB each at 256×192), then written in one call per dataset
    by :meth:`finish` — per-row h5py calls cost more than the compression itself."""

    def __init__(self, path: Path, layout: ShardLayout, compression: str, attrs: dict[str, Any]) -> None:
        self.path, self.layout, self.compression, self.attrs = path, layout, compression, attrs
        self.rows: dict[str, list] = {fld.path: [] for fld in STRING_FIELDS + ARRAY_FIELDS}
        self.faces: list[np.ndarray] = []

    @property
    def n(self) -> int:
        return len(self.faces)

    def append(self, sample: FrameSample) -> int:
        for fld in STRING_FIELDS + ARRAY_FIELDS:
            value = getattr(sample, fld.attr)
            if value is None:
                raise ValueError(f"frame {sample.scene_id}/{sample.frame_index}: field {fld.attr!r} is missing; "
                                 f"shard schema version {SCHEMA_VERSION} stores it for every frame")
            want = fld.shape(self.layout)
            if fld.dtype is not _STR and np.shape(value) != want:
                raise ValueError(
                    f"frame {sample.scene_id}/{sample.frame_index}: field {fld.attr!r} has shape "
                    f"{np.shape(value)}, shard {self.path.name} expects {want}; all frames of a "
                    f"shard directory must use the same virtual camera and point quotas")
            self.rows[fld.path].append(str(value) if fld.dtype is _STR
                                       else np.array(value, dtype=fld.dtype))  # copy: caller may reuse
        faces = np.asarray(sample.visible_faces, dtype=np.int64)
        if faces.size and (np.any(np.diff(faces) <= 0) or faces[0] < 0 or faces[-1] > np.iinfo(np.int32).max):
            raise ValueError(f"frame {sample.scene_id}/{sample.frame_index}: visible_faces must be "
                             f"strictly increasing non-negative int32 face ids")
        self.faces.append(np.diff(faces, prepend=0).astype(np.int32))
        return self.n - 1

    def finish(self, bytes_per_row: float | None = None) -> None:
        """Write every buffered row to ``self.path`` atomically (temporary sibling, then rename).

        ``bytes_per_row``: the previous shard's size per row; with it, a disk whose free space is
        below 1.25× the estimated size refuses the shard before HDF5 starts writing. A write that
        fails for lack of space (ENOSPC/EDQUOT) is turned into :class:`DiskFullError`; the temporary
        file is removed either way.
        """
        folder = self.path.parent
        need = int(1.25 * bytes_per_row * self.n) if bytes_per_row else None
        if need is not None and shutil.disk_usage(folder).free < need:
            raise _disk_full(self.path, need, shutil.disk_usage(folder).free)
        try:
            with atomic_path(self.path) as tmp:
                self._write(tmp)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)) or "No space left" in str(exc):
                raw = sum(np.asarray(rows[0]).nbytes * len(rows) for rows in self.rows.values() if rows)
                raise _disk_full(self.path, need or raw, shutil.disk_usage(folder).free) from exc
            raise

    def _write(self, path: Path) -> None:
        filt = _filter_kwargs(self.compression)
        # track_times=False also keeps timestamps out of the root group's object header
        with h5py.File(path, "w", libver=LIBVER, track_times=False) as f:
            for fld in STRING_FIELDS + ARRAY_FIELDS:
                row = fld.shape(self.layout)
                parent_name, _, leaf = fld.path.rpartition("/")
                parent = _group(f, parent_name) if parent_name else f
                data = (np.array(self.rows[fld.path], dtype=object) if fld.dtype is _STR
                        else np.stack(self.rows[fld.path]))
                parent.create_dataset(leaf, data=data, chunks=(1, *row), dtype=fld.dtype,
                                      track_times=False, **(filt if fld.dtype is not _STR else {}))
            grp = _group(f, "visible_faces")
            grp.create_dataset("count", data=np.array([d.size for d in self.faces], np.int64),
                               track_times=False)
            offsets = np.concatenate([[0], np.cumsum([d.size for d in self.faces])]).astype(np.int64)
            grp.create_dataset("offset", data=offsets, track_times=False)
            delta = np.concatenate(self.faces) if self.faces else np.zeros(0, np.int32)
            grp.create_dataset("delta", data=delta, dtype=np.int32, track_times=False,
                               chunks=(max(1, min(_FACE_CHUNK, delta.size)),), **filt)
            for key in sorted(self.attrs):
                f.attrs[key] = self.attrs[key]
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["width"], f.attrs["height"] = self.layout.width, self.layout.height
            f.attrs["n_near"], f.attrs["n_non"] = self.layout.n_near, self.layout.n_non
            f.attrs["n_surface"] = self.layout.n_surface
            f.attrs["compression"] = self.compression
            f.attrs["n_rows"] = self.n

    def abort(self) -> None:
        self.rows.clear()


def _disk_full(path: Path, need: int, free: int) -> DiskFullError:
    return DiskFullError(errno.ENOSPC, f"{path.parent}: not enough free space to write {path.name}: about "
                         f"{need} bytes needed, {free} free. What to do: free space on that disk (or "
                         f"write the output elsewhere) and rerun the job; it starts the scene over")


class ShardWriter:
    """Append :class:`FrameSample` rows to ``shard_00000.h5``, ``shard_00001.h5``, … in ``out_dir``.

    A shard holds ``frames_per_shard`` rows, buffered in memory; when full (or at :meth:`close`) it
    is written atomically (:mod:`pipeline.atomic`), so only complete shards ever carry the final
    name; used as a context manager, an exception drops the open shard's buffered rows. Writing the same samples in the same order
    gives byte-identical files.

    Args:
        out_dir: directory for the shards (created if missing).
        frames_per_shard: rows per shard (the last shard may hold fewer).
        compression: one of :data:`COMPRESSIONS` (default ``"zstd"``, see the module docstring).
        layout: array sizes; inferred from the first sample when None.
        attrs: extra file attributes (str/number/array values), written in sorted key order.
    """

    def __init__(self, out_dir: str | os.PathLike, *, frames_per_shard: int = 64,
                 compression: str = "zstd", layout: ShardLayout | None = None,
                 attrs: dict[str, Any] | None = None) -> None:
        if frames_per_shard < 1:
            raise ValueError(f"frames_per_shard must be >= 1, got {frames_per_shard}")
        _filter_kwargs(compression)  # validate early
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.frames_per_shard, self.compression = frames_per_shard, compression
        self.layout, self.attrs = layout, dict(attrs or {})
        self.finished: list[str] = []
        self._open: _OpenShard | None = None
        self._bytes_per_row: float | None = None  # of the last finished shard: the space estimate

    def append(self, sample: FrameSample) -> tuple[str, int]:
        """Write one frame; returns (shard file name relative to ``out_dir``, row in that shard)."""
        if self.layout is None:
            self.layout = ShardLayout.of(sample)
        if self._open is None:
            self._open = _OpenShard(self.out_dir / shard_name(len(self.finished)), self.layout,
                                    self.compression, self.attrs)
        row = self._open.append(sample)
        name = self._open.path.name
        if self._open.n == self.frames_per_shard:
            self._finish()
        return name, row

    def _finish(self) -> None:
        assert self._open is not None
        self._open.finish(self._bytes_per_row)
        self._bytes_per_row = self._open.path.stat().st_size / max(self._open.n, 1)
        self.finished.append(self._open.path.name)
        self._open = None

    def close(self) -> list[str]:
        """Finish the last (possibly short) shard; returns the names of all finished shards."""
        if self._open is not None:
            self._finish()
        return list(self.finished)

    def abort(self) -> None:
        """Drop the shard being buffered (finished shards stay; their directory has no marker)."""
        if self._open is not None:
            self._open.abort()
            self._open = None

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class SchemaError(UserError, RuntimeError):
    """A shard file does not match this code's schema (version or layout)."""


class ShardReader:
    """Random access to the rows of one shard; the file is opened on first use, rows read lazily.

    ``reader[r]`` returns the :class:`FrameSample` of row ``r``, decompressing only that row's chunks;
    fields newer than the shard's version are None (see the module docstring). The reader is
    picklable before first use (safe to hand to DataLoader workers: each opens its own handle).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._f: h5py.File | None = None
        self._offsets: np.ndarray | None = None
        self._datasets: dict[str, h5py.Dataset] = {}  # path -> dataset: a group lookup costs ~0.2 ms
        self._n_rows = 0
        self._version = 0

    @property
    def file(self) -> h5py.File:
        """The open h5py file, opened and schema-checked on first access."""
        if self._f is None:
            if not self.path.exists():
                raise FileNotFoundError(
                    f"shard {self.path} does not exist; a '*{PARTIAL}' file next to it means "
                    f"its prepare job did not finish — rerun that job")
            f = h5py.File(self.path, "r")
            found = f.attrs.get("schema_version")
            if found is None or not MIN_SCHEMA_VERSION <= int(found) <= SCHEMA_VERSION:
                f.close()
                raise SchemaError(
                    f"shard {self.path}: schema_version {found if found is None else int(found)}, this code reads "
                    f"versions {MIN_SCHEMA_VERSION} to {SCHEMA_VERSION}; re-prepare the data with this version "
                    f"of pipeline.prepare (or use the code version that wrote it)")
            self._f, self._version = f, int(found)
            self._offsets = f[FACES_OFFSET][...]
            paths = [fld.path for fld in STRING_FIELDS + ARRAY_FIELDS if fld.since <= self._version] + [FACES_DELTA]
            self._datasets = {path: f[path] for path in paths}
            self._n_rows = int(f.attrs["n_rows"])
        return self._f

    @property
    def version(self) -> int:
        """The shard's ``schema_version`` (opens the file on first use)."""
        return self._version if self._f is not None else int(self.file.attrs["schema_version"])

    def require(self, attrs: tuple[str, ...], purpose: str) -> None:
        """Raise a :class:`SchemaError` naming this shard, the missing fields, ``purpose`` (what
        needs them) and how to re-prepare, unless every FrameSample attribute in ``attrs`` is stored."""
        since = {fld.attr: fld.since for fld in ARRAY_FIELDS}
        missing = [a for a in attrs if since.get(a, 1) > self.version]
        if missing:
            where = self.read(0, ("dataset", "split", "scene_id")) if len(self) else {}
            raise SchemaError(
                f"shard {self.path}: {purpose} needs {missing}, which shards store from schema version "
                f"{max(since[a] for a in missing)} on; this one is version {self.version}. Re-prepare the scene "
                f"with this code: python -m pipeline.prepare --dataset {where.get('dataset', 'DATASET')} "
                f"--split {where.get('split', 'SPLIT')} --scene {where.get('scene_id', 'SCENE')} --root DATASET_ROOT "
                f"--out WORK_ROOT (in the workflow: delete {self.path.parent} and rerun the prepare target)")

    def __len__(self) -> int:
        self.file  # noqa: B018 — opens the file on first use
        return self._n_rows

    @property
    def layout(self) -> ShardLayout:
        a = self.file.attrs
        return ShardLayout(int(a["width"]), int(a["height"]), int(a["n_near"]), int(a["n_non"]),
                           int(a.get("n_surface", 0)))

    def visible_faces(self, row: int) -> np.ndarray:
        """(n,) int32 sorted visible face ids of ``row``."""
        self.file  # noqa: B018 — opens the file on first use
        lo, hi = int(self._offsets[row]), int(self._offsets[row + 1])
        return np.cumsum(self._datasets[FACES_DELTA][lo:hi], dtype=np.int64).astype(np.int32)

    def read(self, row: int, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Selected FrameSample attributes of ``row`` as a dict (all when ``fields`` is None); a field
        the shard's version does not have is None."""
        n = len(self)
        if not -n <= row < n:
            raise IndexError(f"row {row} out of range for shard {self.path} with {n} rows")
        row %= n
        out = {}
        for fld in STRING_FIELDS + ARRAY_FIELDS:
            if fields is not None and fld.attr not in fields:
                continue
            if fld.path not in self._datasets:  # added after this file's schema version
                out[fld.attr] = fld.missing
                continue
            v = self._datasets[fld.path][row]
            out[fld.attr] = v.decode("utf-8") if isinstance(v, bytes) else v.item() if np.ndim(v) == 0 else v
        if fields is None or "visible_faces" in fields:
            out["visible_faces"] = self.visible_faces(row)
        return out

    def __getitem__(self, row: int) -> FrameSample:
        return FrameSample(**self.read(row))

    def __iter__(self) -> Iterator[FrameSample]:
        return (self[r] for r in range(len(self)))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f, self._offsets, self._datasets = None, None, {}

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])

    def __enter__(self) -> "ShardReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


if __name__ == "__main__":
    raise SystemExit("pipeline.shards is the shard library, not a command: look at a shard with "
                     "`dgs inspect SHARD.h5 [--root DATASET_ROOT]` (docs/running.md)")
