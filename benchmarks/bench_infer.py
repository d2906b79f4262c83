"""Inference benchmark: seconds and decoder queries per test frame for the evaluation grid on CPU.

Runs :func:`dgs_core.infer.predict_grid` on prepared test frames (default: the demo's ScanNet test
split) for two model sizes: ``tiny`` (the demo's trained checkpoint with ``--checkpoint``, else
:meth:`ModelConfig.tiny` with random weights) and ``release`` (five 256-channel maps, 5 blocks ×
512 hidden, SPEC §3, random weights: its cost does not depend on their values). Each frame's grid
box comes from its ground-truth visible mesh, as in the evaluation, so the share of cells inside the
frustum (the cells a dense grid queries) is the real one. The time per frame covers encoding the
image and querying the grid; reading the shard and the scene mesh is timed separately.

The tiny model runs both grids (``dense``: every in-frustum cell; ``coarse_to_fine``:
:mod:`dgs_core.grid_refine`) on ``--frames`` frames, ``--repeats`` times each, round-robin, and
reports the minimum per frame (robust to other users of a shared machine), the decoder queries of
each grid and the grid points whose occupancy side of the 0.5 level differs between the two (what
marching cubes would see differently; 0 = the same mesh). A trained field matters here: random
weights give a field with almost no surface, which coarse to fine skips trivially. The release
model runs ``--release-frames`` frames once, dense. Needs the prepared test split and its raw scenes
(``make demo`` writes both); without them it says so and exits with status 2. There is no reference
implementation: the figures are costs.

    python benchmarks/bench_infer.py [--checkpoint data/prepared/models/dgs/final.pt] [--frames 3]
        [--release-frames 1] [--threads 2] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

if __package__:  # python -m benchmarks.bench_infer, or imported by a test
    from . import common
else:  # python benchmarks/bench_infer.py: this folder is sys.path[0]
    import common


def load_frames(manifest: Path, dataset: str, root: Path, n: int) -> tuple[list[dict], float]:
    """The first ``n`` ok frames: image, pixel intrinsics and GT visible-mesh box; and the seconds taken."""
    from pipeline.testset import list_test_frames, read_test_frame

    start = time.perf_counter()
    frames = []
    for ref in list_test_frames(manifest, dataset, root)[:n]:
        frame = read_test_frame(ref)
        frames.append({"name": ref.name, "image": frame.image, "intrinsics": frame.intrinsics,
                       "box": frame.gt_box()})
    return frames, (time.perf_counter() - start) / max(len(frames), 1)


def queried_fraction(frame: dict, resolution: int) -> float:
    """Share of the grid's cells inside the frustum (the cells the network sees)."""
    from dgs_core.camera import normalised_intrinsics
    from dgs_core.infer import frustum_mask, grid_geometry

    origin, cell = grid_geometry(*frame["box"], resolution)
    height, width = frame["image"].shape[1:]
    inside = frustum_mask(origin, cell, resolution, normalised_intrinsics(*frame["intrinsics"], width, height))
    return float(inside.mean())


def time_frame(net: torch.nn.Module, frame: dict, args: argparse.Namespace, grid: str = "dense"
               ) -> tuple[float, float, int, np.ndarray]:
    """(wall seconds, process CPU seconds summed over threads, decoder queries, (R, R, R) values) of
    one frame's grid."""
    from dgs_core.grid_refine import RefineStats
    from dgs_core.infer import predict_grid

    stats = RefineStats()
    wall, cpu = time.perf_counter(), time.process_time()
    values, _, _ = predict_grid(net, frame["image"], frame["intrinsics"], *frame["box"], args.resolution,
                                batch_points=args.batch_points, grid=grid, stats=stats)
    return time.perf_counter() - wall, time.process_time() - cpu, stats.queries, values


def main(argv: list[str] | None = None) -> int:
    from dgs_core.model import DGSNet, ModelConfig

    p = argparse.ArgumentParser(prog="python benchmarks/bench_infer.py", description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, default=Path("data/prepared/scannet/test/manifest.parquet"))
    p.add_argument("--dataset", default="scannet", help="the manifest's dataset")
    p.add_argument("--root", type=Path, default=Path("data/synthetic/scannet"), help="the dataset root")
    p.add_argument("--frames", type=int, default=3, help="frames for the tiny model")
    p.add_argument("--repeats", type=int, default=3, help="timed passes over the tiny model's frames")
    p.add_argument("--release-frames", type=int, default=1, help="frames for the release model (0 = skip)")
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--batch-points", type=int, default=1 << 15)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="the tiny model's weights (e.g. data/prepared/models/dgs/final.pt); default random")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    common.require_inputs("bench_infer", {"prepared test manifest": args.manifest, "dataset root": args.root,
                                         **({"checkpoint": args.checkpoint} if args.checkpoint else {})},
                          "Run `make demo` first (it generates and prepares the demo scenes) or pass "
                          "--manifest, --dataset and --root.")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    frames, load_s = load_frames(args.manifest, args.dataset, args.root, max(args.frames, args.release_frames))
    fractions = [queried_fraction(f, args.resolution) for f in frames]
    result = {"resolution": args.resolution, "threads": args.threads, "batch_points": args.batch_points,
              "frames": [f["name"] for f in frames], "image": list(frames[0]["image"].shape[1:]),
              "queried_fraction": fractions, "load_s_per_frame": load_s}
    if args.checkpoint:
        from dgs_core.checkpoint import load_model

        tiny, _ = load_model(args.checkpoint)
    else:
        tiny = DGSNet(ModelConfig.tiny()).eval()
    result["tiny_weights"] = str(args.checkpoint) if args.checkpoint else "random"
    time_frame(tiny, frames[0], args)  # warm-up (allocator, first-call dispatch)
    grids = ("dense", "coarse_to_fine")
    times = np.full((len(grids), args.repeats, args.frames, 2), np.inf)
    queries = np.zeros((len(grids), args.frames), np.int64)
    sides_differ = np.zeros(args.frames, np.int64)
    for r in range(args.repeats):
        for i in range(args.frames):
            values = []
            for g, grid in enumerate(grids):
                *times[g, r, i], queries[g, i], v = time_frame(tiny, frames[i], args, grid)
                values.append(v >= 0.5)
            sides_differ[i] = int((values[0] != values[1]).sum())
    for g, grid in enumerate(grids):
        result[f"tiny_{grid}_s_per_frame"], result[f"tiny_{grid}_cpu_s_per_frame"] = times[g].min(axis=0).T.tolist()
        result[f"tiny_{grid}_queries"] = queries[g].tolist()
    result["tiny_sides_differ"] = sides_differ.tolist()
    if args.release_frames:
        release = DGSNet(ModelConfig()).eval()
        timed = [time_frame(release, f, args)[:2] for f in frames[:args.release_frames]]
        result["release_s_per_frame"], result["release_cpu_s_per_frame"] = map(list, zip(*timed))
    print(f"grid {args.resolution}³, {args.threads} threads, image {result['image'][1]}×{result['image'][0]}; "
          f"cells queried (in frustum): {', '.join(f'{x:.0%}' for x in fractions)}")
    print(f"load (shard row + GT visible mesh): {load_s:.3f} s/frame")
    print(f"tiny model ({result['tiny_weights']} weights), min of {args.repeats}:")
    print("| grid | s/frame wall | CPU s/frame | decoder queries/frame |\n| --- | --- | --- | --- |")
    for grid in grids:
        wall, cpu, n = (result[f"tiny_{grid}_{k}"] for k in ("s_per_frame", "cpu_s_per_frame", "queries"))
        print(f"| {grid} | {np.median(wall):.2f} (min {min(wall):.2f}) | {np.median(cpu):.2f} | {np.median(n):,.0f} |")
    speed = np.median(np.divide(result["tiny_dense_s_per_frame"], result["tiny_coarse_to_fine_s_per_frame"]))
    fewer = np.median(queries[0] / np.maximum(queries[1], 1))
    print(f"coarse to fine: {fewer:.1f}× fewer queries, {speed:.1f}× faster (medians over frames); grid points "
          f"on the other side of 0.5 than dense: {', '.join(str(x) for x in sides_differ)}")
    if args.release_frames:
        wall, cpu = result["release_s_per_frame"], result["release_cpu_s_per_frame"]
        print(f"release model (dense): {', '.join(f'{t:.1f}' for t in wall)} s/frame wall, "
              f"{', '.join(f'{t:.1f}' for t in cpu)} CPU s/frame")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
