"""Seconds per training step of each experiment of the miniature SDF study, round-robin in one process.

The study (``benchmark.sdf_study``) plots validation accuracy against wall time = steps × step time.
Its runs train one after another, so a run's own median step time also measures how busy a shared
machine was while it ran. This script times one step of every experiment on the same batch of
prepared train frames, the experiments taking turns (round-robin, as ``bench_train_step``), and
reports the median per experiment: step times that differ only by what the experiments compute.
One step = encode + the experiment's loss + backward + Adam update (``dgs_core.train.train_step``).
There is no reference implementation here: the figure is a cost. Without the prepared train
manifest it says so and exits with status 2.

    python benchmarks/bench_study_step.py --manifest data/sdf-study/scannet/train/manifest.parquet \\
        --overlay tiny sdf_study --experiments dgs sdf fourier one_cycle sdf_fourier_one_cycle [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

if __package__:  # python -m benchmarks.bench_study_step, or imported by a test
    from . import common
else:  # python benchmarks/bench_study_step.py: this folder is sys.path[0]
    import common

EXPERIMENTS = Path(__file__).resolve().parents[1] / "config" / "experiments"


def setup(name: str, overlay: list[str], manifest: Path):
    """The experiment's loss module, optimiser and one batch of ``optim.batch_size`` train frames."""
    from dgs_core.data import ShardDataset, collate, to_device
    from dgs_core.distributed import Rank
    from dgs_core.experiment import load_experiment
    from dgs_core.train import build, surface_purpose

    exp = load_experiment([EXPERIMENTS / f"{n}.yaml" for n in (*overlay, name)])
    _, module, opt, _ = build(exp, torch.device("cpu"), Rank())
    data = ShardDataset(manifest, exp.data, seed=exp.optim.seed, surface=surface_purpose(exp))
    batch = to_device(collate([data[i % len(data)] for i in range(exp.optim.batch_size)]), "cpu",
                      exp.model.input_norm)
    return exp, module, opt, batch


def main(argv: list[str] | None = None) -> int:
    from dgs_core.train import train_step

    p = argparse.ArgumentParser(prog="python benchmarks/bench_study_step.py", description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, default=Path("data/sdf-study/scannet/train/manifest.parquet"))
    p.add_argument("--overlay", nargs="+", default=["tiny", "sdf_study"], help="experiment files applied first")
    p.add_argument("--experiments", nargs="+", default=["dgs", "sdf", "fourier", "one_cycle", "sdf_fourier_one_cycle"])
    p.add_argument("--steps", type=int, default=10, help="timed rounds (one step of every experiment each)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--json", type=Path, default=None, help="also write {experiment: seconds per step} here")
    args = p.parse_args(argv)
    common.require_inputs("bench_study_step", {"train manifest": args.manifest},
                          "prepare the study's data first: snakemake --cores 2 prepare_scannet "
                          "--configfile config/sdf_study.yaml")
    torch.set_num_threads(args.threads)
    runs = {name: setup(name, args.overlay, args.manifest) for name in args.experiments}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(args.steps + 1):  # round 0 warms up
        for name, (exp, module, opt, batch) in runs.items():
            start = time.perf_counter()
            train_step(module, opt, None, batch, exp, None)
            if round_:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"{'experiment':24} {'s/step (median)':>16} {'min':>8} {'max':>8}")
    for name, t in times.items():
        print(f"{name:24} {medians[name]:>16.3f} {min(t):>8.3f} {max(t):>8.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(medians, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
