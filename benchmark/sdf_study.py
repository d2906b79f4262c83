"""The miniature SDF study: validation accuracy against training wall time, per experiment × seed.

Compares experiments that differ in the field (occupancy, Eq. 1, vs SDF, Eq. 2), the point embedding
(positional vs Fourier) and the learning-rate schedule (constant vs one-cycle) by the one metric
they share: near-surface accuracy on the val frames (``val/accuracy``: a point is predicted occupied
when o > 0.5, or s < 0 for an SDF, and compared with its label). Inputs are the training run folders
``<runs>/<experiment>-s<seed>/`` (``scalars.csv``, ``config.yaml``) that the workflow's ``sdf_study``
target trains; nothing from the training code is imported.

Wall time is steps × a step time (validation excluded): by default the run's own median step time
(as :func:`benchmark.ablation.training_curves`: robust to load spikes), or, with ``--step-seconds``,
each experiment's step time measured round-robin in one process (``benchmarks/bench_study_step.py``):
runs that train one after another on a shared machine see different loads, which a run's own median
would count as a difference between experiments.

Outputs (``--out``): ``sdf_study.csv`` / ``sdf_study.md`` — per experiment, mean ± std over seeds of
the val accuracy at 25 / 50 / 100 % of the baseline's mean training time (the last validation at or
before that time), the final and best val accuracy, the seconds until the val accuracy first reaches
the baseline's final mean (and in how many seeds it does), the median step time and the total
time; and ``val_curves.png`` (val accuracy vs wall seconds, mean over seeds, band = min..max).

    dgs sdf-study --runs data/sdf-study/models --names dgs-s0 sdf-s0 ... --baseline dgs --out DIR
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.ablation import read_scalars, split_run, training_curves
from benchmark.report import save_figure
from pipeline.atomic import atomic_path, write_text_atomic
from pipeline.cli import command_parser
from pipeline.errors import InputError, run_main

FRACTIONS = (0.25, 0.5, 1.0)
"""Wall-time budgets, as fractions of the baseline's mean training time."""


def validation_curves(runs: Path, names: list[str], step_seconds: dict[str, float] | None = None) -> pd.DataFrame:
    """Per run and validation step: ``accuracy`` (%) and the training wall ``seconds`` at that step,
    from ``step_seconds[experiment]`` when given, else from the run's own median step time."""
    curves = training_curves(runs, names)
    per_step = {(e, s): g.seconds.max() / g.step.max() for (e, s), g in curves.groupby(["experiment", "seed"])}
    if step_seconds is not None:
        missing = sorted({e for e, _ in per_step} - set(step_seconds))
        if missing:
            raise ValueError(f"sdf_study: no step time for experiment(s) {missing} in the --step-seconds file")
        per_step = {(e, s): float(step_seconds[e]) for e, s in per_step}
    frames = []
    for name in names:
        long = read_scalars(runs, name)
        val = long[long.tag == "val/accuracy"].sort_values("step")
        experiment, seed = split_run(name)
        frames.append(pd.DataFrame({"experiment": experiment, "seed": seed, "step": val.step.to_numpy(),
                                    "accuracy": val.value.to_numpy() * 100,
                                    "seconds": val.step.to_numpy() * per_step[(experiment, seed)]}))
    return pd.concat(frames, ignore_index=True)


def _at(run: pd.DataFrame, seconds: float) -> float:
    """The run's val accuracy at the last validation at or before ``seconds`` (NaN if none)."""
    before = run[run.seconds <= seconds * (1 + 1e-9)]
    return float(before.accuracy.iloc[-1]) if len(before) else np.nan


def study_table(curves: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """One row per experiment (module docstring); per-seed values first, then mean/std over seeds."""
    if baseline not in set(curves.experiment):
        raise ValueError(f"sdf_study: baseline experiment {baseline!r} has no runs; "
                         f"found {sorted(set(curves.experiment))}")
    total = curves.groupby(["experiment", "seed"]).seconds.max()
    final = curves.sort_values("step").groupby(["experiment", "seed"]).accuracy.last()
    budget = total.loc[baseline].mean()
    target = final.loc[baseline].mean()
    rows = []
    for (experiment, seed), run in curves.sort_values("step").groupby(["experiment", "seed"]):
        reached = run[run.accuracy >= target]
        row = {"experiment": experiment, "seed": seed, "final": final[(experiment, seed)],
               "best": run.accuracy.max(), "seconds": total[(experiment, seed)],
               "to_target": float(reached.seconds.iloc[0]) if len(reached) else np.nan,
               "step_seconds": total[(experiment, seed)] / run.step.max()}
        row.update({f"at_{int(f * 100)}": _at(run, f * budget) for f in FRACTIONS})
        rows.append(row)
    per_seed = pd.DataFrame(rows).set_index(["experiment", "seed"])
    out = per_seed.groupby("experiment").agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["seeds"] = per_seed.groupby("experiment").size()
    out["reached"] = per_seed.groupby("experiment").to_target.count()
    out.attrs.update(budget=budget, target=target)
    return out.sort_values("final_mean", ascending=False)


def to_markdown(table: pd.DataFrame) -> str:
    """The table with ``mean ± std`` cells: accuracies in %, times in seconds."""
    def pm(col: str, digits: int = 1) -> pd.Series:
        return table[f"{col}_mean"].map(f"{{:.{digits}f}}".format) + " ± " + table[f"{col}_std"].map(
            f"{{:.{digits}f}}".format)

    budget, target = table.attrs["budget"], table.attrs["target"]
    columns = {f"val acc. at {f * budget:.0f} s [%]": pm(f"at_{int(f * 100)}") for f in FRACTIONS}
    columns.update({"final val acc. [%]": pm("final"), "best [%]": pm("best"),
                    f"s to {target:.1f} %": pm("to_target", 0).where(table.reached > 0, "never") + table.apply(
                        lambda r: f" ({int(r.reached)}/{int(r.seeds)})", axis=1),
                    "step [s]": pm("step_seconds", 3), "train [s]": pm("seconds", 0), "seeds": table.seeds})
    return pd.DataFrame(columns, index=table.index).reset_index().to_markdown(index=False)


def plot_curves(curves: pd.DataFrame, path: Path) -> Path:
    """Val accuracy vs training wall seconds per experiment: mean over seeds, band = min..max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for experiment, runs in curves.groupby("experiment"):
        by_step = runs.groupby("step")
        seconds = by_step.seconds.mean()
        (line,) = ax.plot(seconds.values, by_step.accuracy.mean().values, label=str(experiment), marker=".")
        ax.fill_between(seconds.values, by_step.accuracy.min().values, by_step.accuracy.max().values,
                        color=line.get_color(), alpha=0.2)
    ax.set_xlabel("training wall time [s] (steps × step time)")
    ax.set_ylabel("val near-surface accuracy [%]")
    ax.legend()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("python -m benchmark.sdf_study", __doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="folder holding the <experiment>-s<seed> run folders")
    parser.add_argument("--names", nargs="+", required=True, help="run names <experiment>-s<seed>")
    parser.add_argument("--baseline", required=True, help="the experiment the budgets and the target come from")
    parser.add_argument("--step-seconds", type=Path, default=None,
                        help="JSON {experiment: seconds per step} (benchmarks/bench_study_step.py); default: each "
                             "run's own median")
    parser.add_argument("--out", type=Path, required=True, help="folder for sdf_study.{csv,md} and val_curves.png")
    args = parser.parse_args(argv)
    try:
        step_seconds = json.loads(args.step_seconds.read_text()) if args.step_seconds else None
        curves = validation_curves(args.runs, args.names, step_seconds)
        table = study_table(curves, args.baseline)
    except (FileNotFoundError, ValueError) as err:
        raise InputError(str(err)) from None
    args.out.mkdir(parents=True, exist_ok=True)
    csv, md, png = (args.out / name for name in ("sdf_study.csv", "sdf_study.md", "val_curves.png"))
    with atomic_path(csv) as tmp:
        table.to_csv(tmp)
    write_text_atomic(md, to_markdown(table) + "\n")
    print(csv, md, plot_curves(curves, png), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m benchmark.sdf_study"))
