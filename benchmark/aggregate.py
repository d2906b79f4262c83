"""Per-frame evaluation rows → per-group means in paper units, intervals and paired differences (SPEC §5.9).

Input: a per-frame table, one row per method × frame × protocol, as written by the evaluate stage
(``benchmark.scoring.to_row`` plus ``method``, ``dataset``, ``scene_id``, ``frame_index``,
``prediction``, ``structure``). Metric columns are ``<variant>_<metric>`` with variant "metric" (raw
prediction) or "fit" (after the scale/shift fit), e.g. ``fit_f1``, ``metric_depth_rmse``.

Per (method, dataset, protocol): the mean over frames of each metric ×100 (distances in cm, ratios
in %, AbsRel/SqRel/LogRMSE ×100 as the DGS release prints them). Failed frames were already scored
by their protocol's policy (``penalize``: their penalty is in the mean; ``drop``: NaN, left out);
nothing disappears silently: every row carries ``<variant>_N`` (frames averaged),
``<variant>_failed`` (frames whose prediction failed, penalized or dropped) and a NaN count per
column. Every mean gets a 95 % bootstrap interval over scenes (``<column>_lo``, ``_hi``,
:mod:`benchmark.bootstrap`), and :func:`differences` gives every method's paired difference against
a reference method.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark import bootstrap
from benchmark.scoring import FAILURES

#: metric -> (unit after ×100, True when lower is better). Order = column order in the tables.
METRICS: dict[str, tuple[str, bool]] = {
    "acc": ("cm", True), "compl": ("cm", True), "chamfer": ("cm", True),
    "prec": ("%", False), "recall": ("%", False), "f1": ("%", False),
    "depth_abs_rel": ("%", True), "depth_abs_diff": ("cm", True), "depth_sq_rel": ("×100", True),
    "depth_rmse": ("cm", True), "depth_log_rmse": ("×100", True),
    "depth_r1": ("%", False), "depth_r2": ("%", False), "depth_r3": ("%", False),
    "depth_complete": ("%", False),
}
SCALE = 100.0  # every stored value (metres, fractions, unitless ratios) is reported ×100
VARIANTS = ("metric", "fit")
DEFAULT_GROUPS = ("method", "dataset", "protocol")
DEFAULT_BOOT = 1000
FRAME = ("scene_id", "frame_index")


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The `<variant>_<metric>` columns present in `frame`, in table order."""
    return [f"{v}_{m}" for v in VARIANTS for m in METRICS if f"{v}_{m}" in frame.columns]


def _check(per_frame: pd.DataFrame, by: tuple[str, ...]) -> list[str]:
    missing = [c for c in (*by, *FRAME) if c not in per_frame.columns]
    columns = metric_columns(per_frame)
    if missing or not columns:
        raise ValueError(f"report: per-frame table lacks {missing or 'every metric column'}; expected "
                         f"{list(by) + list(FRAME)} and columns like 'fit_f1' (found {list(per_frame.columns)})")
    return columns


def _blocks(per_frame: pd.DataFrame, by: tuple[str, ...]):
    """(block key, rows) per block of ``by`` without ``method`` (a dataset × protocol block)."""
    keys = [c for c in by if c != "method"]
    if not keys:
        yield (), per_frame
        return
    for key, rows in per_frame.groupby(keys, sort=True, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), rows


def _aligned(rows: pd.DataFrame, frames: pd.MultiIndex, columns: list[str]) -> np.ndarray:
    """(F, M) values of one method's rows on the block's frames (NaN where it has none)."""
    table = rows.groupby(list(FRAME))[columns].mean()
    return table.reindex(frames).to_numpy(dtype=np.float64)


def _block_draws(rows: pd.DataFrame, n_boot: int) -> tuple[pd.MultiIndex, np.ndarray]:
    """The block's frames (sorted) and their bootstrap weights (n_boot, F). The stream is seeded by
    the frames themselves: two blocks over the same frames (one dataset under two protocols) share
    their draws, so equal per-frame numbers give equal intervals."""
    frames = pd.MultiIndex.from_frame(rows[list(FRAME)].drop_duplicates().sort_values(list(FRAME)))
    rng = bootstrap.block_rng(tuple(f"{scene}/{frame}" for scene, frame in frames))
    return frames, bootstrap.frame_weights(frames.get_level_values(0), n_boot, rng)


def aggregate(per_frame: pd.DataFrame, by: tuple[str, ...] = DEFAULT_GROUPS,
              n_boot: int = DEFAULT_BOOT) -> pd.DataFrame:
    """Mean of every metric column over frames, per group, in paper units, with 95 % intervals.

    Returns one row per group: the group columns, ``frames`` (rows), per variant ``<v>_N`` and
    ``<v>_failed``, ``<column>`` (×100), ``<column>_lo`` / ``_hi`` (bootstrap over scenes, NaN when
    ``n_boot`` is 0), ``<column>_nan``, and ``protocol_hash``, ``missing``, ``structure`` (what the
    group's frames used). Raises ValueError naming missing columns.
    """
    columns = _check(per_frame, by)
    grouped = per_frame.groupby(list(by), sort=True, dropna=False)
    table = grouped[columns].mean() * SCALE  # pandas skips NaN
    table = table.join(grouped[columns].agg(lambda s: int(s.isna().sum())).add_suffix("_nan"))
    table.insert(0, "frames", grouped.size())
    for variant in VARIANTS:
        if f"{variant}_f1" in columns:
            table[f"{variant}_N"] = grouped[f"{variant}_f1"].count()
            reason = f"{variant}_reason"
            table[f"{variant}_failed"] = (grouped[reason].agg(lambda s: int(s.isin(FAILURES).sum()))
                                          if reason in per_frame.columns else 0)
    for name in ("protocol_hash", "missing"):
        table[name] = (grouped[name].agg(lambda s: "/".join(sorted(set(s.dropna().astype(str)))))
                       if name in per_frame.columns else "")
    table["structure"] = grouped.apply(structure_text, include_groups=False)
    lo, hi = _intervals(per_frame, by, columns, n_boot)
    table = table.join(lo.add_suffix("_lo")).join(hi.add_suffix("_hi"))
    return table.reset_index()


def _intervals(per_frame: pd.DataFrame, by: tuple[str, ...], columns: list[str],
               n_boot: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bootstrap (lo, hi) ×100 per group and column (NaN without replicates)."""
    index = per_frame.groupby(list(by), sort=True, dropna=False).size().index
    lo = pd.DataFrame(np.nan, index=index, columns=columns)
    hi = lo.copy()
    if n_boot <= 0:
        return lo, hi
    for _, rows in _blocks(per_frame, by):
        frames, weights = _block_draws(rows, n_boot)
        for group, group_rows in rows.groupby(list(by), sort=True, dropna=False):
            values = _aligned(group_rows, frames, columns)[None]
            low, high = bootstrap.interval(bootstrap.replicate_means(values, weights))
            label = group if len(by) > 1 else group[0]
            lo.loc[label], hi.loc[label] = low * SCALE, high * SCALE
    return lo, hi


def differences(per_frame: pd.DataFrame, reference: str, by: tuple[str, ...] = DEFAULT_GROUPS,
                n_boot: int = DEFAULT_BOOT) -> pd.DataFrame:
    """Paired differences method − ``reference`` per block (×100), over the frames both have.

    One row per (block, method ≠ reference): the block columns, ``method``, ``reference``, ``N``
    (paired frames), and per metric column the mean difference with its 95 % interval
    (``_lo``/``_hi``, the same frame draws for both methods). Empty when the reference is absent.
    """
    columns = _check(per_frame, by)
    rows_out = []
    for key, rows in _blocks(per_frame, by):
        if reference not in set(rows["method"]):
            continue
        frames, weights = _block_draws(rows, max(n_boot, 1))
        ref = _aligned(rows[rows["method"] == reference], frames, columns)
        for method, method_rows in rows.groupby("method", sort=True):
            if method == reference:
                continue
            diff = _aligned(method_rows, frames, columns) - ref  # NaN unless both have the frame
            low, high = bootstrap.interval(bootstrap.replicate_means(diff[None], weights))
            out = dict(zip([c for c in by if c != "method"], key))
            out.update(method=method, reference=reference, N=int(np.isfinite(diff[:, 0]).sum()))
            for m, column in enumerate(columns):
                out[column] = float(np.nanmean(diff[:, m])) * SCALE if np.isfinite(diff[:, m]).any() else np.nan
                out[f"{column}_lo"], out[f"{column}_hi"] = (low[m] * SCALE, high[m] * SCALE) if n_boot else (np.nan, np.nan)
            rows_out.append(out)
    return pd.DataFrame(rows_out)


def structure_text(rows: pd.DataFrame) -> str:
    """"labels 8, inferred 2": frames per structure source (SPEC §4.9), each frame counted once."""
    if "structure" not in rows.columns:
        return "unknown"
    per_frame = rows.drop_duplicates(list(FRAME)) if set(FRAME) <= set(rows.columns) else rows
    counts = per_frame["structure"].fillna("unknown").astype(str).value_counts().sort_index()
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def reason_counts(per_frame: pd.DataFrame, by: tuple[str, ...] = DEFAULT_GROUPS) -> pd.DataFrame:
    """How many frames each NaN reason (`<variant>_reason`, `fit_reason`, ...) explains, per group."""
    reason_columns = [c for c in per_frame.columns if c.endswith("reason")]
    long = per_frame.melt(id_vars=list(by), value_vars=reason_columns, var_name="column", value_name="reason")
    long = long[long["reason"].notna() & (long["reason"].astype(str) != "")]
    return long.groupby([*by, "column", "reason"]).size().rename("frames").reset_index()


def per_scene(per_frame: pd.DataFrame, variant: str = "fit",
              by: tuple[str, ...] = DEFAULT_GROUPS) -> pd.DataFrame:
    """Means per scene in paper units (``scene_id`` added to the groups; no intervals), with N;
    columns ``N`` and ``<variant>_<metric>``."""
    table = aggregate(per_frame, (*by, "scene_id"), n_boot=0).set_index([*by, "scene_id"])
    columns = [c for c in metric_columns(table) if c.startswith(f"{variant}_")]
    return table[[f"{variant}_N", *columns]].rename(columns={f"{variant}_N": "N"})
