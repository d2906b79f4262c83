"""The scoring half of the evaluate stage: every method × test frame × protocol → one CSV row (SPEC §5).

For each test frame of the given manifests, the ground truth is read once
(:func:`pipeline.testset.read_test_frame`: the visible mesh in the camera frame, the shard's
``rendered_depth`` (first mesh hit, the depth reference) and ``amodal_depth`` (scope of the paper
protocol)) and every
method's prediction (:func:`benchmark.predictions.load_prediction`) is scored with
:func:`benchmark.protocols.evaluate_frame` under each protocol. Meshes derived from grids or depth
maps are written as binary PLY to ``OUT/meshes/<method>/<dataset>/<scene>/<frame:06d>.ply``.
A frame without a prediction file gives rows with NaN metrics and reason ``missing_prediction``.

Outputs (all written atomically): ``OUT/per_frame.csv`` (sorted by method, dataset, scene_id,
frame_index, protocol; the columns of :func:`benchmark.protocols.to_row` plus identity columns and
``prediction`` = grid | mesh | depth | missing) and, with ``--figures K``, ``OUT/figures/``.

Command line::

    python -m benchmark.evaluate --method dgs=data/prepared/predictions/dgs \\
        --manifest scannet=data/prepared/scannet/test/manifest.parquet --root scannet=data/synthetic/scannet \\
        --protocols release paper --out data/prepared/evaluation --workers 2 --figures 3
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from benchmark.figures import frame_figure
from benchmark.metrics import DEPTH_KEYS, MESH_KEYS
from benchmark.predictions import MissingPrediction, load_prediction, traced_depth
from benchmark.protocols import PROTOCOLS, evaluate_frame, fit_and_delineate, to_row
from benchmark.report import f1_histogram
from pipeline.atomic import atomic_path
from pipeline.formats.ply import write_ply
from pipeline.testset import EvalFrame, FrameRef, list_test_frames, read_test_frame

ID_COLUMNS = ("method", "dataset", "scene_id", "frame_index", "protocol")
MISSING = "missing_prediction"
DEPTH_SOURCES = ("mesh", "trace")
"""``evaluate.depth_source``: a prediction's depth is rendered from its mesh, or, where its grid file
holds one (SDF models predicted with ``--depth-source trace``), the sphere-traced depth is used."""


@dataclass(frozen=True)
class Settings:
    """What to score and how: methods (name → folder), protocols, samples per mesh, seed, output.

    clip_gt: delineate the ground-truth visible mesh with the same protocol as the prediction
    (default). Its faces are selected by centroid in the 1.05-widened frustum (SPEC §4), wider than
    the prediction's 1 − 4/128 scope, so without clipping even the ground truth itself scores
    recall < 1 (F1 0.95–0.97 on the demo test frames, 0.85–0.92 on the 64×48 test fixture).
    depth_source: one of :data:`DEPTH_SOURCES`; each row's ``depth_source`` column says which was used.
    """

    methods: dict[str, Path]
    protocols: tuple[str, ...]
    out: Path
    n_samples: int = 200_000
    seed: int = 0
    threshold: float = 0.05
    clip_gt: bool = True
    depth_source: str = "mesh"


def mesh_path(out: Path, method: str, ref: FrameRef) -> Path:
    """``out/meshes/<method>/<dataset>/<scene>/<frame:06d>.ply``."""
    return out / "meshes" / method / ref.dataset / ref.scene_id / f"{ref.frame_index:06d}.ply"


def score_frame(frame: EvalFrame, method: str, settings: Settings) -> list[dict]:
    """One row per protocol for one method on one frame (NaN rows when the prediction is missing)."""
    ref = frame.ref
    ident = {"method": method, "dataset": ref.dataset, "scene_id": ref.scene_id,
             "frame_index": ref.frame_index}
    try:
        vertices, faces, kind = load_prediction(settings.methods[method], frame)
    except MissingPrediction:
        return [{**ident, "prediction": "missing", **missing_row(p)} for p in settings.protocols]
    if kind != "mesh":  # the meshes the benchmark derived itself are an output
        path = mesh_path(settings.out, method, ref)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_ply(path, vertices, faces)
    rows = []
    depth = traced_depth(settings.methods[method], frame) if settings.depth_source == "trace" else None
    for protocol in settings.protocols:
        result = evaluate_frame(
            vertices, faces, frame.gt_vertices, frame.gt_faces, frame.rendered_depth,
            intrinsics=frame.intrinsics, camera_to_world=frame.camera_to_world,
            protocol=protocol, amodal_depth=frame.amodal_depth, n_samples=settings.n_samples,
            seed=settings.seed, threshold=settings.threshold, clip_gt=settings.clip_gt, pred_depth=depth)
        rows.append({**ident, "prediction": kind, "depth_source": "mesh" if depth is None else "trace",
                     **to_row(result)})
    return rows


def missing_row(protocol: str) -> dict:
    """A ``to_row``-shaped row with NaN metrics and every reason set to ``missing_prediction``."""
    nan = float("nan")
    variant = {**{k: nan for k in MESH_KEYS}, "reason": MISSING,
               **{f"depth_{k}": nan for k in DEPTH_KEYS}, "depth_reason": MISSING}
    return to_row({"protocol": protocol, "fit_a": nan, "fit_b": nan, "fit_reason": MISSING,
                   "faces_total": 0, "faces_kept": 0, "metric": variant, "fit": dict(variant)})


def _frame_rows(ref: FrameRef, settings: Settings) -> tuple[list[dict], float]:
    """Every method × protocol row of one frame, and the seconds it took (ground truth included)."""
    start = time.perf_counter()
    frame = read_test_frame(ref)
    rows = [row for method in settings.methods for row in score_frame(frame, method, settings)]
    return rows, time.perf_counter() - start


def evaluate(frames: Sequence[FrameRef], settings: Settings, workers: int = 1) -> pd.DataFrame:
    """Score every frame (in ``workers`` processes when > 1) and return the sorted per-frame table.

    Prints the mean and minimum seconds per frame (all methods and protocols) to stderr.
    """
    _check(settings)
    if workers > 1:
        # spawn, not fork: forking a process that already runs GNU OpenMP (numba, open3d) aborts.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(tqdm(pool.map(_frame_rows, frames, [settings] * len(frames)),
                                total=len(frames), desc="evaluate", unit="frame"))
    else:
        results = [_frame_rows(ref, settings) for ref in tqdm(frames, desc="evaluate", unit="frame")]
    seconds = [s for _, s in results]
    if seconds:
        print(f"benchmark.evaluate: {len(seconds)} frames × {len(settings.methods)} methods × "
              f"{len(settings.protocols)} protocols; seconds per frame mean {np.mean(seconds):.2f}, "
              f"min {np.min(seconds):.2f}", file=sys.stderr)
    table = pd.DataFrame([row for rows, _ in results for row in rows])
    return table.sort_values(list(ID_COLUMNS), kind="stable").reset_index(drop=True)


def _check(settings: Settings) -> None:
    bad = [p for p in settings.protocols if p not in PROTOCOLS]
    if bad:
        raise ValueError(f"benchmark.evaluate: unknown protocol(s) {bad}; use {list(PROTOCOLS)}.")
    if settings.depth_source not in DEPTH_SOURCES:
        raise ValueError(f"benchmark.evaluate: depth_source {settings.depth_source!r} is unknown; "
                         f"use {list(DEPTH_SOURCES)}.")
    for name, folder in settings.methods.items():
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"benchmark.evaluate: method {name!r}: folder {folder} does not "
                                    f"exist; expected <dir>/<dataset>/<scene>/<frame:06d>.<npz|ply|npy|png> "
                                    f"(run the predict step, or fix --method {name}=DIR).")


def write_csv(table: pd.DataFrame, path: Path) -> Path:
    """Write ``table`` to ``path`` atomically (:mod:`pipeline.atomic`)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def write_figures(table: pd.DataFrame, frames: Sequence[FrameRef], settings: Settings,
                  k: int) -> list[Path]:
    """Fig. 5-style figures of the first ``k`` frames (manifest order) with a prediction, per method,
    for the first protocol of ``settings`` (fitted mesh when the fit succeeded), and the per-frame
    F1 histogram; all under ``settings.out / "figures"``. Returns the written paths."""
    out = settings.out / "figures"
    protocol = settings.protocols[0]
    written = []
    for method in settings.methods:
        rows = table[(table["method"] == method) & (table["protocol"] == protocol)
                     & (table["prediction"] != "missing")]
        have = set(zip(rows["dataset"], rows["scene_id"], rows["frame_index"]))
        chosen = [r for r in frames if (r.dataset, r.scene_id, r.frame_index) in have][:k]
        for ref in chosen:
            frame = read_test_frame(ref)
            verts, faces, _ = load_prediction(settings.methods[method], frame)
            depth = traced_depth(settings.methods[method], frame) if settings.depth_source == "trace" else None
            scope = fit_and_delineate(verts, faces, frame.gt_vertices, frame.gt_faces,
                                      frame.rendered_depth.astype(np.float64),
                                      intrinsics=frame.intrinsics,
                                      camera_to_world=frame.camera_to_world, protocol=protocol,
                                      amodal_depth=frame.amodal_depth, clip_gt=settings.clip_gt,
                                      pred_depth=depth)
            shown = verts if scope.fit_vertices is None else scope.fit_vertices
            name = f"{method}_{ref.dataset}_{ref.scene_id}_{ref.frame_index:06d}.png"
            written.append(frame_figure(
                frame.image, shown, faces[scope.keep], frame.gt_vertices, scope.gt_faces,
                out / name, focal=float(frame.intrinsics[0]), threshold=settings.threshold,
                seed=settings.seed, title=f"{method} · {ref.scene_id} frame {ref.frame_index} · {protocol}"))
    if "fit_f1" in table.columns and table["fit_f1"].notna().any():
        out.mkdir(parents=True, exist_ok=True)
        written.append(f1_histogram(table, out / "f1_histogram.png"))
    return written


def _pairs(values: Iterable[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(f"benchmark.evaluate: {what} must be NAME=PATH, got {value!r}.")
        out[name] = rest
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.evaluate",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--method", action="append", required=True, metavar="NAME=DIR",
                        help="a prediction folder (repeat for several methods)")
    parser.add_argument("--manifest", action="append", required=True, metavar="DATASET=PATH",
                        help="merged test manifest of a dataset (scannet, matterport)")
    parser.add_argument("--root", action="append", required=True, metavar="DATASET=PATH",
                        help="raw dataset root of a dataset (for the ground-truth mesh)")
    parser.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=1, help="processes (frames in parallel)")
    parser.add_argument("--figures", type=int, default=0, metavar="K",
                        help="Fig. 5-style renders of the first K frames per method")
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    parser.add_argument("--samples", type=int, default=defaults["n_samples"],
                        help="points sampled per mesh (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults["seed"], help="surface-sampling seed (default %(default)s)")
    parser.add_argument("--no-clip-gt", dest="clip_gt", action="store_false",
                        help="score against the whole visible mesh (not delineated like the prediction)")
    parser.add_argument("--depth-source", choices=DEPTH_SOURCES, default=defaults["depth_source"],
                        help="trace: use the sphere-traced depth a grid file holds (SDF models), else the mesh's")
    args = parser.parse_args(argv)
    manifests, roots = _pairs(args.manifest, "--manifest"), _pairs(args.root, "--root")
    missing = sorted(set(manifests) - set(roots))
    if missing:
        parser.error(f"no --root for dataset(s) {missing}; give --root DATASET=PATH for each manifest")
    settings = Settings({k: Path(v) for k, v in _pairs(args.method, "--method").items()},
                        tuple(args.protocols), args.out, args.samples, args.seed,
                        clip_gt=args.clip_gt, depth_source=args.depth_source)
    frames = [ref for dataset, path in manifests.items()
              for ref in list_test_frames(path, dataset, roots[dataset])]
    table = evaluate(frames, settings, args.workers)
    print(write_csv(table, args.out / "per_frame.csv"))
    if args.figures > 0:
        for path in write_figures(table, frames, settings, args.figures):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
