"""The scoring half of the evaluate stage: every method × test frame × protocol → one CSV row (SPEC §5).

For each test frame of the given manifests, the ground truth is read once
(:func:`pipeline.testset.read_test_frame`: the visible mesh in the camera frame, the shard's
``rendered_depth`` (first mesh hit, the depth reference) and ``amodal_depth`` (scope of the paper
protocol)) and every
method's prediction (:func:`benchmark.predictions.load_prediction`) is scored with
:func:`benchmark.scoring.evaluate_frame` under each protocol (names or inline parameter sets,
:mod:`benchmark.protocols`). Meshes derived from grids or depth
maps are written as binary PLY to ``OUT/meshes/<method>/<dataset>/<scene>/<frame:06d>.ply``.
A frame without a prediction file gives rows with reason ``missing_prediction``, a prediction file
that cannot be read rows with reason ``unreadable_prediction`` (the file and the problem are printed
to stderr, the run goes on); both are scored by the protocol's failure policy (penalized, or NaN
under ``drop``). A mesh's non-finite vertices are dropped with their faces and counted in the
``nan_vertices`` column (and printed).

Outputs (all written atomically): ``OUT/per_frame.csv`` (sorted by method, dataset, scene_id,
frame_index, protocol; the columns of :func:`benchmark.scoring.to_row` (protocol, protocol_hash,
missing policy, fit, metrics and reasons) plus identity columns, ``prediction`` = grid | mesh |
depth | missing | unreadable, ``nan_vertices`` and ``structure`` = the frame's structure source)
and, with ``--figures K``, ``OUT/figures/``.

Command line::

    python -m benchmark.evaluate --method dgs=data/prepared/predictions/dgs \\
        --manifest scannet=data/prepared/scannet/test/manifest.parquet --root scannet=data/synthetic/scannet \\
        --protocols dgs-release dgs-paper '{"name": "paper-10cm", "base": "dgs-paper", "threshold": 0.1}' \\
        --out data/prepared/evaluation --workers 2 --figures 3
"""
from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
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
from benchmark.predictions import (UNREADABLE, MissingPrediction, UnreadablePrediction, drop_nonfinite, load_prediction,
                                  traced_depth)
from benchmark.protocols import Protocol, parse_cli, resolve
from benchmark.scoring import Reuse, evaluate_frame, failed_frame, fit_and_delineate, to_row
from benchmark.report import f1_histogram
from pipeline.atomic import atomic_path
from pipeline.cli import command_parser
from pipeline.errors import InputError, check_name, run_main
from pipeline.formats.ply import write_ply
from pipeline.geometry.isosurface import DEPTH_SOURCES
from pipeline.testset import EvalFrame, FrameRef, list_test_frames, read_test_frame

ID_COLUMNS = ("method", "dataset", "scene_id", "frame_index", "protocol")
MISSING = "missing_prediction"
SAVE_MESHES = ("none", "figures", "all")
"""Which derived meshes are written (``evaluate.save_meshes``)."""


@dataclass(frozen=True)
class Settings:
    """What to score and how: methods (name → folder), protocols, output, samples, seed.

    protocols: names, aliases or inline parameter sets (``benchmark.protocols.resolve``); every
    parameter of the scoring (scope, fit order, GT clipping, points, threshold, clamp, failure
    policy) is the protocol's. n_samples: when set, replaces the sample count of every sampling
    protocol (its hash changes with it); None keeps each protocol's own (200k).
    save_meshes: which meshes the benchmark derived from grids or depth maps are written as PLY under
    ``out/meshes``: "none", "figures" (those of the frames drawn as figures) or "all".
    reuse: share the ground truth's point sets and k-d trees across methods and protocols, and one
    prediction's render and point sets across protocols (:class:`benchmark.scoring.Reuse`); the
    numbers are identical either way (False only to measure or check that).
    depth_source: one of :data:`~pipeline.geometry.isosurface.DEPTH_SOURCES`: "trace" takes the
    sphere-traced depth a grid file holds (SDF models) instead of the mesh's render; each row's
    ``depth_source`` column says which was used.
    """

    methods: dict[str, Path]
    protocols: tuple[str | dict, ...]
    out: Path
    n_samples: int | None = None
    seed: int = 0
    save_meshes: str = "figures"
    reuse: bool = True
    depth_source: str = "mesh"

    def __post_init__(self) -> None:
        if self.save_meshes not in SAVE_MESHES:
            raise ValueError(f"benchmark.evaluate: save_meshes must be one of {SAVE_MESHES}, got {self.save_meshes!r}")
        if self.depth_source not in DEPTH_SOURCES:
            raise ValueError(f"benchmark.evaluate: depth_source must be one of {DEPTH_SOURCES}, "
                             f"got {self.depth_source!r}")

    @property
    def rules(self) -> tuple[Protocol, ...]:
        """The protocols, resolved (ValueError naming an unknown name or key)."""
        return tuple(resolve(p, self.n_samples) for p in self.protocols)


def mesh_path(out: Path, method: str, ref: FrameRef) -> Path:
    """``out/meshes/<method>/<dataset>/<scene>/<frame:06d>.ply``."""
    return out / "meshes" / method / ref.dataset / ref.scene_id / f"{ref.frame_index:06d}.ply"


def _depth(method: str, frame: EvalFrame, settings: Settings) -> np.ndarray | None:
    """The prediction's sphere-traced depth when ``settings.depth_source`` is "trace" and its grid file
    holds one, else None (the mesh is rendered)."""
    return traced_depth(settings.methods[method], frame) if settings.depth_source == "trace" else None


def score_frame(frame: EvalFrame, method: str, settings: Settings, reuse: Reuse | None = None) -> list[dict]:
    """One row per protocol for one method on one frame (failed rows when the prediction is missing
    or unreadable; non-finite vertices dropped and counted in ``nan_vertices``). ``reuse``: the
    frame's shared work (:class:`benchmark.scoring.Reuse`), if any."""
    ref = frame.ref
    if reuse is not None:
        reuse.next_prediction()
    ident = {"method": method, "dataset": ref.dataset, "scene_id": ref.scene_id,
             "frame_index": ref.frame_index, "structure": frame.structure_source, "nan_vertices": 0}
    try:
        vertices, faces, kind = load_prediction(settings.methods[method], frame)
        depth = _depth(method, frame, settings)
    except MissingPrediction:
        return [{**ident, "prediction": "missing", **to_row(failed_frame(p, MISSING))}
                for p in settings.rules]
    except UnreadablePrediction as exc:
        print(f"benchmark.evaluate: {method} {ref.name}: {UNREADABLE}: {exc}", file=sys.stderr)
        return [{**ident, "prediction": "unreadable", **to_row(failed_frame(p, UNREADABLE))}
                for p in settings.rules]
    vertices, faces, ident["nan_vertices"] = drop_nonfinite(vertices, faces)
    if ident["nan_vertices"]:
        print(f"benchmark.evaluate: {method} {ref.name}: {ident['nan_vertices']} non-finite vertices "
              f"dropped with their faces; the rest is scored", file=sys.stderr)
    if kind != "mesh" and settings.save_meshes == "all":  # a derived mesh is an output
        write_ply(mesh_path(settings.out, method, ref), vertices, faces)
    rows = []
    for rule in settings.rules:
        result = evaluate_frame(
            vertices, faces, frame.gt_vertices, frame.gt_faces, frame.rendered_depth,
            intrinsics=frame.intrinsics, camera_to_world=frame.camera_to_world,
            protocol=rule, amodal_depth=frame.amodal_depth, seed=settings.seed, reuse=reuse, pred_depth=depth)
        rows.append({**ident, "prediction": kind, "depth_source": "mesh" if depth is None else "trace",
                     **to_row(result)})
    return rows


def _frame_rows(ref: FrameRef, settings: Settings) -> tuple[list[dict], float]:
    """Every method × protocol row of one frame, and the seconds it took (ground truth included)."""
    start = time.perf_counter()
    frame = read_test_frame(ref)
    reuse = Reuse() if settings.reuse else None
    rows = [row for method in settings.methods for row in score_frame(frame, method, settings, reuse)]
    return rows, time.perf_counter() - start


def evaluate(frames: Sequence[FrameRef], settings: Settings, workers: int = 1) -> pd.DataFrame:
    """Score every frame (in ``workers`` processes when > 1) and return the sorted per-frame table.

    Prints the mean and minimum seconds per frame (all methods and protocols) to stderr.
    """
    _check(settings)
    if workers > 1:
        # spawn, not fork: forking a process that already runs GNU OpenMP (numba, open3d) aborts.
        # One thread per worker process (k-d tree queries, Embree, Numba): N workers use N cores.
        with _single_threaded_children(), ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(tqdm(pool.map(_frame_rows, frames, [settings] * len(frames)),
                                total=len(frames), desc="evaluate", unit="frame"))
    else:
        results = [_frame_rows(ref, settings) for ref in tqdm(frames, desc="evaluate", unit="frame")]
    seconds = [s for _, s in results]
    if seconds:
        print(f"benchmark.evaluate: {len(seconds)} frames × {len(settings.methods)} methods × "
              f"{len(settings.rules)} protocols; seconds per frame mean {np.mean(seconds):.2f}, "
              f"min {np.min(seconds):.2f}", file=sys.stderr)
    table = pd.DataFrame([row for rows, _ in results for row in rows])
    return table.sort_values(list(ID_COLUMNS), kind="stable").reset_index(drop=True)


@contextlib.contextmanager
def _single_threaded_children():
    """Processes started inside the block run their OpenMP and Numba code on one thread each (the
    variables are read when a child starts; this process's own thread pools are not changed)."""
    names = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: "1" for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check(settings: Settings) -> None:
    try:
        names = [rule.name for rule in settings.rules]
    except ValueError as err:
        raise ValueError(f"benchmark.evaluate: {err}") from None
    if len(set(names)) != len(names):
        raise ValueError(f"benchmark.evaluate: protocol names repeat ({names}); give each its own name.")
    for name, folder in settings.methods.items():
        check_name(name, "benchmark.evaluate: method name", where="--method")  # a folder of OUT/meshes
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
    F1 histogram; all under ``settings.out / "figures"``. With ``save_meshes == "figures"`` the meshes
    derived from those frames' grids or depth maps are also written (``mesh_path``). Returns the
    written paths."""
    out = settings.out / "figures"
    rule = settings.rules[0]
    written = []
    for method in settings.methods:
        rows = table[(table["method"] == method) & (table["protocol"] == rule.name)
                     & ~table["prediction"].isin(["missing", "unreadable"])]
        have = set(zip(rows["dataset"], rows["scene_id"], rows["frame_index"]))
        chosen = [r for r in frames if (r.dataset, r.scene_id, r.frame_index) in have][:k]
        for ref in chosen:
            frame = read_test_frame(ref)
            verts, faces, kind = load_prediction(settings.methods[method], frame)
            verts, faces, _ = drop_nonfinite(verts, faces)
            if kind != "mesh" and settings.save_meshes == "figures":
                path = mesh_path(settings.out, method, ref)
                write_ply(path, verts, faces)
                written.append(path)
            scope = fit_and_delineate(verts, faces, frame.gt_vertices, frame.gt_faces,
                                      frame.rendered_depth.astype(np.float64),
                                      intrinsics=frame.intrinsics,
                                      camera_to_world=frame.camera_to_world, protocol=rule,
                                      amodal_depth=frame.amodal_depth, pred_depth=_depth(method, frame, settings))
            shown = verts if scope.fit_vertices is None else scope.fit_vertices
            name = f"{method}_{ref.dataset}_{ref.scene_id}_{ref.frame_index:06d}.png"
            written.append(frame_figure(
                frame.image, shown, faces[scope.keep], frame.gt_vertices, scope.gt_faces,
                out / name, focal=float(frame.intrinsics[0]), threshold=rule.threshold,
                seed=settings.seed, title=f"{method} · {ref.scene_id} frame {ref.frame_index} · {rule.name}"))
    if "fit_f1" in table.columns and table["fit_f1"].notna().any():
        out.mkdir(parents=True, exist_ok=True)
        written.append(f1_histogram(table, out / "f1_histogram.png"))
    return written


def _pairs(values: Iterable[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise InputError(f"benchmark.evaluate: {what} must be NAME=PATH, got {value!r}.")
        out[name] = rest
    return out


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("python -m benchmark.evaluate", __doc__.split("\n")[0])
    parser.add_argument("--method", action="append", required=True, metavar="NAME=DIR",
                        help="a prediction folder (repeat for several methods)")
    parser.add_argument("--manifest", action="append", required=True, metavar="DATASET=PATH",
                        help="merged test manifest of a dataset (scannet, matterport)")
    parser.add_argument("--root", action="append", required=True, metavar="DATASET=PATH",
                        help="raw dataset root of a dataset (for the ground-truth mesh)")
    parser.add_argument("--protocols", nargs="+", default=["dgs-release", "dgs-paper"], metavar="NAME|JSON",
                        help="protocol names (benchmark.protocols.NAMES) or inline parameter sets as JSON "
                             "objects {\"name\": ..., \"base\": ..., <field>: ...}")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (frames in parallel)")
    parser.add_argument("--figures", type=int, default=0, metavar="K",
                        help="Fig. 5-style renders of the first K frames per method")
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    parser.add_argument("--samples", type=int, default=defaults["n_samples"],
                        help="points sampled per mesh, replacing each sampling protocol's own (200k)")
    parser.add_argument("--seed", type=int, default=defaults["seed"], help="surface-sampling seed")
    parser.add_argument("--save-meshes", choices=SAVE_MESHES, default=defaults["save_meshes"],
                        help="write the meshes derived from grids/depth maps as PLY under OUT/meshes: none, "
                             "those of the figure frames, or all")
    parser.add_argument("--depth-source", choices=DEPTH_SOURCES, default=defaults["depth_source"],
                        help="trace: use the sphere-traced depth a grid file holds (SDF models), else render "
                             "the mesh")
    args = parser.parse_args(argv)
    manifests, roots = _pairs(args.manifest, "--manifest"), _pairs(args.root, "--root")
    missing = sorted(set(manifests) - set(roots))
    if missing:
        parser.error(f"no --root for dataset(s) {missing}; give --root DATASET=PATH for each manifest")
    try:
        protocols = tuple(parse_cli(p) for p in args.protocols)
        settings = Settings({k: Path(v) for k, v in _pairs(args.method, "--method").items()},
                            protocols, args.out, args.samples, args.seed, save_meshes=args.save_meshes,
                            depth_source=args.depth_source)
        _check(settings)
    except ValueError as err:
        parser.error(str(err))
    frames = [ref for dataset, path in manifests.items()
              for ref in list_test_frames(path, dataset, roots[dataset])]
    table = evaluate(frames, settings, args.workers)
    print(write_csv(table, args.out / "per_frame.csv"))
    if args.figures > 0:
        for path in write_figures(table, frames, settings, args.figures):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m benchmark.evaluate"))
