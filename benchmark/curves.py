"""Learning curves of one training run: validation accuracy and BCE, training BCE and learning rate
against the optimiser step, from the run's ``scalars.csv`` (long format ``step,tag,value`` written by
the trainer; nothing from the training code is imported).

    python -m benchmark.curves data/prepared/models/dgs --out docs/images/demo_curves.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from benchmark.report import save_figure


def run_curves(run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, val) wide tables indexed by step: train columns ``bce``, ``lr`` (when logged); val
    columns ``accuracy``, ``bce``. FileNotFoundError naming ``<run>/scalars.csv`` if it is absent."""
    path = Path(run) / "scalars.csv"
    if not path.is_file():
        raise FileNotFoundError(f"benchmark.curves: {path} not found; train the run first")
    long = pd.read_csv(path)

    def wide(prefix: str) -> pd.DataFrame:
        rows = long[long.tag.str.startswith(prefix)]
        table = rows.pivot_table(index="step", columns="tag", values="value")
        table.columns = [c[len(prefix):] for c in table.columns]
        return table

    return wide("train/"), wide("val/")


def plot_run(run: Path, path: Path, window: int = 25) -> Path:
    """Two panels: validation accuracy (left); validation BCE, training BCE (running mean of
    ``window`` logged steps) and the learning rate on a second axis (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, val = run_curves(run)
    fig, (acc, bce) = plt.subplots(1, 2, figsize=(11, 4))
    acc.plot(val.index, val["accuracy"], marker="o")
    acc.set_xlabel("step")
    acc.set_ylabel("validation near-surface accuracy")
    acc.axhline(0.5, color="grey", lw=0.8, ls=":")
    bce.plot(train.index, train["bce"].rolling(window, min_periods=1).mean(), label=f"train BCE (mean of {window})")
    bce.plot(val.index, val["bce"], marker="o", label="validation BCE")
    bce.axhline(0.6931, color="grey", lw=0.8, ls=":", label="chance (ln 2)")
    bce.set_xlabel("step")
    bce.set_ylabel("BCE")
    bce.legend(loc="lower left")
    if "lr" in train:
        rate = bce.twinx()
        rate.plot(train.index, train["lr"], color="black", lw=0.8, alpha=0.5)
        rate.set_ylabel("learning rate")
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.curves", description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="training run folder (holds scalars.csv)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    try:
        print(plot_run(args.run, args.out))
    except FileNotFoundError as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
