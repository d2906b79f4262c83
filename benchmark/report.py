"""Aggregate per-frame evaluation rows into the paper's tables (SPEC §5): CSV, LaTeX and Markdown.

Input: a per-frame table, one row per method × frame × protocol, as written by the evaluate stage
(`benchmark.protocols.to_row` plus the identifying columns `method`, `dataset`, `scene_id`,
`frame_index`). Metric columns are `<variant>_<metric>` with variant "metric" (raw prediction) or
"fit" (after the scale/shift fit), e.g. `fit_f1`, `metric_depth_rmse`.

Aggregation is the NaN-aware mean over frames; every table also states how many frames were NaN
in each column, so an empty prediction can never silently improve a mean. Units follow the paper:
distances in cm, ratios in %, both ×100 of the stored metres/fractions; AbsRel, SqRel and LogRMSE
are kept as stored.

Command line::

    python -m benchmark.report PER_FRAME.csv [...] --out results/report [--by method protocol]
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from pipeline.atomic import atomic_path, write_text_atomic
from pipeline.cli import command_parser
from pipeline.errors import InputError, run_main

#: metric -> (unit, True when lower is better). Order = column order in the tables.
METRICS: dict[str, tuple[str, bool]] = {
    "acc": ("cm", True), "compl": ("cm", True), "chamfer": ("cm", True),
    "prec": ("%", False), "recall": ("%", False), "f1": ("%", False),
    "depth_abs_rel": ("", True), "depth_abs_diff": ("cm", True), "depth_sq_rel": ("", True),
    "depth_rmse": ("cm", True), "depth_log_rmse": ("", True),
    "depth_r1": ("%", False), "depth_r2": ("%", False), "depth_r3": ("%", False),
    "depth_complete": ("%", False),
}
VARIANTS = ("metric", "fit")
DEFAULT_GROUPS = ("method", "dataset", "protocol")


def _scale(metric: str) -> float:
    return 100.0 if METRICS[metric][0] in ("cm", "%") else 1.0


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The `<variant>_<metric>` columns present in `frame`, in table order."""
    return [f"{v}_{m}" for v in VARIANTS for m in METRICS if f"{v}_{m}" in frame.columns]


def aggregate(per_frame: pd.DataFrame, by: tuple[str, ...] = DEFAULT_GROUPS) -> pd.DataFrame:
    """Mean of every metric column over frames, per group, in paper units.

    Returns one row per group with columns `<variant>_<metric>` (×100 for cm and %), `frames`
    (rows in the group) and `<variant>_<metric>_nan` (frames whose value is NaN).
    Raises ValueError naming the missing columns when `by` or the metrics are absent.
    """
    missing = [c for c in by if c not in per_frame.columns]
    columns = metric_columns(per_frame)
    if missing or not columns:
        raise ValueError(f"aggregate: per-frame table lacks {missing or 'every metric column'}; "
                         f"expected {list(by)} and columns like 'fit_f1' (found {list(per_frame.columns)})")
    grouped = per_frame.groupby(list(by), sort=True, dropna=False)
    means = grouped[columns].mean()  # pandas skips NaN
    for column in columns:
        means[column] *= _scale(column.split("_", 1)[1])
    nans = grouped[columns].agg(lambda s: int(s.isna().sum())).add_suffix("_nan")
    table = means.join(nans)
    table.insert(0, "frames", grouped.size())
    return table.reset_index()


def reason_counts(per_frame: pd.DataFrame, by: tuple[str, ...] = DEFAULT_GROUPS) -> pd.DataFrame:
    """How many frames each NaN reason (`<variant>_reason`, `fit_reason`, ...) explains, per group."""
    reason_columns = [c for c in per_frame.columns if c.endswith("reason")]
    long = per_frame.melt(id_vars=list(by), value_vars=reason_columns, var_name="column", value_name="reason")
    long = long[long["reason"].fillna("").astype(str) != ""]
    return long.groupby([*by, "column", "reason"]).size().rename("frames").reset_index()


_NAMES = {"acc": "Acc", "compl": "Compl", "chamfer": "Chamfer", "prec": "Prec", "recall": "Recall",
          "f1": "F1", "depth_abs_rel": "AbsRel", "depth_abs_diff": "AbsDiff", "depth_sq_rel": "SqRel",
          "depth_rmse": "RMSE", "depth_log_rmse": "LogRMSE", "depth_r1": "δ<1.25",
          "depth_r2": "δ<1.25²", "depth_r3": "δ<1.25³", "depth_complete": "Complete"}


def display_name(metric: str) -> str:
    """Table header of a metric, with its unit: 'F1 [%]', 'AbsRel'."""
    unit = METRICS[metric][0]
    return f"{_NAMES[metric]} [{unit}]" if unit else _NAMES[metric]


#: table header -> True when lower is better
_LOWER_IS_BETTER = {display_name(m): lower for m, (_, lower) in METRICS.items()}


def paper_table(aggregated: pd.DataFrame, variant: str = "fit",
                by: tuple[str, ...] = DEFAULT_GROUPS) -> pd.DataFrame:
    """One variant's metric columns with display headers, indexed by the group columns."""
    metrics = [m for m in METRICS if f"{variant}_{m}" in aggregated.columns]
    table = aggregated.set_index(list(by))[[f"{variant}_{m}" for m in metrics]]
    table.columns = [display_name(m) for m in metrics]
    return table


def _best_mask(table: pd.DataFrame) -> pd.DataFrame:
    """True where a cell is the best value of its column (ties all marked; NaN never best)."""
    best = pd.DataFrame(False, index=table.index, columns=table.columns)
    for header in table.columns:
        values = table[header]
        best[header] = values == (values.min() if _LOWER_IS_BETTER[header] else values.max())
    return best


def to_latex(table: pd.DataFrame, caption: str | None = None) -> str:
    """LaTeX (booktabs) with one decimal and the best value of each column in bold."""
    best = _best_mask(table)
    styler = table.style.format(precision=1, na_rep="--")
    styler = styler.apply(lambda _: best.map(lambda b: "textbf:--rwrap;" if b else ""), axis=None)
    return styler.to_latex(hrules=True, caption=caption, column_format="l" * table.index.nlevels +
                           "r" * table.shape[1])


def to_markdown(table: pd.DataFrame) -> str:
    """GitHub Markdown with one decimal and the best value of each column in bold."""
    best = _best_mask(table)
    text = table.map(lambda x: "--" if pd.isna(x) else f"{x:.1f}")
    text = text.mask(best, "**" + text + "**")
    return text.reset_index().to_markdown(index=False)


def per_scene(per_frame: pd.DataFrame, variant: str = "fit",
              by: tuple[str, ...] = DEFAULT_GROUPS) -> pd.DataFrame:
    """The aggregated table broken down per scene (`scene_id` added to the groups)."""
    return paper_table(aggregate(per_frame, (*by, "scene_id")), variant, (*by, "scene_id"))


def write_report(per_frame: pd.DataFrame, out: Path, by: tuple[str, ...] = DEFAULT_GROUPS) -> list[Path]:
    """Write the aggregated CSV, per-variant LaTeX/Markdown tables, per-scene CSV, reason counts
    and the per-frame F1 histogram under `out`; returns the written paths."""
    out.mkdir(parents=True, exist_ok=True)
    aggregated = aggregate(per_frame, by)
    written = [out / "aggregated.csv", out / "reasons.csv", out / "per_scene.csv"]
    for path, table, index in ((written[0], aggregated, False),
                               (written[1], reason_counts(per_frame, by), False),
                               (written[2], per_scene(per_frame, "fit", by), True)):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=index)
    for variant in VARIANTS:
        if not any(c.startswith(f"{variant}_") for c in metric_columns(per_frame)):
            continue
        table = paper_table(aggregated, variant, by)
        for suffix, text in ((".tex", to_latex(table, caption=f"{variant} (mean over frames)")),
                             (".md", to_markdown(table))):
            path = out / f"table_{variant}{suffix}"
            write_text_atomic(path, text + "\n")
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
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.per_frame if not p.is_file()]
    if missing:
        raise InputError(f"per-frame CSV not found: {', '.join(missing)}; run the evaluate stage first")
    frames = pd.concat([pd.read_csv(p) for p in args.per_frame], ignore_index=True)
    for path in write_report(frames, args.out, tuple(args.by)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m benchmark.report"))
