"""The manifest of a prepare job: one row per frame considered, where it is stored or why it was skipped.

A manifest is a pandas DataFrame with the columns of :data:`COLUMNS`, written as Parquet (pyarrow).
``shard`` is the shard file path relative to the manifest's directory (per-scene manifests) or to
the merged manifest's directory; ``row`` is the row inside that shard. Skipped frames have
``status == "skipped"``, an empty ``shard``, ``row == -1``, a ``reason`` (see :data:`REASONS`) and
a ``message`` saying what exactly was wrong (e.g. the decoder's complaint about a JPEG payload).
``structure_source`` is where the scene's structure faces (the amodal depth's bound, SPEC §4.9)
came from, "labels" or "inferred", on every row of the scene.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from pipeline.atomic import atomic_path
from pipeline.cli import HelpFormatter, command_parser
from pipeline.errors import run_main
from pipeline.formats.errors import FormatError

COLUMNS: dict[str, str] = {
    "dataset": "string", "scene_id": "string", "frame_index": "int64", "source_file": "string",
    "split": "string", "shard": "string", "row": "int64", "status": "string", "reason": "string",
    "n_valid_near": "int64", "n_valid_non": "int64", "visible_faces": "int64", "message": "string",
    "structure_source": "string",
}
"""Column name → pandas dtype, in file order."""

OPTIONAL_COLUMNS: dict[str, str] = {"message": "", "structure_source": "unknown"}
"""Columns added after the first manifests, and the value a reader gives an older file's rows."""

REASONS = ("invalid_pose", "empty_view", "too_few_samples", "corrupt_payload", "no_structure")
"""Documented skip reasons; ``pipeline.frames`` may add others, they are kept verbatim.
``no_structure``: the scene has no structure face at all (SPEC §4.9), so no frame has an amodal depth."""

REASON_HINTS = {
    "no_structure": "no wall, floor or ceiling was found (prepare.structure); check that the mesh is a "
                    "room scan in metres with +Z up, or use structure labels",
    "invalid_pose": "the scan's camera tracking failed (non-finite or non-rigid poses); re-export it "
                    "or leave the scene out",
    "corrupt_payload": "the images are corrupt or missing; download the scene again",
    "empty_view": "the frames see no part of the mesh; check that mesh and frames belong together",
    "too_few_samples": "too few free-space points fit the view; lower prepare.exclusion_distance or "
                       "check the mesh's scale (metres)",
}
"""What to do when a whole scene is skipped for one reason."""


def make_manifest(rows: Iterable[dict], columns: dict[str, str] | None = None) -> pd.DataFrame:
    """DataFrame with exactly ``columns`` (default :data:`COLUMNS`; missing ints → -1, strings → "",
    missing :data:`OPTIONAL_COLUMNS` → their value)."""
    columns = COLUMNS if columns is None else columns
    df = pd.DataFrame(list(rows), columns=list(columns))
    for col, dtype in columns.items():
        fill = OPTIONAL_COLUMNS.get(col, -1 if dtype == "int64" else "")
        df[col] = (df[col].fillna(fill) if dtype == "int64" else df[col].astype(object).fillna(fill)).astype(dtype)
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
    try:
        df = pd.read_parquet(path, engine="pyarrow")
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise FormatError(path, f"not a readable Parquet manifest ({exc}).",
                          hint="re-run the prepare (or merge) job that writes it.") from exc
    for column, value in OPTIONAL_COLUMNS.items():
        if column in columns and column not in df.columns:
            df[column] = value
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise FormatError(path, f"lacks manifest columns {missing}: written by another version, or another "
                          f"record's manifest (scene vs object)?", hint="re-run the prepare job that writes it.")
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


def skip_examples(df: pd.DataFrame) -> dict[str, str]:
    """The first skipped frame of each reason: ``{reason: "frame i (source_file): message"}``."""
    first = df[df["status"] != "ok"].drop_duplicates("reason").sort_values("reason")
    return {r.reason: f"frame {r.frame_index} ({r.source_file}): {r.message or 'no message'}"
            for r in first.itertuples()}


def skip_report(df: pd.DataFrame) -> list[str]:
    """One log line per skip reason: ``reason: N frames, first: frame i (file): message``."""
    counts = df.loc[df["status"] != "ok", "reason"].value_counts()
    return [f"{reason}: {counts[reason]} frames, first: {example}"
            for reason, example in skip_examples(df).items()]


def no_frame_message(df: pd.DataFrame) -> str:
    """Why a scene yielded no frame: the most frequent skip reason, an example message and what to do."""
    counts = df.loc[df["status"] != "ok", "reason"].value_counts()
    if counts.empty:
        return "no frame was selected from the scene's frames"
    reason = sorted(counts.index, key=lambda r: (-counts[r], r))[0]
    hint = REASON_HINTS.get(reason, "see the reason's messages in the job log")
    return (f"no frame could be prepared ({summary_line(df)}); most frequent reason {reason} "
            f"({counts[reason]} of {len(df)}), e.g. {skip_examples(df)[reason]}. What to do: {hint}")


def structure_counts(df: pd.DataFrame) -> dict[str, int]:
    """How many ``ok`` frames used each structure source ("labels", "inferred", "unknown")."""
    ok = df[df["status"] == "ok"]
    return {str(k): int(v) for k, v in ok["structure_source"].value_counts().sort_index().items()}


def summary_line(df: pd.DataFrame, seconds: float | None = None) -> str:
    """One human line: ``N frames: A ok, B skipped (invalid_pose 3, corrupt_payload 1); structure:
    labels A[, T s]``."""
    ok = int((df["status"] == "ok").sum())
    skipped = df[df["status"] != "ok"]
    reasons = ", ".join(f"{r} {n}" for r, n in skipped["reason"].value_counts().sort_index().items())
    line = f"{len(df)} frames: {ok} ok, {len(skipped)} skipped" + (f" ({reasons})" if reasons else "")
    counts = structure_counts(df)
    if counts:
        line += "; structure: " + ", ".join(f"{k} {v}" for k, v in counts.items())
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
    ap = command_parser("python -m pipeline.manifest", "Merge per-scene manifests, or summarise them.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("merge", help="merge per-scene manifests into one", formatter_class=HelpFormatter)
    m.add_argument("--out", required=True, help="the merged manifest (.parquet) to write")
    m.add_argument("inputs", nargs="+", help="manifests, scene folders or their done markers")
    s = sub.add_parser("summary", help="print frames kept/skipped by reason", formatter_class=HelpFormatter)
    s.add_argument("inputs", nargs="+", help="manifests, scene folders or their done markers")
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
    raise SystemExit(run_main(main, prog="python -m pipeline.manifest"))
