"""The report stage (SPEC §5.9): per-frame CSV → aggregated CSV, paired differences, tables, histogram.

Numbers come from :mod:`benchmark.aggregate` (means ×100, N, failed-frame counts, 95 % bootstrap
intervals over scenes, paired differences against a reference method), tables from
:mod:`benchmark.tables` (one block per dataset × protocol, best value bold within the block, a
caption naming the protocol, its hash, the structure source and the failure policy).

Outputs under ``--out``: ``aggregated.csv``, ``differences.csv``, ``reasons.csv``, ``per_scene.csv``,
``table_{metric,fit}.{md,tex}``, ``f1_histogram.png``.

Command line::

    python -m benchmark.report PER_FRAME.csv [...] --out results/report [--reference dgs] [--bootstrap 1000]
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from benchmark.aggregate import (DEFAULT_BOOT, DEFAULT_GROUPS, VARIANTS, aggregate, differences,
                                 per_scene, reason_counts)
from benchmark.tables import block_tables
from pipeline.atomic import atomic_path, write_text_atomic
from pipeline.cli import command_parser
from pipeline.errors import InputError, run_main


def write_report(per_frame: pd.DataFrame, out: Path, by: tuple[str, ...] = DEFAULT_GROUPS,
                 reference: str | None = None, n_boot: int = DEFAULT_BOOT) -> list[Path]:
    """Write the aggregated CSV (with intervals), the paired differences against ``reference`` (the
    first method when None), per-variant LaTeX/Markdown tables, the per-scene CSV, reason counts and
    the per-frame F1 histogram under ``out``; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    aggregated = aggregate(per_frame, by, n_boot)
    reference = reference if reference is not None else sorted(per_frame["method"].astype(str))[0]
    diffs = differences(per_frame, reference, by, n_boot) if "method" in by else pd.DataFrame()
    written = [out / "aggregated.csv", out / "differences.csv", out / "reasons.csv", out / "per_scene.csv"]
    for path, table, index in ((written[0], aggregated, False), (written[1], diffs, False),
                               (written[2], reason_counts(per_frame, by), False),
                               (written[3], per_scene(per_frame, "fit", by), True)):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=index)
    for variant in VARIANTS:
        if f"{variant}_f1" not in aggregated.columns:
            continue
        markdown, latex = block_tables(aggregated, diffs, variant, by, n_boot)
        for suffix, text in ((".md", markdown), (".tex", latex)):
            path = out / f"table_{variant}{suffix}"
            write_text_atomic(path, text)
            written.append(path)
    if "fit_f1" in per_frame.columns:
        written.append(f1_histogram(per_frame, out / "f1_histogram.png"))
    return written


def f1_histogram(per_frame: pd.DataFrame, path: Path, column: str = "fit_f1") -> Path:
    """A histogram of per-frame F1 [%], one series per method, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for method, rows in per_frame.groupby("method"):
        ax.hist(100 * rows[column].dropna(), bins=20, range=(0, 100), alpha=0.6, label=str(method))
    ax.set_xlabel("F1 per frame [%]")
    ax.set_ylabel("frames")
    ax.legend()
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Lay out, write (PNG, 120 dpi) and close a matplotlib figure; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("python -m benchmark.report", __doc__.split("\n")[0])
    parser.add_argument("per_frame", nargs="+", type=Path, help="per-frame CSV files (concatenated)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the report files")
    parser.add_argument("--by", nargs="+", default=list(DEFAULT_GROUPS), help="grouping columns of the per-frame rows")
    parser.add_argument("--reference", help="method the paired differences are taken against "
                                            "(default: the first method by name)")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_BOOT, metavar="B",
                        help="bootstrap replicates per interval (0 = no intervals)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.per_frame if not p.is_file()]
    if missing:
        raise InputError(f"per-frame CSV not found: {', '.join(missing)}; run the evaluate stage first")
    frames = pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in args.per_frame],
                       ignore_index=True)
    try:
        paths = write_report(frames, args.out, tuple(args.by), args.reference, args.bootstrap)
    except ValueError as err:
        raise InputError(str(err)) from None
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m benchmark.report"))
