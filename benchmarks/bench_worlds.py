"""What the synthetic worlds exercise, measured on a workflow's test frames (a check script, not a
speed benchmark): how often the amodal scope cuts, how often the two protocols disagree, and how far
the trained model is from the same network at initialisation.

    python benchmarks/bench_worlds.py --work data/prepared --root scannet=data/synthetic/scannet \\
        --root matterport=data/synthetic/matterport --resolution 64 --samples 50000

Per test set (one table row each, plus both together):
- **amodal cut**: the share of pixels with a mesh hit whose amodal depth (the shards', SPEC §4.3) is
  nearer than the farthest hit of the frame's scene mesh (Embree, all hits per ray). Unlabelled
  scenes (the ScanNet test split) take their structure from geometry (``structure_source`` =
  ``inferred``, SPEC §4.9); the same share with the structure taken from the generator's layout
  (``<scene>_layout.json``, the analytic truth of a synthetic scene) shows what labels would cut.
- **paper ≠ release**: the share of test frames whose fit F1 differs between the two protocols
  (SPEC §5.5), from evaluating the experiment's predictions (``<work>/predictions/<experiment>``).
- **F1 fit** of the trained model and of the same network at initialisation (its config and seed,
  no step taken: a step-0 checkpoint written by this script), both predicted and scored here with the
  same settings (protocol ``dgs-release``). An empty prediction counts as F1 = 0.
Writes ``<work>/bench_worlds/`` (init checkpoint, its predictions, ``per_frame.csv``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.evaluate import main as evaluate_main
from dgs_core.checkpoint import capture_rng, save_checkpoint
from dgs_core.distributed import init_rank
from dgs_core.experiment import load_experiment, to_dict
from dgs_core.infer import main as infer_main
from dgs_core.train import build
from pipeline.geometry.camera import pixel_directions
from pipeline.geometry.scene import SceneGeometry, depth_maps_listed
from pipeline.ground_truth import scene_mesh
from pipeline.shards import ShardReader
from pipeline.synthetic.categories import STRUCTURE_IDS
from pipeline.synthetic.generate import matterport_layout_path, read_layout, scannet_layout_path
from pipeline.synthetic.scene import SceneLayout
from pipeline.synthetic.structure import ray_rectangles
from pipeline.testset import list_test_frames

LAYOUTS = {"scannet": scannet_layout_path, "matterport": matterport_layout_path}


def amodal_cut(amodal: np.ndarray, farthest: np.ndarray, tolerance: float = 1e-3) -> tuple[int, int]:
    """(pixels with a hit, pixels whose amodal depth is nearer than the farthest hit by > tolerance m).
    amodal, farthest: (H, W) metres, NaN = no hit."""
    hit = np.isfinite(farthest)
    return int(hit.sum()), int((hit & (np.nan_to_num(amodal, nan=np.inf) < farthest - tolerance)).sum())


def farthest_hits(scene: SceneGeometry, world_to_camera: np.ndarray, intrinsics: np.ndarray,
                  width: int, height: int) -> np.ndarray:
    """(H, W) float32 farthest hit (z-depth, metres, NaN = none) of every pixel ray of a frame: the amodal
    depth of the mesh with no structure labels, which is the farthest hit by definition (SPEC §4.3).
    ``scene``: the scene mesh with no structure (``SceneGeometry.from_mesh(vertices, faces, None, ())``)."""
    t_cw = np.asarray(world_to_camera, dtype=np.float64)
    directions = pixel_directions(width, height, intrinsics) @ t_cw[:3, :3]
    return depth_maps_listed(scene, -t_cw[:3, :3].T @ t_cw[:3, 3], directions)[1]


def layout_structure_depth(layout: SceneLayout, world_to_camera: np.ndarray, intrinsics: np.ndarray,
                           width: int, height: int) -> np.ndarray:
    """(H, W) first structure hit (z-depth, metres, inf = none) of every pixel ray, from the layout's
    structure rectangles (exact)."""
    t_cw = np.asarray(world_to_camera, dtype=np.float64)
    directions = pixel_directions(width, height, intrinsics) @ t_cw[:3, :3]
    walls = [s for s in layout.surfaces if s.label in STRUCTURE_IDS]
    hits = ray_rectangles(walls, -t_cw[:3, :3].T @ t_cw[:3, 3], directions.reshape(-1, 3))
    return hits.min(axis=1).reshape(height, width)


def amodal_fraction(manifest: Path, dataset: str, root: Path) -> tuple[int, int, int, int]:
    """(test frames, pixels with a hit, pixels cut by the shards' amodal scope, pixels it would cut
    with the layout's structure) over a test manifest."""
    frames = list_test_frames(manifest, dataset, root)
    pixels = cut = cut_layout = 0
    scenes: dict[str, tuple[SceneGeometry, SceneLayout]] = {}  # mesh, BVH and layout once per scene
    for ref in frames:
        with ShardReader(ref.shard) as reader:
            row = reader.read(ref.row, ("amodal_depth", "world_to_camera", "intrinsics"))
        if ref.scene_id not in scenes:
            vertices, faces = scene_mesh(dataset, root, ref.scene_id)
            scenes[ref.scene_id] = (SceneGeometry.from_mesh(vertices, faces, None, ()),
                                    read_layout(LAYOUTS[dataset](root, ref.scene_id)))
        scene, layout = scenes[ref.scene_id]
        h, w = row["amodal_depth"].shape
        far = farthest_hits(scene, row["world_to_camera"], row["intrinsics"], w, h)
        n, c = amodal_cut(row["amodal_depth"], far)
        structure = layout_structure_depth(layout, row["world_to_camera"], row["intrinsics"], w, h)
        cut_layout += amodal_cut(np.fmin(structure, far), far)[1]
        pixels, cut = pixels + n, cut + c
    return len(frames), pixels, cut, cut_layout


def protocols_differ(per_frame: pd.DataFrame, method: str) -> pd.Series:
    """Per dataset: the share of frames whose fit F1 under ``dgs-paper`` differs from ``dgs-release``
    (a NaN on one side only counts as a difference)."""
    rows = per_frame[per_frame.method == method]
    wide = rows.set_index(["dataset", "scene_id", "frame_index", "protocol"]).fit_f1.unstack("protocol")
    paper, release = wide["dgs-paper"], wide["dgs-release"]
    differ = ~((paper == release) | (paper.isna() & release.isna()))
    return differ.groupby(level="dataset").mean()


def mean_f1(per_frame: pd.DataFrame, method: str, protocol: str) -> pd.Series:
    """Per dataset: the mean fit F1 of ``method`` under ``protocol``, an empty prediction scoring 0."""
    rows = per_frame[(per_frame.method == method) & (per_frame.protocol == protocol)]
    return rows.assign(f1=rows.fit_f1.fillna(0.0)).groupby("dataset").f1.mean()


def write_init_checkpoint(run: Path, out: Path) -> Path:
    """The network of run folder ``run`` at initialisation (its resolved config and seed, no step)."""
    exp = load_experiment([run / "config.yaml"])
    net, _module, _opt, _scaler = build(exp, torch.device("cpu"), init_rank("cpu")[0])
    return save_checkpoint(out, model=net, step=0, epoch=0, position=0, config=to_dict(exp), rng=capture_rng())


def run(work: Path, roots: dict[str, Path], experiment: str, resolution: int, samples: int,
        workers: int) -> pd.DataFrame:
    """Measure everything (module docstring) and return the table, one row per test set."""
    bench = work / "bench_worlds"
    init = write_init_checkpoint(work / "models" / experiment, bench / "init.pt")
    methods = ["--method", f"{experiment}={work / 'predictions' / experiment}", "--method",
               f"init={bench / 'predictions'}"]
    sets = []
    for dataset, root in roots.items():
        manifest = work / dataset / "test" / "manifest.parquet"
        infer_main(["--checkpoint", str(init), "--manifest", str(manifest), "--root", str(root), "--out",
                    str(bench / "predictions"), "--name", "init", "--resolution", str(resolution), "--device", "cpu"])
        sets += ["--manifest", f"{dataset}={manifest}", "--root", f"{dataset}={root}"]
    evaluate_main(methods + sets + ["--protocols", "dgs-release", "dgs-paper", "--samples", str(samples), "--out",
                                    str(bench), "--workers", str(workers)])
    per_frame = pd.read_csv(bench / "per_frame.csv")
    differ = protocols_differ(per_frame, experiment)
    trained, start = mean_f1(per_frame, experiment, "dgs-release"), mean_f1(per_frame, "init", "dgs-release")
    rows = []
    for dataset, root in roots.items():
        frames, pixels, cut, cut_layout = amodal_fraction(work / dataset / "test" / "manifest.parquet", dataset, root)
        rows.append({"test set": dataset, "frames": frames, "pixels": pixels, "cut": cut, "cut_layout": cut_layout,
                     "differ": differ.get(dataset, np.nan) * frames, "f1": trained.get(dataset, np.nan) * frames,
                     "f1_init": start.get(dataset, np.nan) * frames})
    table = pd.DataFrame(rows)
    table = pd.concat([table, table.sum(numeric_only=True).to_frame().T.assign(**{"test set": "all"})])
    return pd.DataFrame({
        "test set": table["test set"], "frames": table.frames.astype(int),
        "amodal < farthest hit [%]": 100 * table.cut / table.pixels,
        "… with the layout's structure [%]": 100 * table.cut_layout / table.pixels,
        "paper ≠ release F1 [% frames]": 100 * table.differ / table.frames,
        "F1 fit, trained [%]": 100 * table.f1 / table.frames,
        "F1 fit, at init [%]": 100 * table.f1_init / table.frames,
        "F1 gain [points]": 100 * (table.f1 - table.f1_init) / table.frames}).round(1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("data/prepared"), help="the workflow's work_root")
    p.add_argument("--root", action="append", metavar="DATASET=PATH",
                   help="raw root per test set (default: data/synthetic/scannet and .../matterport)")
    p.add_argument("--experiment", default="dgs", help="trained experiment (models/<name>, predictions/<name>)")
    p.add_argument("--resolution", type=int, default=64, help="grid cells per axis (as the workflow's predict)")
    p.add_argument("--samples", type=int, default=50000, help="points per mesh (as the workflow's evaluate)")
    p.add_argument("--workers", type=int, default=2, help="evaluation processes")
    a = p.parse_args(argv)
    pairs = a.root or ["scannet=data/synthetic/scannet", "matterport=data/synthetic/matterport"]
    roots = {k: Path(v) for k, _, v in (x.partition("=") for x in pairs)}
    missing = [str(a.work / "models" / a.experiment / "config.yaml")] if not (a.work / "models" / a.experiment).is_dir() else []
    missing += [str(a.work / d / "test" / "manifest.parquet") for d in roots
                if not (a.work / d / "test" / "manifest.parquet").is_file()]
    if missing:
        print(f"bench_worlds: missing {missing}; run the workflow first (make demo)", file=sys.stderr)
        return 2
    table = run(a.work, roots, a.experiment, a.resolution, a.samples, a.workers)
    print(table.to_markdown(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
