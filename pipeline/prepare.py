"""The prepare job: scenes → per-frame records on Dask → HDF5 shards + manifest, one directory per scene.

Usage::

    python -m pipeline.prepare --dataset scannet --root DATA --split train --scene scene0000_00 \
        --out data/prepared [--config config/config.yaml] [--workers 4 | --dask-scheduler tcp://h:8786]

Output layout (per scene; Snakemake declares the ``done`` file or the directory)::

    <out>/<dataset>/<split>/<scene_id>/shard_00000.h5 …   HDF5 shards (pipeline.shards)
    <out>/<dataset>/<split>/<scene_id>/manifest.parquet   every frame considered (pipeline.manifest)
    <out>/<dataset>/<split>/<scene_id>/done               JSON summary, written last

A job first takes the scene folder's lock (:mod:`pipeline.locking`: a second job on the same folder
fails with the first one's PID), then deletes the scene's ``done`` marker, shards and manifest
*before reading any input*, so neither an interrupted nor a failed rerun ever looks finished; every
file is written atomically (:mod:`pipeline.atomic`). A scene that yields no frame is an error naming
the most frequent skip reason with an example; an expected error (bad input, full disk) removes what
the run had written. Skipped frames keep their message in the manifest, ``done`` and the log. Frames run on a
``distributed.LocalCluster`` of N single-threaded worker processes (``--workers``, default 2), on an
existing cluster (``--dask-scheduler``), or in this process (``--workers 0``). The scene geometry is
broadcast once to every worker (its Embree BVH is rebuilt lazily there, once per worker). Results are
gathered in frame order from a bounded window of in-flight frames, so memory stays flat and the
output bytes do not depend on the number of workers.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from pipeline.datasets import DATASETS, get_dataset, scene_source
from pipeline.cli import command_parser
from pipeline.errors import InputError, UserError, run_main
from pipeline.frames import RawFrame, SceneGeometry, SkippedFrame, prepare_frame
from pipeline.geometry.structure import StructureError, choose_structure
from pipeline.locking import exclusive_lock
from pipeline.manifest import (make_manifest, no_frame_message, skip_examples, skip_report, structure_counts,
                               summary_line, write_manifest)
from pipeline.frame_sample import FrameSample
from pipeline.atomic import PARTIAL, write_text_atomic
from pipeline.shards import SCHEMA_VERSION, ShardWriter
from pipeline.prepare_config import JobOptions, PrepareConfig, load_prepare_file, load_prepare_section
from pipeline.sources import SceneSource

DONE, MANIFEST = "done", "manifest.parquet"


def scene_dir(out: str | Path, dataset: str, split: str, scene_id: str) -> Path:
    """``<out>/<dataset>/<split>/<scene_id>``: where one job writes shards, manifest and marker.

    ``out`` is the output root; a path that already ends in ``<dataset>/<split>/<scene_id>`` is taken
    as that scene directory itself (so a workflow may pass either the root or the directory).
    ``scene_id`` must be one of ``dataset``'s ids (InputError otherwise): it never escapes ``out``.
    """
    spec = get_dataset(dataset)
    spec.check_id(scene_id)
    if split not in spec.splits:
        raise InputError(f"{spec.title} has no split {split!r} here; its splits are {list(spec.splits)}")
    out = Path(out)
    if out.parts[-3:] == (dataset, split, scene_id):
        return out
    return out / dataset / split / scene_id


def _one_frame(scene: SceneGeometry, raw: RawFrame | SkippedFrame, cfg: PrepareConfig, dataset: str,
               scene_id: str, split: str, face_ids: np.ndarray | None,
               fn: Callable[..., FrameSample | SkippedFrame]) -> tuple[FrameSample | SkippedFrame, dict]:
    """Worker task: one frame → (record, per-step seconds). Face ids are mapped back to the file's."""
    if isinstance(raw, SkippedFrame):
        return raw, {}
    timings: dict[str, float] = {}
    out = fn(scene, raw, cfg, dataset=dataset, scene_id=scene_id, split=split, timings=timings)
    if isinstance(out, FrameSample) and face_ids is not None:
        out.visible_faces = face_ids[out.visible_faces].astype(np.int32)
    return out, timings


def _serial(frames: Iterator, run: Callable) -> Iterator[tuple[Any, dict]]:
    for raw in frames:
        yield run(raw)


def _on_dask(client, frames: Iterator, scene: SceneGeometry, face_ids: np.ndarray | None,
             args: tuple, window: int) -> Iterator[tuple[Any, dict]]:
    """Submit frames keeping ≤ ``window`` in flight; yield results in submission (frame) order.

    The scene (and the face-id map, up to F int64) is broadcast once to every worker instead of
    travelling with each task.
    """
    scene_f = client.scatter(scene, broadcast=True, hash=False)
    ids_f = None if face_ids is None else client.scatter(face_ids, broadcast=True, hash=False)
    cfg, dataset, scene_id, split, fn = args
    pending: collections.deque = collections.deque()
    try:
        for raw in frames:
            pending.append(client.submit(_one_frame, scene_f, raw, cfg, dataset, scene_id, split,
                                         ids_f, fn, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()
        del scene_f, ids_f


def _clear(directory: Path) -> None:
    """Remove a previous run's marker first, then its shards and manifest (only our own names)."""
    (directory / DONE).unlink(missing_ok=True)
    for p in sorted(directory.glob("shard_*.h5*")) + sorted(directory.glob(MANIFEST + "*")):
        if p.name.endswith((".h5", MANIFEST)) or PARTIAL in p.name:
            p.unlink()


def _no_structure(frames: Iterator[RawFrame | SkippedFrame], detail: str) -> Iterator[SkippedFrame]:
    """Every frame of a scene without structure faces, skipped as ``no_structure`` with ``detail``
    (what the structure step found) as its message; other skip reasons, found without computing
    anything, are kept."""
    for raw in frames:
        yield raw if isinstance(raw, SkippedFrame) else SkippedFrame(raw.index, raw.source_file, "no_structure",
                                                                     f"no structure face ({detail})")


def scene_geometry(source: SceneSource, cfg: PrepareConfig) -> tuple[SceneGeometry, str]:
    """The scene's geometry with its structure faces chosen by ``cfg.structure`` (SPEC §4.9), and a
    line saying what was found. Raises StructureError naming the mesh file for ``labels`` without labels."""
    try:
        choice = choose_structure(source.vertices, source.faces, source.face_labels, cfg.structure,
                                  cfg.structure_labels)
    except StructureError as err:
        raise StructureError(f"{source.mesh_file}: {err}") from None
    geometry = SceneGeometry.from_mesh(source.vertices, source.faces, source.face_labels,
                                       cfg.structure_labels, structure=choice.mask,
                                       structure_source=choice.source, vertex_colors=source.vertex_colors)
    return geometry, choice.detail


def prepare_scene(source: SceneSource, out: str | Path, cfg: PrepareConfig, opts: JobOptions, *,
                  client=None, frame_fn: Callable[..., FrameSample | SkippedFrame] = prepare_frame,
                  timings: dict | None = None, progress: bool = True) -> Path:
    """Prepare every considered frame of one scene into ``scene_dir(out, …)``; returns that directory.

    client: a ``distributed.Client`` (frames run on its workers) or None (in this process).
    frame_fn: the per-frame function (``pipeline.frames.prepare_frame``; replaceable in tests).
    timings: if given, accumulates seconds per step over all frames (plus "writing", "total").
    Raises InputError when no frame yields a row, FolderLocked when another job writes the folder.
    """
    directory = scene_dir(out, source.dataset, source.split, source.scene_id)
    return _locked(directory, lambda: source, cfg, opts, client=client, frame_fn=frame_fn,
                   timings=timings, progress=progress)


def prepare_from_root(dataset: str, root: str | Path, scene_id: str, split: str, out: str | Path,
                      cfg: PrepareConfig, opts: JobOptions, *, client=None, progress: bool = True) -> Path:
    """The command's job for one scene: like :func:`prepare_scene`, but the dataset's files are read
    only once the folder is locked and the previous run's ``done``, manifest and shards are gone."""
    directory = scene_dir(out, dataset, split, get_dataset(dataset).check_id(scene_id, "--scene"))
    return _locked(directory, lambda: scene_source(dataset, root, scene_id, split, cfg, opts), cfg, opts,
                   client=client, progress=progress)


def _locked(directory: Path, make_source: Callable[[], SceneSource], cfg: PrepareConfig, opts: JobOptions,
            **kwargs) -> Path:
    """Lock ``directory``, clear the previous run, then read the source and write the scene; an
    expected error (bad input, no frame, full disk) removes what this run wrote before it propagates."""
    with exclusive_lock(directory, "prepared"):
        directory.mkdir(parents=True, exist_ok=True)
        _clear(directory)
        try:
            return _write_scene(make_source(), directory, cfg, opts, **kwargs)
        except UserError:
            _clear(directory)
            raise


def _write_scene(source: SceneSource, directory: Path, cfg: PrepareConfig, opts: JobOptions, *, client,
                 frame_fn: Callable[..., FrameSample | SkippedFrame] = prepare_frame,
                 timings: dict | None = None, progress: bool = True) -> Path:
    """The body of :func:`prepare_scene` once the folder is locked and cleared."""
    t0 = time.perf_counter()
    geometry, structure_detail = scene_geometry(source, cfg)
    face_ids = None if source.dropped_faces == 0 else source.face_ids
    args = (cfg, source.dataset, source.scene_id, source.split)
    frames = source.read_frames()
    if not geometry.structure.any():
        # No silent fallback to the farthest hit: without structure the amodal depth is undefined.
        frames = _no_structure(frames, structure_detail)
        print(f"{source.dataset}/{source.split}/{source.scene_id}: no structure face "
              f"({structure_detail}); every frame is skipped as no_structure", file=sys.stderr)
    if client is None:
        results = _serial(frames, lambda raw: _one_frame(geometry, raw, *args, face_ids, frame_fn))
    else:
        n_workers = max(1, len(client.scheduler_info()["workers"]))
        results = _on_dask(client, frames, geometry, face_ids, (*args, frame_fn),
                           opts.window_per_worker * n_workers)
    # raycast_threads changes speed, not results: left out so shard bytes match across worker counts
    stored = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "raycast_threads"}
    attrs = {"prepare_config": json.dumps(stored, sort_keys=True),
             "dropped_degenerate_faces": int(source.dropped_faces)}
    rows = []
    bar = tqdm(total=len(source.frames), desc=f"{source.dataset}/{source.split}/{source.scene_id}",
               unit="frame", disable=not progress)
    with ShardWriter(directory, frames_per_shard=opts.frames_per_shard, compression=opts.compression,
                     attrs=attrs) as writer:
        for rec, step_times in results:
            row = {"dataset": source.dataset, "scene_id": source.scene_id, "split": source.split,
                   "frame_index": rec.index if isinstance(rec, SkippedFrame) else rec.frame_index,
                   "source_file": rec.source_file, "structure_source": geometry.structure_source}
            if isinstance(rec, SkippedFrame):
                row.update(status="skipped", reason=rec.reason, row=-1, shard="", message=rec.message)
            else:
                tw = time.perf_counter()
                shard, r = writer.append(rec)
                step_times = dict(step_times, writing=time.perf_counter() - tw)
                row.update(status="ok", reason="", shard=shard, row=r,
                           n_valid_near=int(rec.near_surface_valid.sum()),
                           n_valid_non=int(rec.non_surface_valid.sum()),
                           visible_faces=rec.visible_face_count)
            if timings is not None:
                for k, v in step_times.items():
                    timings[k] = timings.get(k, 0.0) + v
            rows.append(row)
            bar.update(1)
    bar.close()
    manifest = make_manifest(rows)
    if not (manifest.status == "ok").any():
        raise InputError(f"{source.dataset}/{source.split}/{source.scene_id} ({source.mesh_file}): "
                         f"{no_frame_message(manifest)}")
    write_manifest(manifest, directory / MANIFEST)
    seconds = time.perf_counter() - t0
    if timings is not None:
        timings["total"] = timings.get("total", 0.0) + seconds
    summary = {"frames": len(manifest), "ok": int((manifest.status == "ok").sum()),
               "skipped": {str(k): int(v) for k, v in
                           manifest.loc[manifest.status != "ok", "reason"].value_counts().sort_index().items()},
               "skip_examples": skip_examples(manifest),
               "shards": writer.finished, "dropped_degenerate_faces": int(source.dropped_faces),
               "schema_version": SCHEMA_VERSION,
               "structure": {"source": geometry.structure_source, "detail": structure_detail,
                             "faces": int(geometry.structure.sum()), "frames": structure_counts(manifest)}}
    write_text_atomic(directory / DONE, json.dumps(summary, indent=1, sort_keys=True) + "\n")
    if progress:
        extra = f", {source.dropped_faces} degenerate faces dropped" if source.dropped_faces else ""
        print(f"{source.dataset}/{source.split}/{source.scene_id}: "
              f"{summary_line(manifest, seconds)}{extra}", file=sys.stderr)
        for line in skip_report(manifest):
            print(f"  skipped {line}", file=sys.stderr)
    return directory


def make_client(workers: int, scheduler: str | None):
    """A Dask client: connect to ``scheduler`` (tcp://…), start a LocalCluster, or None (workers 0).

    LocalCluster workers are single-threaded processes with Numba/OpenMP limited to one thread, so
    N workers use N cores.
    """
    if scheduler is None and workers == 0:
        return None
    from distributed import Client, LocalCluster

    if scheduler is not None:
        return Client(scheduler)
    env = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, env=env)
    return Client(cluster)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = command_parser("python -m pipeline.prepare", __doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True, choices=sorted(DATASETS), help="which reader the root needs")
    ap.add_argument("--root", required=True, help="dataset root (ScanNet or Matterport layout)")
    ap.add_argument("--split", required=True, choices=sorted({s for d in DATASETS.values() for s in d.splits}),
                    help="the split the scenes belong to (selects the frames: SPEC §5)")
    ap.add_argument("--scene", action="append", required=True, help="scene/house id (repeatable)")
    ap.add_argument("--out", required=True, help="output root; see the layout in the module doc")
    ap.add_argument("--config", help="workflow YAML; its 'prepare' section and dask_scheduler "
                    "(default: the prepare settings' own defaults)")
    ap.add_argument("--options", help="the 'prepare' section as a JSON object (over --config)")
    ap.add_argument("--dask-scheduler", help="tcp://host:port of an existing Dask cluster (default: a local one)")
    ap.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes; 0 = in-process")
    ap.add_argument("--frames-per-shard", type=int, help="frames (rows) per HDF5 shard, over the config")
    ap.add_argument("--frame-stride", type=int, help="train/val: keep every k-th valid frame, over the config")
    ap.add_argument("--seed", type=int, help="base seed of the per-frame random streams, over the config")
    ap.add_argument("--compression", help="HDF5 filter of the shards (zstd, gzip, lzf, none), over the config")
    a = ap.parse_args(argv)
    section, scheduler = load_prepare_file(a.config) if a.config else ({}, None)
    try:
        section.update(json.loads(a.options) if a.options else {})
    except (TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise InputError(f"--options: expected the prepare section as a JSON object, found {a.options!r} "
                         f"({exc})") from exc
    section.update({k: v for k, v in {"frames_per_shard": a.frames_per_shard, "frame_stride": a.frame_stride,
                                      "seed": a.seed, "compression": a.compression}.items() if v is not None})
    cfg, opts = load_prepare_section(section, a.config or "--options")
    scheduler = a.dask_scheduler or scheduler
    if a.workers > 0 or scheduler:  # one thread per worker: do not let Embree take every core
        cfg = dataclasses.replace(cfg, raycast_threads=1)
    client = make_client(a.workers, scheduler)
    try:
        for scene_id in a.scene:
            prepare_from_root(a.dataset, a.root, scene_id, a.split, a.out, cfg, opts, client=client)
    finally:
        if client is not None:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m pipeline.prepare"))
