"""The report's tables (SPEC §5.9): one block per (dataset, protocol), Markdown and LaTeX.

A block holds the methods scored on one dataset under one protocol: columns N (frames averaged) and
failed (frames whose prediction failed), then every metric as ``mean [95 % interval]`` in paper
units with one decimal; the best mean of each column is bold *within the block* (numbers from
another dataset or protocol are never compared). A caption line names the dataset, the protocol and
its hash, the structure source of the frames, the failure policy and the interval. Under the table,
the paired differences against the reference method, and in words which of them are resolved.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark import bootstrap
from benchmark.protocols import PROTOCOLS
from benchmark.aggregate import DEFAULT_GROUPS, METRICS
from pipeline.datasets import DATASETS

_NAMES = {"acc": "Acc", "compl": "Compl", "chamfer": "Chamfer", "prec": "Prec", "recall": "Recall",
          "f1": "F1", "depth_abs_rel": "AbsRel", "depth_abs_diff": "AbsDiff", "depth_sq_rel": "SqRel",
          "depth_rmse": "RMSE", "depth_log_rmse": "LogRMSE", "depth_r1": "δ<1.25",
          "depth_r2": "δ<1.25²", "depth_r3": "δ<1.25³", "depth_complete": "Complete"}
MESH = ("acc", "compl", "chamfer", "prec", "recall", "f1")


def display_name(metric: str) -> str:
    """Table header of a metric, with its unit: 'F1 [%]', 'SqRel [×100]'."""
    return f"{_NAMES[metric]} [{METRICS[metric][0]}]"


def _metrics(table: pd.DataFrame, variant: str) -> list[str]:
    return [m for m in METRICS if f"{variant}_{m}" in table.columns]


def _best(values: pd.Series, metric: str) -> pd.Series:
    """True where a value is the best of its block column (ties all marked; NaN never best)."""
    lower = METRICS[metric][1]
    return values == (values.min() if lower else values.max())


def _cell(mean: float, lo: float, hi: float) -> str:
    if not np.isfinite(mean):
        return "--"
    return f"{mean:.1f}" + (f" [{lo:.1f}, {hi:.1f}]" if np.isfinite(lo) and np.isfinite(hi) else "")


def caption(rows: pd.DataFrame, key: dict, variant: str, n_boot: int) -> str:
    """The block's caption line: dataset, protocol and hash, structure source, policy, interval."""
    dataset = str(key.get("dataset", ""))
    title = DATASETS[dataset].title if dataset in DATASETS else dataset
    protocol = str(key.get("protocol", ""))
    hashes = "/".join(sorted(set(rows["protocol_hash"].astype(str)) - {""}))
    policies = set(rows["missing"].astype(str)) - {""}
    what = "raw prediction" if variant == "metric" else "after the scale/shift fit"
    parts = [f"{title} · {protocol}" + (f" #{hashes}" if hashes else "") + f" · {variant} ({what})",
             f"structure: {'; '.join(sorted(set(rows['structure'].astype(str))))} frames",
             _policy_text(protocol, policies)]
    if n_boot > 0:
        parts.append(f"mean [95 % interval, bootstrap over scenes, B = {n_boot}]")
    return "; ".join(parts) + "."


def _policy_text(protocol: str, policies: set[str]) -> str:
    if policies == {"drop"}:
        return "failed frames dropped: N excludes them, 'failed' counts them"
    if policies == {"penalize"}:
        clamp = PROTOCOLS[protocol].distance_clamp if protocol in PROTOCOLS else None
        dist = f"{100 * clamp:.0f} cm" if clamp is not None else "the protocol's distance clamp"
        return (f"failed frames penalized and counted in N (P = R = F1 = 0, Acc = Compl = Chamfer = {dist}, "
                f"δ = Complete = 0; AbsRel, AbsDiff, SqRel, RMSE, LogRMSE average the frames with a prediction)")
    return "failure policy: " + (", ".join(sorted(policies)) or "not recorded (NaN rows left out)")


def block_frame(rows: pd.DataFrame, variant: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(text cells, bold mask) of one block: index = method, columns N, failed, then the metrics."""
    metrics = _metrics(rows, variant)
    text = pd.DataFrame(index=rows["method"].astype(str))
    bold = pd.DataFrame(False, index=text.index, columns=["N", "failed"] + [display_name(m) for m in metrics])
    text["N"] = rows[f"{variant}_N"].astype(int).astype(str).to_numpy()
    text["failed"] = rows[f"{variant}_failed"].astype(int).astype(str).to_numpy()
    for metric in metrics:
        column = f"{variant}_{metric}"
        header = display_name(metric)
        text[header] = [_cell(m, lo, hi) for m, lo, hi in
                        zip(rows[column], rows.get(f"{column}_lo", np.nan * rows[column]),
                            rows.get(f"{column}_hi", np.nan * rows[column]))]
        bold[header] = _best(rows[column], metric).to_numpy()
    return text, bold


def _markdown(text: pd.DataFrame, bold: pd.DataFrame) -> str:
    marked = text.copy()
    for column in text.columns:
        marked[column] = [f"**{t}**" if b and t != "--" else t for t, b in zip(text[column], bold[column])]
    return marked.rename_axis("method").reset_index().to_markdown(index=False)


def _latex_escape(text: str) -> str:
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("#", "\\#"), ("_", "\\_"),
                 ("δ", "$\\delta$"), ("²", "$^2$"), ("³", "$^3$"), ("×", "$\\times$")):
        text = text.replace(a, b)
    return text


def _latex(text: pd.DataFrame, bold: pd.DataFrame, title: str) -> str:
    header = " & ".join(_latex_escape(h) for h in ["method", *text.columns])
    lines = ["\\begin{table}", "\\centering", "\\small", f"\\caption{{{_latex_escape(title)}}}",
             "\\begin{tabular}{l" + "r" * len(text.columns) + "}", "\\toprule", header + " \\\\",
             "\\midrule"]
    for method, row in text.iterrows():
        cells = []
        for column, value in row.items():
            mean, _, rest = value.partition(" ")
            cell = f"\\textbf{{{mean}}}" if bold.loc[method, column] and mean != "--" else mean
            cells.append(cell + (f"\\,{{\\scriptsize {rest}}}" if rest else ""))
        lines.append(" & ".join([_latex_escape(str(method)), *cells]) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines)


def difference_lines(diffs: pd.DataFrame, key: dict, variant: str) -> list[str]:
    """Markdown of the block's paired differences and one sentence of what is resolved."""
    rows = diffs
    for name, value in key.items():
        rows = rows[rows[name].astype(str) == str(value)] if name in rows.columns else rows
    metrics = [m for m in MESH if f"{variant}_{m}" in rows.columns]
    if rows.empty or not metrics:
        return []
    reference = rows["reference"].iloc[0]
    table = pd.DataFrame({"method": rows["method"].astype(str), "N": rows["N"].astype(int)})
    resolved, open_ = [], []
    for metric in metrics:
        column = f"{variant}_{metric}"
        table[f"Δ {display_name(metric)}"] = [
            "--" if not np.isfinite(d) else f"{d:+.1f}" + (f" [{lo:+.1f}, {hi:+.1f}]" if np.isfinite(lo) else "")
            for d, lo, hi in zip(rows[column], rows[f"{column}_lo"], rows[f"{column}_hi"])]
        for method, d, lo, hi in zip(rows["method"], rows[column], rows[f"{column}_lo"], rows[f"{column}_hi"]):
            (resolved if bootstrap.resolved(lo, hi) else open_).append(f"{method} {_NAMES[metric]} ({d:+.1f})")
    words = (f"Resolved (95 % interval excludes 0): {', '.join(resolved) or 'none'}. "
             f"Not resolved: {', '.join(open_) or 'none'}.")
    return [f"Paired differences against `{reference}` (method − {reference}, same frames):", "",
            table.to_markdown(index=False), "", words]


def block_tables(aggregated: pd.DataFrame, diffs: pd.DataFrame, variant: str,
                 by: tuple[str, ...] = DEFAULT_GROUPS, n_boot: int = 0) -> tuple[str, str]:
    """(Markdown, LaTeX) of every (dataset, protocol) block of one variant."""
    keys = [c for c in by if c != "method"]
    markdown, latex = [], []
    for key, rows in (aggregated.groupby(keys, sort=True, dropna=False) if keys else [((), aggregated)]):
        key = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        title = caption(rows, key, variant, n_boot)
        text, bold = block_frame(rows, variant)
        markdown += [f"### {' · '.join(str(v) for v in key.values())} · {variant}", "", title, "",
                     _markdown(text, bold), ""]
        extra = difference_lines(diffs, key, variant) if not diffs.empty else []
        markdown += extra + ([""] if extra else [])
        latex += [_latex(text, bold, title), ""]
    return "\n".join(markdown), "\n".join(latex)

