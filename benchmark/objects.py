"""The ``objects`` protocol: IoU, Chamfer-L1/L2 and normal consistency of single objects (SPEC §5.13).

Per test model of a prepared object manifest and per method (a folder of grids written by
``dgs_core.infer_objects``, ``<dir>/<dataset>/<synset>/<model>.npz``, cube frame):

- **IoU** over the model's stored uniform points of the cube (``objects.prepare.uniform_points``, 100k
  by default, as Occupancy Networks' ``points.npz``), ground truth from the watertight mesh (their
  stored labels), prediction = the grid's occupancy interpolated trilinearly at each point ≥ 0.5
  (the marching-cubes surface of :mod:`pipeline.geometry.isosurface` bounds the same set up to its per-edge
  linear interpolation). Points beyond the outer cell centres take the nearest cell's value.
- **Chamfer-L1/L2, normal consistency**: ``samples`` area-weighted points with face normals on the
  predicted mesh (marching cubes at 0.5, seed 1) and on the ground-truth mesh (seed 0), scored by
  :func:`benchmark.volumetric.surface_metrics`.

Writes ``per_model.csv`` (raw values, cube units), ``summary.csv`` and ``summary.md`` (mean *and*
median per method × synset and over all models; display scaling in the column names).

    python -m benchmark.objects --method NAME=DIR --manifest TEST_MANIFEST --root DATASET_ROOT --out DIR
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.ndimage import map_coordinates
from tqdm import tqdm

from pipeline.geometry.isosurface import extract_mesh
from benchmark.volumetric import (
    OBJECT_KEYS,
    oriented_samples,
    surface_metrics,
    volumetric_iou,
)
from pipeline.atomic import atomic_path, write_text_atomic
from pipeline.cli import command_parser
from pipeline.errors import run_main
from pipeline.formats import shapenet as sn
from pipeline.object_datasets import get_object_dataset
from pipeline.object_shards import ObjectShardReader, read_object_manifest

SAMPLES = 100_000
"""Surface samples per mesh (Occupancy Networks' ``MeshEvaluator(n_points=100000)``)."""
DISPLAY = {"iou": ("IoU", 1.0), "chamfer_l1": ("Chamfer-L1 ×10", 10.0), "chamfer_l2": ("Chamfer-L2 ×10³", 1e3),
           "normal_consistency": ("NC", 1.0)}
"""Column → (table name, factor): Chamfer-L1 in Occupancy Networks' unit (1/10 of the cube's edge)."""


def grid_inside(occupancy: np.ndarray, origin: np.ndarray, cell: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) bool: trilinear interpolation of the grid (values at ``origin + ijk·cell``) ≥ 0.5 at ``points``."""
    idx = ((np.asarray(points, dtype=np.float64) - origin) / cell).T
    values = map_coordinates(np.nan_to_num(occupancy.astype(np.float32)), idx, order=1, mode="nearest")
    return values >= 0.5


def score_model(grid: dict[str, np.ndarray] | None, gt_samples: tuple[np.ndarray, np.ndarray],
                iou_points: np.ndarray, iou_labels: np.ndarray, samples: int = SAMPLES) -> dict:
    """The :data:`benchmark.volumetric.OBJECT_KEYS` of one prediction (``grid``: occupancy, origin, cell in
    the cube frame; None = missing, all NaN) against the ground truth: its surface samples and normals
    (:func:`benchmark.volumetric.oriented_samples`, seed 0) and its labelled uniform points."""
    if grid is None:
        return {**{k: float("nan") for k in OBJECT_KEYS}, "reason": "missing_prediction"}
    occupancy, origin, cell = grid["occupancy"], grid["origin"], grid["cell"]
    vertices, faces = extract_mesh(occupancy, origin, cell)
    out = surface_metrics(*oriented_samples(vertices, faces, samples, seed=1), *gt_samples)
    out["iou"] = volumetric_iou(grid_inside(occupancy, origin, cell, iou_points), iou_labels.astype(bool))
    return out


def evaluate(methods: dict[str, Path], manifest: str | os.PathLike, root: str | os.PathLike,
             samples: int = SAMPLES) -> pd.DataFrame:
    """One row per method × ok test model (identity columns, then :data:`OBJECT_KEYS` and ``reason``)."""
    manifest, root = Path(manifest), Path(root)
    table = read_object_manifest(manifest).query("status == 'ok'")
    rows = []
    for rec in tqdm(list(table.itertuples()), desc="objects", unit="model"):
        vertices, faces = get_object_dataset(rec.dataset).mesh(root, rec.synset, rec.model_id)
        gt_samples = oriented_samples(sn.normalise_to_unit_cube(vertices)[0], faces, samples, seed=0)
        with ObjectShardReader((manifest.parent / rec.shard).resolve()) as reader:
            points = reader.read(int(rec.row), ("uniform_points", "uniform_labels"))
        for name, folder in methods.items():
            path = Path(folder) / rec.dataset / rec.synset / f"{rec.model_id}.npz"
            grid = dict(np.load(path)) if path.exists() else None
            scores = score_model(grid, gt_samples, points["uniform_points"], points["uniform_labels"], samples)
            rows.append({"method": name, "dataset": rec.dataset, "synset": rec.synset, "model_id": rec.model_id,
                         **scores})
    return pd.DataFrame(rows, columns=["method", "dataset", "synset", "model_id", *OBJECT_KEYS, "reason"])


def summarise(per_model: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Mean and median of every metric per method × synset and per method over all models (NaN skipped)."""
    names = names or {}
    groups = [((m, names.get(s, s)), g) for (m, s), g in per_model.groupby(["method", "synset"])]
    groups += [((m, "all"), g) for m, g in per_model.groupby("method")]
    rows = []
    for (method, category), group in groups:
        row = {"method": method, "category": category, "models": len(group)}
        for key, (title, factor) in DISPLAY.items():
            row[f"{title} mean"] = factor * group[key].mean()
            row[f"{title} median"] = factor * group[key].median()
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    ap = command_parser("python -m benchmark.objects", __doc__.splitlines()[0])
    ap.add_argument("--method", nargs="+", required=True, metavar="NAME=DIR", help="prediction folders by method")
    ap.add_argument("--manifest", required=True, help="prepared object test manifest")
    ap.add_argument("--root", required=True, help="the object dataset's root (ground-truth meshes)")
    ap.add_argument("--samples", type=int, default=SAMPLES, help="surface samples per mesh")
    ap.add_argument("--out", required=True, help="output folder: per_model.csv and the tables")
    a = ap.parse_args(argv)
    methods = {}
    for item in a.method:
        name, sep, folder = item.partition("=")
        if not sep or not name:
            print(f"benchmark.objects: --method {item!r}: expected NAME=DIR", file=sys.stderr)
            return 2
        methods[name] = Path(folder)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    per_model = evaluate(methods, a.manifest, a.root, a.samples)
    summary = summarise(per_model, sn.read_metadata(a.root))
    for name, frame in (("per_model.csv", per_model), ("summary.csv", summary)):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    write_text_atomic(out / "summary.md", summary.to_markdown(index=False, floatfmt=".3f") + "\n")
    print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main, prog="python -m benchmark.objects"))
