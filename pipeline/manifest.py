"""The manifest of a prepare job: one row per frame considered, where it is stored or why it was skipped.

A manifest is a pandas DataFrame with the columns of :data:`COLUMNS`, written as Parquet (pyarrow).
``shard`` is the shard file path relative to the manifest's directory (per-scene manifests) or to
the merged manifest's directory; ``row`` is the row inside that shard. Skipped frames have
``status == "skipped"``, an empty ``shard``, ``row == -1`` and a ``reason`` (see :data:`REASONS`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from pipeline.atomic import atomic_path

COLUMNS: dict[str, str] = {
    "dataset": "string", "scene_id": "string", "frame_index": "int64", "source_file": "string",
    "split": "string", "shard": "string", "row": "int64", "status": "string", "reason": "string",
    "n_valid_near": "int64", "n_valid_non": "int64", "visible_faces": "int64",
}
"""Column name → pandas dtype, in file order."""

REASONS = ("invalid_pose", "empty_view", "too_few_samples", "corrupt_payload")
"""Documented skip reasons; ``pipeline.frames`` may add others, they are kept verbatim."""


def make_manifest(rows: Iterable[dict], columns: dict[str, str] | None = None) -> pd.DataFrame:
    """DataFrame with exactly ``columns`` (default :data:`COLUMNS`; missing ints → -1, strings → "")."""
    columns = COLUMNS if columns is None else columns
    df = pd.DataFrame(list(rows), columns=list(columns))
    for col, dtype in columns.items():
        df[col] = df[col].fillna(-1 if dtype == "int64" else "").astype(dtype)
    return df.reset_index(drop=True)


def write_manifest(df: pd.DataFrame, path: str | os.PathLike, columns: dict[str, str] | None = None) -> Path:
    """Write ``df`` to Parquet atomically (:mod:`pipeline.atomic`); returns the path.

    The file has no timestamps: the same DataFrame gives the same bytes. ``columns``: as
    :func:`make_manifest` (another record's manifest, e.g. :mod:`pipeline.object_shards`).
    """
    columns = COLUMNS if columns is None else columns
    path = Path(path)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"manifest for {path} lacks columns {missing}; build it with make_manifest()")
    with atomic_path(path) as tmp:
        df[list(columns)].to_parquet(tmp, engine="pyarrow", index=False, compression="zstd")
    return path


def read_manifest(path: str | os.PathLike, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest`, checking its ``columns`` (default :data:`COLUMNS`)."""
    columns = COLUMNS if columns is None else columns
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"manifest {path} does not exist; run the prepare job that writes it")
    df = pd.read_parquet(path, engine="pyarrow")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"manifest {path} lacks columns {missing}: written by another version, or another "
                         f"record's manifest (scene vs object)? re-run the prepare job that writes it")
    return make_manifest(df.to_dict("records"), columns)


def merge_manifests(paths: Sequence[str | os.PathLike], out: str | os.PathLike | None = None) -> pd.DataFrame:
    """Concatenate per-scene manifests, rewriting ``shard`` relative to ``out``'s directory.

    Args:
        paths: per-scene ``manifest.parquet`` files (their ``shard`` entries are relative to them).
        out: where the merged manifest goes (written atomically when given); shard paths become
            relative to its directory. Without ``out`` they become absolute.
    Returns:
        The merged DataFrame, sorted by (dataset, split, scene_id, frame_index) for a stable order.
    """
    base = Path(out).parent.resolve() if out is not None else None
    parts = []
    for p in paths:
        df = read_manifest(p)
        root = Path(p).parent.resolve()
        ok = df["shard"] != ""
        shard_abs = [str(root / s) for s in df.loc[ok, "shard"]]
        df.loc[ok, "shard"] = [os.path.relpath(s, base) for s in shard_abs] if base else shard_abs
        parts.append(df)
    merged = make_manifest(pd.concat(parts, ignore_index=True).to_dict("records") if parts else [])
    merged = merged.sort_values(["dataset", "split", "scene_id", "frame_index"], kind="stable")
    merged = merged.reset_index(drop=True)
    if out is not None:
        write_manifest(merged, out)
    return merged


def skip_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Counts per (dataset, split, status, reason): how many frames were kept and skipped, and why."""
    if df.empty:
        return pd.DataFrame(columns=["dataset", "split", "status", "reason", "frames"])
    out = (df.groupby(["dataset", "split", "status", "reason"], dropna=False).size()
           .rename("frames").reset_index())
    return out.sort_values(["dataset", "split", "status", "reason"]).reset_index(drop=True)


def summary_line(df: pd.DataFrame, seconds: float | None = None) -> str:
    """One human line: ``N frames: A ok, B skipped (invalid_pose 3, corrupt_payload 1)[, T s]``."""
    ok = int((df["status"] == "ok").sum())
    skipped = df[df["status"] != "ok"]
    reasons = ", ".join(f"{r} {n}" for r, n in skipped["reason"].value_counts().sort_index().items())
    line = f"{len(df)} frames: {ok} ok, {len(skipped)} skipped" + (f" ({reasons})" if reasons else "")
    if seconds is not None:
        rate = ok / seconds if seconds > 0 else float("nan")
        line += f", {seconds:.1f} s ({rate:.1f} ok frames/s)"
    return line


def count_padded(df: pd.DataFrame, n_near: int, n_non: int) -> int:
    """Number of ok frames that could not fill their point quotas (K = ``n_near``, M = ``n_non``)."""
    ok = df["status"] == "ok"
    return int(np.sum(ok & ((df["n_valid_near"] < n_near) | (df["n_valid_non"] < n_non))))


def _manifest_of(path: str | os.PathLike) -> Path:
    """A manifest path from a manifest file, a scene directory or its ``done`` marker."""
    p = Path(path)
    if p.is_dir():
        return p / "manifest.parquet"
    if p.suffix != ".parquet":  # e.g. the per-scene `done` marker a workflow rule depends on
        return p.parent / "manifest.parquet"
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline.manifest merge --out ALL.parquet INPUT…`` (inputs: manifests, scene
    directories or their ``done`` markers); ``summary INPUT…`` prints skip counts."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pipeline.manifest")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("merge", help="merge per-scene manifests into one")
    m.add_argument("--out", required=True)
    m.add_argument("inputs", nargs="+")
    s = sub.add_parser("summary", help="print frames kept/skipped by reason")
    s.add_argument("inputs", nargs="+")
    a = ap.parse_args(argv)
    paths = [_manifest_of(p) for p in a.inputs]
    if a.cmd == "merge":
        df = merge_manifests(paths, a.out)
        print(f"{a.out}: {summary_line(df)} from {len(paths)} manifests")
    else:
        df = merge_manifests(paths)
        print(skip_summary(df).to_string(index=False))
        print(summary_line(df))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
