"""Inference benchmark: seconds per test frame for the 128³ evaluation grid on CPU.

Runs :func:`dgs_core.infer.predict_grid` on prepared test frames (default: the demo ScanNet test
split, 256×192) with randomly initialised weights (the cost does not depend on their values) for
two model sizes: ``tiny`` (:meth:`ModelConfig.tiny`, the test model) and ``release`` (five
256-channel maps, 5 blocks × 512 hidden, SPEC §3). Each frame's grid box comes from its ground-truth
visible mesh, as in the evaluation, so the share of cells inside the frustum (the cells that are
actually queried) is the real one. The time per frame covers encoding the image and querying every
in-frustum cell; reading the shard and the scene mesh is timed separately. The tiny model runs
``--frames`` frames, ``--repeats`` times each, round-robin, and reports the minimum per frame (robust
to other users of a shared machine); the release model runs ``--release-frames`` frames once.
Needs the prepared test split and its raw scenes (``make demo`` writes both); without them it says
so and exits with status 2. There is no reference implementation here: the figure is a cost.

    python benchmarks/bench_infer.py [--frames 3] [--release-frames 1] [--threads 2] [--json out.json]
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
    return float(frustum_mask(origin, cell, resolution, normalised_intrinsics(*frame["intrinsics"], width, height)).mean())


def time_frame(net: torch.nn.Module, frame: dict, args: argparse.Namespace) -> tuple[float, float]:
    """(wall seconds, process CPU seconds summed over threads) of one frame's grid."""
    from dgs_core.infer import predict_grid

    wall, cpu = time.perf_counter(), time.process_time()
    predict_grid(net, frame["image"], frame["intrinsics"], *frame["box"], args.resolution,
                 batch_points=args.batch_points)
    return time.perf_counter() - wall, time.process_time() - cpu


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
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    common.require_inputs("bench_infer", {"prepared test manifest": args.manifest, "dataset root": args.root},
                          "Run `make demo` first (it generates and prepares the demo scenes) or pass "
                          "--manifest, --dataset and --root.")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    frames, load_s = load_frames(args.manifest, args.dataset, args.root, max(args.frames, args.release_frames))
    fractions = [queried_fraction(f, args.resolution) for f in frames]
    result = {"resolution": args.resolution, "threads": args.threads, "batch_points": args.batch_points,
              "frames": [f["name"] for f in frames], "image": list(frames[0]["image"].shape[1:]),
              "queried_fraction": fractions, "load_s_per_frame": load_s}
    tiny = DGSNet(ModelConfig.tiny()).eval()
    time_frame(tiny, frames[0], args)  # warm-up (allocator, first-call dispatch)
    times = np.full((args.repeats, args.frames, 2), np.inf)
    for r in range(args.repeats):
        for i in range(args.frames):
            times[r, i] = time_frame(tiny, frames[i], args)
    result["tiny_s_per_frame"], result["tiny_cpu_s_per_frame"] = times.min(axis=0).T.tolist()
    if args.release_frames:
        release = DGSNet(ModelConfig()).eval()
        timed = [time_frame(release, f, args) for f in frames[:args.release_frames]]
        result["release_s_per_frame"], result["release_cpu_s_per_frame"] = map(list, zip(*timed))
    print(f"grid {args.resolution}³, {args.threads} threads, image {result['image'][1]}×{result['image'][0]}; "
          f"cells queried (in frustum): {', '.join(f'{x:.0%}' for x in fractions)}")
    print(f"load (shard row + GT visible mesh): {load_s:.3f} s/frame")
    for model in ("tiny", "release")[:1 + bool(args.release_frames)]:
        wall, cpu = result[f"{model}_s_per_frame"], result[f"{model}_cpu_s_per_frame"]
        print(f"{model:7s} model: {', '.join(f'{t:.1f}' for t in wall)} s/frame wall, "
              f"{', '.join(f'{t:.1f}' for t in cpu)} CPU s/frame"
              + (f" (min of {args.repeats})" if model == "tiny" else ""))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
