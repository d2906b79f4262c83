"""Evaluation cost per stage: one frame × method × protocol, before and after the reuse, same run.

    python benchmarks/bench_evaluate.py [--frames 10] [--protocols dgs-release dgs-paper] [--json out.json]

Scores the demo's own predictions (``make demo`` writes them: the ScanNet test frames of
``data/prepared`` and the tiny model's grids in ``data/prepared/predictions/dgs``) with
:func:`benchmark.evaluate.evaluate` in this process, twice, under ``cProfile``:

- **before**: every (method, protocol) from scratch (``Settings(reuse=False)``), every derived
  mesh written as PLY (``save_meshes="all"``), and scipy's ``cKDTree`` for the nearest neighbours —
  the evaluation as it was before the reuse and pykdtree;
- **after**: the defaults (the ground truth's point sets and k-d trees shared across methods and
  protocols, a prediction's render and point sets across protocols, pykdtree, only the figure
  frames' meshes written — none here, as no figures are drawn).

The per-frame tables of the two runs are compared (they must be equal, every metric to 1e-9; with
different nearest-neighbour back ends equal distances are expected bit for bit, see
benchmarks/bench_metrics.py). Each stage's seconds are the cumulative time of its functions in the
profile, divided by frames × methods × protocols; "all-in" is the wall time of ``evaluate``.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import time
from pathlib import Path

import numpy as np

if __package__:  # python -m benchmarks.bench_evaluate, or imported by a test
    from . import common
else:  # python benchmarks/bench_evaluate.py: this folder is sys.path[0]
    import common

# stage -> functions (file suffix, function name) whose cumulative time it is
STAGES = {
    "read frame + GT mesh": [("pipeline/testset.py", "read_test_frame")],
    "load prediction (marching cubes)": [("benchmark/predictions.py", "load_prediction")],
    "render prediction": [("benchmark/render.py", "render_depth")],
    "delineate": [("benchmark/protocols.py", "delineate")],
    "sample surfaces": [("benchmark/sampling.py", "sample_surface"), ("benchmark/sampling.py", "mesh_vertices")],
    "nearest neighbours": [("benchmark/nearest.py", "__init__"), ("benchmark/nearest.py", "distances")],
    "write meshes": [("pipeline/formats/ply.py", "write_ply")],
}


def stage_seconds(profile: cProfile.Profile) -> dict[str, float]:
    """Cumulative seconds per :data:`STAGES` entry in a finished profile (nested calls counted once:
    only a stage's outermost functions are summed)."""
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    out = {}
    for stage, functions in STAGES.items():
        total = 0.0
        for (file, _, name), (_, _, _, cumulative, callers) in stats.items():
            if any(file.endswith(suffix) and name == fn for suffix, fn in functions):
                # a recursive or same-stage caller already counts this time
                if not any(c[0].endswith(s) and c[2] == f for c in callers for s, f in functions):
                    total += cumulative
        out[stage] = total
    return out


def run(frames, methods: dict[str, Path], protocols: tuple[str, ...], out: Path, *, before: bool) -> dict:
    """Score ``frames`` once (the "before" or the "after" way); seconds per stage and the table."""
    import benchmark.scoring as scoring
    from benchmark.evaluate import Settings, evaluate
    from benchmark.nearest import NearestIndex

    settings = Settings(methods, protocols, out, reuse=not before, save_meshes="all" if before else "none")
    original = scoring.NearestIndex
    if before:  # the former back end: scipy's cKDTree, in the same code path
        scoring.NearestIndex = lambda ref: NearestIndex(ref, "kdtree")
    profile = cProfile.Profile()
    try:
        start = time.perf_counter()
        profile.enable()
        table = evaluate(frames, settings)
        profile.disable()
        wall = time.perf_counter() - start
    finally:
        scoring.NearestIndex = original
    units = len(frames) * len(methods) * len(protocols)
    stages = {k: v / units for k, v in stage_seconds(profile).items()}
    stages["all-in"] = wall / units
    return {"stages": stages, "table": table}


def main(argv: list[str] | None = None) -> int:
    from pipeline.testset import list_test_frames

    p = argparse.ArgumentParser(prog="python benchmarks/bench_evaluate.py", description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, default=Path("data/prepared/scannet/test/manifest.parquet"))
    p.add_argument("--dataset", default="scannet", help="the manifest's dataset")
    p.add_argument("--root", type=Path, default=Path("data/synthetic/scannet"), help="the dataset root")
    p.add_argument("--predictions", type=Path, default=Path("data/prepared/predictions/dgs"),
                   help="a method folder (the demo's tiny model)")
    p.add_argument("--frames", type=int, default=10, help="test frames scored")
    p.add_argument("--protocols", nargs="+", default=["dgs-release", "dgs-paper"])
    p.add_argument("--out", type=Path, default=Path("data/bench_evaluate"), help="scratch output folder")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    common.require_inputs("bench_evaluate", {"test manifest": args.manifest, "dataset root": args.root,
                                             "predictions": args.predictions},
                          "Run `make demo` first, or point --manifest/--root/--predictions elsewhere.")
    frames = list_test_frames(args.manifest, args.dataset, args.root)[:args.frames]
    methods = {"dgs": args.predictions}
    result = {name: run(frames, methods, tuple(args.protocols), args.out / name, before=name == "before")
              for name in ("before", "after")}
    metrics = [c for c in result["before"]["table"].columns
               if c.startswith(("metric_", "fit_")) and result["before"]["table"][c].dtype.kind == "f"]
    worst = float(np.nanmax(np.abs(result["before"]["table"][metrics].to_numpy(float)
                                   - result["after"]["table"][metrics].to_numpy(float)), initial=0.0))
    print(f"{len(frames)} frames × {len(methods)} method × {len(args.protocols)} protocols "
          f"({', '.join(args.protocols)}); seconds per frame × method × protocol")
    print(f"{'stage':<34}{'before':>10}{'after':>10}{'ratio':>8}")
    for stage in result["before"]["stages"]:
        b, a = result["before"]["stages"][stage], result["after"]["stages"][stage]
        print(f"{stage:<34}{b:>10.3f}{a:>10.3f}{(b / a if a > 0 else float('inf')):>7.1f}x")
    print(f"largest metric difference between the two runs: {worst:.2e}")
    if args.json:
        args.json.write_text(json.dumps({k: v["stages"] for k, v in result.items()} | {"max_diff": worst},
                                        indent=2) + "\n")
    return 0 if worst <= 1e-9 else 1


if __name__ == "__main__":
    raise SystemExit(main())
