"""The miniature ablation (paper Tab. 1/6): gradient modes × seeds → one table and the loss curves.

Inputs are what the workflow's ``ablation`` target produces: one per-frame CSV scored by
:mod:`benchmark.evaluate` whose methods are named ``<experiment>-s<seed>``, and the training run
folders ``<runs>/<experiment>-s<seed>/`` holding ``scalars.csv`` (long format ``step,tag,value``,
written by the trainer). Nothing from the training code is imported: the logs are plain CSV.

Outputs (``--out``):
- ``ablation.csv`` / ``ablation.md``: per experiment, F1 and Chamfer (fit variant, one protocol) as
  the mean ± standard deviation over seeds of the per-seed means with a 95 % bootstrap interval over
  seeds × scenes (:mod:`benchmark.bootstrap`, the report's code: scenes and their frames resampled,
  seeds resampled per experiment), the paired difference to a reference experiment with its
  interval, the per-seed F1 values, the final training loss and BCE, the last validation BCE and
  accuracy, and the training wall time (steps × median logged step time); under the table, in words,
  which differences the intervals resolve.
- ``loss_curves.png``: training loss against step and against wall-clock seconds, per experiment
  (mean over seeds, band = min..max), smoothed with a running mean.

    python -m benchmark.ablation PER_FRAME.csv --runs data/prepared/models --out data/prepared/ablation
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import bootstrap
from benchmark.aggregate import DEFAULT_BOOT, SCALE
from benchmark.protocols import ALIASES
from benchmark.report import save_figure
from pipeline.atomic import atomic_path, write_text_atomic
from pipeline.cli import command_parser
from pipeline.errors import InputError, run_main

RUN_NAME = re.compile(r"^(?P<experiment>.+)-s(?P<seed>\d+)$")


def run_identity(name: str) -> tuple[str, int]:
    """(experiment, seed) of a run folder name: ``"nograd-s1"`` → ``("nograd", 1)``, a name without the
    ``-s<seed>`` suffix (a workflow's main run, e.g. ``"dgs"``) → ``("dgs", 0)``."""
    m = RUN_NAME.match(name)
    return (m["experiment"], int(m["seed"])) if m else (name, 0)


def split_run(name: str) -> tuple[str, int]:
    """``"nograd-s1"`` → ``("nograd", 1)``; ValueError for a name without the ``-s<seed>`` suffix."""
    m = RUN_NAME.match(name)
    if m is None:
        raise ValueError(f"ablation: method {name!r} is not named <experiment>-s<seed>")
    return m["experiment"], int(m["seed"])


def read_scalars(runs: Path, name: str) -> pd.DataFrame:
    """The long ``step,tag,value`` log ``<runs>/<name>/scalars.csv``; FileNotFoundError naming it if absent."""
    path = runs / name / "scalars.csv"
    if not path.is_file():
        raise FileNotFoundError(f"ablation: {path} not found; train run {name} first (snakemake ablation)")
    return pd.read_csv(path)


def training_curves(runs: Path, names: list[str]) -> pd.DataFrame:
    """Per run and step: ``loss``, ``bce`` and wall ``seconds`` = step × the run's median step time.

    The step time is batch / logged samples/s. The median, not the sum, so that a load spike from
    another process on a shared machine, or the first step's warm-up, does not bend one mode's curve.

    Reads ``<runs>/<name>/scalars.csv`` (:func:`read_scalars`).
    """
    frames = []
    for name in names:
        long = read_scalars(runs, name)
        wide = long[long.tag.str.startswith("train/")].pivot_table(index="step", columns="tag", values="value")
        wide.columns = [c.split("/", 1)[1] for c in wide.columns]
        batch = _batch_size(runs / name)
        step_seconds = (batch / wide["samples_per_s"]).median() if "samples_per_s" in wide else np.nan
        experiment, seed = run_identity(name)
        frames.append(pd.DataFrame({"experiment": experiment, "seed": seed, "step": wide.index,
                                    "loss": wide["loss"].to_numpy(), "bce": wide.get("bce", wide["loss"]).to_numpy(),
                                    "seconds": wide.index.to_numpy() * step_seconds}))
    return pd.concat(frames, ignore_index=True)


def final_validation(runs: Path, names: list[str]) -> pd.DataFrame:
    """Per run: the last logged validation BCE and near-surface accuracy (``val/bce``, ``val/accuracy``;
    NaN when a run logged none), indexed by (experiment, seed)."""
    rows = []
    for name in names:
        long = read_scalars(runs, name)
        last = long[long.tag.isin(["val/bce", "val/accuracy"])].sort_values("step").groupby("tag").value.last()
        experiment, seed = split_run(name)
        rows.append({"experiment": experiment, "seed": seed, "val_bce": last.get("val/bce", np.nan),
                     "val_accuracy": last.get("val/accuracy", np.nan) * 100})
    return pd.DataFrame(rows).set_index(["experiment", "seed"])


def _batch_size(run: Path) -> int:
    """Global batch size recorded in the run's resolved ``config.yaml`` (1 when absent)."""
    import yaml

    path = run / "config.yaml"
    if not path.is_file():
        return 1
    return int((yaml.safe_load(path.read_text()) or {}).get("optim", {}).get("batch_size", 1))


SCORES = ("fit_f1", "fit_chamfer")


def seed_scene_intervals(rows: pd.DataFrame, reference: str, n_boot: int = DEFAULT_BOOT) -> pd.DataFrame:
    """Per experiment, 95 % intervals of the F1 and Chamfer means (×100) over seeds × scenes, and
    the difference to ``reference`` (``d_<score>``) with its interval.

    ``rows``: one protocol's per-frame rows with ``experiment``, ``seed``, ``dataset``, ``scene_id``,
    ``frame_index`` and the :data:`SCORES`. The frame draws are shared by all experiments (paired);
    seeds are drawn per experiment. Columns ``<score>_lo``, ``_hi``, ``d_<score>``, ``_lo``, ``_hi``.
    """
    keys = ["dataset", "scene_id", "frame_index"]
    frames = pd.MultiIndex.from_frame(rows[keys].drop_duplicates().sort_values(keys))
    scenes = [f"{d}/{s}" for d, s, _ in frames]
    weights = bootstrap.frame_weights(scenes, n_boot, bootstrap.block_rng(("ablation",)))
    means, replicates = {}, {}
    for experiment, exp_rows in rows.groupby("experiment", sort=True):
        values = np.stack([seed_rows.groupby(keys)[list(SCORES)].mean().reindex(frames).to_numpy(float)
                           for _, seed_rows in exp_rows.groupby("seed", sort=True)])
        seeds = bootstrap.seed_weights(len(values), n_boot, bootstrap.block_rng(("ablation", experiment)))
        replicates[experiment] = bootstrap.replicate_means(values, weights, seeds) * SCALE
        means[experiment] = np.nanmean(values, axis=(0, 1)) * SCALE
    out = {}
    for experiment in replicates:
        row = {}
        lo, hi = bootstrap.interval(replicates[experiment])
        if reference in replicates:
            d_lo, d_hi = bootstrap.interval(replicates[experiment] - replicates[reference])
        for m, score in enumerate(SCORES):
            row.update({f"{score}_lo": lo[m], f"{score}_hi": hi[m]})
            if reference in replicates:
                row.update({f"d_{score}": means[experiment][m] - means[reference][m],
                            f"d_{score}_lo": d_lo[m], f"d_{score}_hi": d_hi[m]})
        out[experiment] = row
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("experiment")


def ablation_table(per_frame: pd.DataFrame, curves: pd.DataFrame, protocol: str = "dgs-release",
                   tail: int = 20, validation: pd.DataFrame | None = None, reference: str = "dgs",
                   n_boot: int = DEFAULT_BOOT) -> pd.DataFrame:
    """One row per experiment: F1 / Chamfer (fit, ``protocol``) mean ± std over seeds with their
    seeds × scenes intervals and differences to ``reference`` (:func:`seed_scene_intervals`), the
    training summary (loss and BCE averaged over the last ``tail`` steps, wall seconds) and, when
    given, the final validation BCE and accuracy (:func:`final_validation`)."""
    name = ALIASES.get(protocol, protocol)
    rows = per_frame[per_frame.protocol.map(lambda p: ALIASES.get(p, p)) == name].copy()
    if rows.empty:
        raise ValueError(f"ablation: no per-frame row of protocol {name!r} (found {sorted(set(per_frame.protocol))})")
    rows[["experiment", "seed"]] = [split_run(m) for m in rows.method]
    per_seed = rows.groupby(["experiment", "seed"])[["fit_f1", "fit_chamfer"]].mean() * 100
    last = curves.sort_values("step").groupby(["experiment", "seed"]).tail(tail)
    train = last.groupby(["experiment", "seed"])[["loss", "bce"]].mean()
    train["seconds"] = curves.groupby(["experiment", "seed"]).seconds.max()
    per_seed = per_seed.join(train)
    if validation is not None:
        per_seed = per_seed.join(validation)
    out = per_seed.groupby("experiment").agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["seeds"] = per_seed.groupby("experiment").size()
    out["f1_per_seed"] = per_seed.groupby("experiment").fit_f1.apply(lambda s: " / ".join(f"{v:.1f}" for v in s))
    out = out.join(seed_scene_intervals(rows, reference, n_boot))
    out.attrs.update(reference=reference, protocol=name, n_boot=n_boot)
    return out.sort_values("fit_f1_mean", ascending=False)


def resolved_text(table: pd.DataFrame) -> str:
    """In words, which differences to the reference experiment the 95 % intervals resolve."""
    reference = table.attrs.get("reference", "the reference")
    if "d_fit_f1" not in table:
        return f"No difference computed: the reference experiment {reference!r} has no rows."
    found, open_ = [], []
    for experiment, row in table.drop(index=reference, errors="ignore").iterrows():
        for score, label, unit in (("fit_f1", "F1", "points"), ("fit_chamfer", "Chamfer", "cm")):
            text = f"{experiment} {label} {row[f'd_{score}']:+.1f} {unit} [{row[f'd_{score}_lo']:+.1f}, {row[f'd_{score}_hi']:+.1f}]"
            (found if bootstrap.resolved(row[f"d_{score}_lo"], row[f"d_{score}_hi"]) else open_).append(text)
    b = table.attrs.get("n_boot", "")
    return (f"Differences to {reference} ({table.attrs.get('protocol', '')}, fit; 95 % bootstrap intervals over "
            f"seeds × scenes, B = {b}). Resolved (the interval excludes 0): {'; '.join(found) or 'none'}. "
            f"Not resolved: {'; '.join(open_) or 'none'}.")


def to_markdown(table: pd.DataFrame) -> str:
    """The ablation table with ``mean ± std`` cells in paper units (%, cm)."""
    def pm(col: str, digits: int = 1) -> pd.Series:
        return table[f"{col}_mean"].map(f"{{:.{digits}f}}".format) + " ± " + table[f"{col}_std"].map(
            f"{{:.{digits}f}}".format)

    def ci(col: str, signed: bool = False) -> pd.Series:
        fmt = "{:+.1f}" if signed else "{:.1f}"
        return "[" + table[f"{col}_lo"].map(fmt.format) + ", " + table[f"{col}_hi"].map(fmt.format) + "]"

    reference = table.attrs.get("reference", "reference")
    columns = {"F1 [%]": pm("fit_f1") + " " + ci("fit_f1"), "F1 per seed": table.f1_per_seed}
    if "d_fit_f1" in table:
        columns[f"Δ F1 vs {reference}"] = table["d_fit_f1"].map("{:+.1f}".format) + " " + ci("d_fit_f1", True)
    columns["Chamfer [cm]"] = pm("fit_chamfer") + " " + ci("fit_chamfer")
    if "d_fit_chamfer" in table:
        columns[f"Δ Chamfer vs {reference}"] = (table["d_fit_chamfer"].map("{:+.1f}".format) + " "
                                                + ci("d_fit_chamfer", True))
    for column in (c for c in columns if c.startswith("Δ")):
        columns[column] = columns[column].where(table.index != reference, "(reference)")
    columns.update({"final loss": pm("loss", 3), "final BCE": pm("bce", 3)})
    if "val_bce_mean" in table:
        columns.update({"val BCE": pm("val_bce", 3), "val acc. [%]": pm("val_accuracy")})
    columns.update({"train time [s]": pm("seconds", 0), "seeds": table.seeds})
    text = pd.DataFrame(columns, index=table.index)
    return text.reset_index().to_markdown(index=False)


def plot_curves(curves: pd.DataFrame, path: Path, window: int = 10) -> Path:
    """Training loss vs step and vs wall seconds, mean over seeds with a min..max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for experiment, runs in curves.groupby("experiment"):
        smooth = runs.sort_values("step").groupby("seed", group_keys=False).apply(
            lambda r: r.assign(loss=r.loss.rolling(window, min_periods=1).mean()))
        by_step = smooth.groupby("step")
        mean, lo, hi = by_step.loss.mean(), by_step.loss.min(), by_step.loss.max()
        seconds = by_step.seconds.mean()
        (line,) = axes[0].plot(mean.index, mean.values, label=str(experiment))
        axes[0].fill_between(mean.index, lo.values, hi.values, color=line.get_color(), alpha=0.2)
        axes[1].plot(seconds.values, mean.values, color=line.get_color(), label=str(experiment))
    axes[0].set_xlabel("step")
    axes[1].set_xlabel("training wall time [s]")
    for ax in axes:
        ax.set_ylabel(f"training loss (running mean of {window})")
        ax.set_yscale("log")
        ax.legend()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("python -m benchmark.ablation", __doc__.split("\n")[0])
    parser.add_argument("per_frame", type=Path, help="per-frame CSV whose methods are <experiment>-s<seed>")
    parser.add_argument("--runs", type=Path, required=True, help="folder holding the <experiment>-s<seed> run folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for ablation.{md,csv} and loss_curves.png")
    parser.add_argument("--protocol", default="dgs-release", help="protocol name of the table's rows (SPEC §5.11)")
    parser.add_argument("--reference", default="dgs", help="experiment the differences are taken against")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_BOOT, metavar="B", help="bootstrap replicates")
    args = parser.parse_args(argv)
    if not args.per_frame.is_file():
        raise InputError(f"{args.per_frame} not found; run the ablation evaluation first")
    per_frame = pd.read_csv(args.per_frame)
    names = sorted(per_frame.method.unique())
    curves = training_curves(args.runs, names)
    table = ablation_table(per_frame, curves, args.protocol, validation=final_validation(args.runs, names),
                           reference=args.reference, n_boot=args.bootstrap)
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "ablation.csv") as tmp:
        table.to_csv(tmp)
    write_text_atomic(args.out / "ablation.md", to_markdown(table) + "\n\n" + resolved_text(table) + "\n")
    plot_curves(curves, args.out / "loss_curves.png")
    for name in ("ablation.csv", "ablation.md", "loss_curves.png"):
        print(args.out / name)
    return 0


def curves_main(argv: list[str] | None = None) -> int:
    """``dgs curves NAME… --runs DIR --out PNG``: the loss curves of training runs (no table)."""
    parser = command_parser("dgs curves", "Training-loss curves (vs step and wall time) of run folders.")
    parser.add_argument("names", nargs="+", help="run folder names under --runs (<experiment> or <experiment>-s<seed>)")
    parser.add_argument("--runs", type=Path, required=True, help="folder holding the run folders (scalars.csv each)")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(plot_curves(training_curves(args.runs, args.names), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m benchmark.ablation"))
