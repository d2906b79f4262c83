"""Structure inference checked against labels (SPEC §4.9): face-area IoU and amodal-depth agreement.

For every labelled scene, the floor, walls and ceiling are inferred from the geometry alone
(``pipeline.geometry.structure.infer_structure``) and compared with the faces whose NYU40 label is
a structure class (``prepare.structure_labels``: wall, floor, door, window, ceiling):

- IoU = area(inferred ∩ labelled) / area(inferred ∪ labelled) over the mesh faces;
- amodal agreement: for K frames per scene (valid poses, evenly spaced) the amodal depth of the
  virtual camera (256×192, f = 230.4) is rendered once with each structure set
  (``pipeline.geometry.raster``); the share of pixels with a labels-amodal depth whose inferred
  amodal depth lies within 5 cm of it (a pixel with only one of the two counts as a disagreement);
- structure-hit agreement, stricter: the same for the depth of the first structure hit alone. Where
  a wall is also the farthest hit, a missed wall costs the amodal depth nothing; it does cost this
  number (and the amodal depth wherever something lies behind the wall: a room seen through a
  doorway, a facade through a window).

Goals: IoU ≥ 0.90 and ≥ 95 % of pixels. Scenes come from the scene generator in memory (default;
today's apartments of 2–4 rooms, ``--preset`` sets the triangle size and room count) or from any labelled ScanNet-layout root
(``--root``: scans/<scene>/<scene>_vh_clean_2{,.labels}.ply and <scene>.sens for the poses), e.g. one
written by ``python -m pipeline.synthetic`` after the generator changes, or real ScanNet train/val.
``--noise`` (vertex jitter, metres) and ``--yaw`` (each scene turned about +Z by a random angle)
make the generated apartments less ideal than their exact, axis-aligned planes.

    python benchmarks/bench_structure.py                                   # 6 demo-density apartments
    python benchmarks/bench_structure.py --noise 0.01 --yaw                # jittered, rotated
    python benchmarks/bench_structure.py --root data/synthetic/scannet --splits train val
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.geometry.camera import virtual_intrinsics
from pipeline.geometry.raster import depth_maps_raster, structure_depth_raster
from pipeline.geometry.scene import SceneGeometry
from pipeline.geometry.structure import face_geometry, infer_structure
from pipeline.prepare_config import PrepareConfig

TOLERANCE = 0.05  # metres: an inferred amodal depth this close to the labels' one agrees
GOAL_IOU, GOAL_PIXELS = 0.90, 0.95


@dataclass
class LabelledScene:
    """World mesh (+Z up, metres), NYU40 face labels and camera-to-world poses (N, 4, 4) OpenCV."""

    scene_id: str
    vertices: np.ndarray
    faces: np.ndarray
    face_labels: np.ndarray
    poses: np.ndarray


def structure_iou(areas: np.ndarray, labelled: np.ndarray, inferred: np.ndarray) -> float:
    """Face-area IoU of two structure sets: areas (F,) m², labelled and inferred (F,) bool."""
    union = areas[labelled | inferred].sum()
    return float(areas[labelled & inferred].sum() / union) if union > 0 else float("nan")


def amodal_agreement(by_labels: np.ndarray, inferred: np.ndarray, tolerance: float = TOLERANCE) -> tuple[int, int]:
    """(agreeing pixels, pixels with a labels-amodal depth) of two (H, W) amodal maps, metres, NaN =
    none: agree where both are finite and |inferred − labels| ≤ tolerance."""
    have = np.isfinite(by_labels)
    with np.errstate(invalid="ignore"):
        agree = have & np.isfinite(inferred) & (np.abs(inferred - by_labels) <= tolerance)
    return int(agree.sum()), int(have.sum())


def evaluate_scene(scene: LabelledScene, cfg: PrepareConfig, frames: int) -> dict:
    """IoU and amodal agreement of one scene over ``frames`` evenly spaced valid poses."""
    t0 = time.perf_counter()
    found = infer_structure(scene.vertices, scene.faces)
    seconds = time.perf_counter() - t0
    labelled = np.isin(scene.face_labels, cfg.structure_labels)
    _, areas, _ = face_geometry(scene.vertices, scene.faces)
    k = virtual_intrinsics(cfg.width, cfg.height, cfg.focal)
    geometries = [SceneGeometry.from_mesh(scene.vertices, scene.faces, None, (), structure=mask)
                  for mask in (labelled, found.mask)]
    valid = np.flatnonzero(np.isfinite(scene.poses).all(axis=(1, 2)))
    chosen = valid[np.round(np.linspace(0, len(valid) - 1, min(frames, len(valid)))).astype(int)] if len(valid) else []
    counts = np.zeros(4, dtype=np.int64)  # amodal: agree, pixels; structure hit: agree, pixels
    for i in chosen:
        t_cw = np.linalg.inv(scene.poses[i])
        amodal = [depth_maps_raster(g.vertices, g.chunks, t_cw, k, cfg.width, cfg.height)[1] for g in geometries]
        hits = [structure_depth_raster(g.vertices, g.chunks, t_cw, k, cfg.width, cfg.height) for g in geometries]
        counts += [*amodal_agreement(*amodal), *amodal_agreement(*hits)]
    return {"scene": scene.scene_id, "faces": len(scene.faces), "iou": structure_iou(areas, labelled, found.mask),
            "agree": counts[0], "pixels": counts[1], "hit_agree": counts[2], "hit_pixels": counts[3],
            "frames": len(chosen), "seconds": seconds, "walls": found.walls}


def perturbed(scene: LabelledScene, noise: float, yaw: bool, rng: np.random.Generator) -> LabelledScene:
    """The scene with Gaussian vertex noise (σ = ``noise`` m) and, with ``yaw``, turned about +Z (poses too)."""
    vertices = scene.vertices + rng.normal(0.0, noise, scene.vertices.shape) if noise > 0 else scene.vertices
    poses = scene.poses
    if yaw:
        angle = rng.uniform(0, 2 * np.pi)
        turn = np.eye(4)
        turn[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        vertices = vertices @ turn[:3, :3].T
        poses = turn @ poses
    return LabelledScene(scene.scene_id, vertices, scene.faces, scene.face_labels, poses)


def generated_scenes(preset_name: str, count: int, frames: int, seed: int) -> Iterator[LabelledScene]:
    """``count`` apartments of today's generator at the preset's triangle size, with its handheld poses."""
    from pipeline.synthetic.config import preset
    from pipeline.synthetic.scene import make_scene
    from pipeline.synthetic.trajectory import handheld_scan

    cfg = preset(preset_name)
    for i in range(count):
        scene_id = f"scene{i:04d}_00"
        layout, mesh = make_scene(scene_id, seed, cfg.edge_length, (cfg.furniture_min, cfg.furniture_max),
                                  (cfg.rooms_min, cfg.rooms_max), cfg.inner_walls)
        path = handheld_scan(layout, max(frames, 2), 0.0, np.random.default_rng([seed, i]))
        yield LabelledScene(scene_id, mesh.vertices.astype(np.float64), mesh.faces, mesh.face_labels,
                            path.camera_to_world)


def root_scenes(root: Path, splits: list[str], count: int) -> Iterator[LabelledScene]:
    """Up to ``count`` labelled scenes of a ScanNet-layout root's splits (mesh, labels, .sens poses)."""
    from pipeline.datasets import DATASETS
    from pipeline.formats import scannet as sn
    from pipeline.formats.sens import SensReader
    from pipeline.sources import check_mesh

    ids = [s for split in splits for s in DATASETS["scannet"].scenes(root, split)][:count]
    for scene_id in ids:
        paths = sn.scene_paths(root, scene_id)
        mesh = sn.read_scene_mesh(paths, with_labels=True)
        faces, labels, _ = check_mesh(paths.mesh, mesh.vertices, mesh.faces, mesh.face_labels)
        with SensReader(paths.sens) as reader:
            poses = reader.poses.astype(np.float64)
        yield LabelledScene(scene_id, np.asarray(mesh.vertices, np.float64), faces, labels, poses)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="labelled ScanNet-layout root (default: generate in memory)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"], help="splits of --root")
    parser.add_argument("--preset", default="demo", help="generator preset (triangle size, furniture)")
    parser.add_argument("--scenes", type=int, default=6, help="scenes at most")
    parser.add_argument("--frames", type=int, default=10, help="frames per scene for the amodal check")
    parser.add_argument("--noise", type=float, default=0.0, help="vertex jitter σ, metres")
    parser.add_argument("--yaw", action="store_true", help="turn each scene by a random angle about +Z")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = PrepareConfig()
    scenes = (root_scenes(args.root, args.splits, args.scenes) if args.root
              else generated_scenes(args.preset, args.scenes, args.frames, args.seed))
    rng = np.random.default_rng(args.seed)
    rows = [evaluate_scene(perturbed(s, args.noise, args.yaw, rng), cfg, args.frames) for s in scenes]
    if not rows:
        print("bench_structure: no labelled scene found", file=sys.stderr)
        return 2
    source = str(args.root) if args.root else f"generator preset {args.preset!r} (in memory)"
    print(f"structure inference vs NYU40 labels {list(cfg.structure_labels)}; {source}; noise {args.noise} m, "
          f"yaw {'random' if args.yaw else 'none'}; amodal at {cfg.width}×{cfg.height}, tolerance {TOLERANCE} m")
    print(f"{'scene':14s} {'faces':>8s} {'walls':>5s} {'IoU':>7s} {'amodal ≤5 cm':>13s} {'hit ≤5 cm':>10s} "
          f"{'frames':>6s} {'infer s':>8s}")

    def share(rows: list[dict], key: str) -> float:
        total = sum(r[key.replace("agree", "pixels")] for r in rows)
        return 100 * sum(r[key] for r in rows) / total if total else float("nan")

    for r in rows:
        print(f"{r['scene']:14s} {r['faces']:8d} {r['walls']:5d} {r['iou']:7.4f} {share([r], 'agree'):12.2f}% "
              f"{share([r], 'hit_agree'):9.2f}% {r['frames']:6d} {r['seconds']:8.2f}")
    iou = float(np.mean([r["iou"] for r in rows]))
    print(f"{'all':14s} {'':8s} {'':5s} {iou:7.4f} {share(rows, 'agree'):12.2f}% {share(rows, 'hit_agree'):9.2f}%"
          f"   (mean IoU; pixel shares over all frames)")
    met = iou >= GOAL_IOU and share(rows, "agree") >= 100 * GOAL_PIXELS
    print(f"goal IoU ≥ {GOAL_IOU} and ≥ {100 * GOAL_PIXELS:.0f} % of pixels: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
