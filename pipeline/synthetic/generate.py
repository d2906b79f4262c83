"""Write synthetic ScanNet v2 and Matterport3D datasets in their genuine on-disk formats.

All bytes go through the writers of `pipeline.formats`; this module only decides what to write.
A dataset is built in `<root>.partial/`, renamed to `<root>/` when every file is written, and
only then marked finished by `<root>.complete` (JSON of the config), so a killed run never looks
finished. Re-running with the same config writes identical bytes.
"""
from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from pipeline.atomic import write_bytes_atomic, write_text_atomic
from pipeline.formats import matterport as mp
from pipeline.formats import scannet as sn
from pipeline.formats.images import encode_jpeg
from pipeline.formats.ply import write_ply
from pipeline.formats.sens import SensWriter

from .categories import CATEGORIES
from .config import (MATTERPORT_INTRINSICS, MATTERPORT_SIZE, SCANNET_COLOR_INTRINSICS,
                     SCANNET_COLOR_SIZE, SCANNET_DEPTH_INTRINSICS, SCANNET_DEPTH_SIZE,
                     GeneratorConfig)
from .render import PinholeCamera, SceneRenderer, SensorModel
from .scene import SceneLayout, SceneMesh, make_scene
from .trajectory import handheld_scan, panorama_centres, panorama_poses

FIRST_TEST_SCENE = 707  # the real ScanNet v2 test split is scene0707_00 .. scene0806_00
_ALPHANUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def marker_path(root: str | Path) -> Path:
    """`<root>.complete`: exists only once the dataset at `root` is completely written."""
    root = Path(root)
    return root.parent / f"{root.name}.complete"


def is_complete(root: str | Path, config: GeneratorConfig) -> bool:
    """True when `root` was completely generated with exactly `config`."""
    marker = marker_path(root)
    if not (marker.is_file() and Path(root).is_dir()):
        return False
    try:
        return json.loads(marker.read_text())["config"] == config.to_dict()
    except (ValueError, KeyError):
        return False


@contextmanager
def _atomic_dataset(root: Path, config: GeneratorConfig) -> Iterator[Path]:
    """Yield an empty `<root>.partial` to fill; on success replace `root` with it and write the
    marker. A stale partial folder from a killed run is deleted first."""
    partial = root.parent / f"{root.name}.partial"
    marker = marker_path(root)
    marker.unlink(missing_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    yield partial
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    write_text_atomic(marker, json.dumps({"config": config.to_dict()}, indent=1, sort_keys=True) + "\n")


def scannet_layout_path(root: str | Path, scene_id: str) -> Path:
    """The analytic layout sidecar of a generated ScanNet scene (`<scene dir>/<id>_layout.json`).
    For tests of later stages only: it is not part of ScanNet and the pipeline never reads it."""
    return sn.scene_paths(root, scene_id).directory / f"{scene_id}_layout.json"


def matterport_layout_path(root: str | Path, house_id: str) -> Path:
    """The analytic layout sidecar of a generated Matterport house (`<root>/<house>/<house>_layout.json`)."""
    return mp.house_paths(root, house_id).directory / f"{house_id}_layout.json"


def read_layout(path: str | Path) -> SceneLayout:
    """Load a layout sidecar written by the generator."""
    return SceneLayout.from_json(Path(path).read_text(encoding="utf-8"))


def _rng(seed: int, key: str, *numbers: int) -> np.random.Generator:
    """Independent stream for (seed, key, numbers): same inputs, same numbers, on any machine."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key.encode(), *numbers]))


def _scene(scene_id: str, config: GeneratorConfig) -> tuple[SceneLayout, SceneMesh, SceneRenderer]:
    layout, mesh = make_scene(scene_id, config.seed, config.edge_length,
                              (config.furniture_min, config.furniture_max), (config.rooms_min, config.rooms_max),
                              config.inner_walls)
    lx, ly, h = layout.room_size
    renderer = SceneRenderer(mesh, light=np.array([lx / 2, ly / 2, h - 0.3]))
    return layout, mesh, renderer


def _sensor(config: GeneratorConfig) -> SensorModel:
    return SensorModel(config.depth_noise, config.hole_blobs, config.hole_radius,
                       config.grazing_dropout_deg, config.depth_max_range)


# -- ScanNet ----------------------------------------------------------------------------------------
def scannet_split_ids(config: GeneratorConfig) -> dict[str, list[str]]:
    """Scene ids per split: train then val numbered from scene0000_00, test from scene0707_00."""
    n_train, n_val = config.scannet_train, config.scannet_val
    return {"train": [f"scene{i:04d}_00" for i in range(n_train)],
            "val": [f"scene{i:04d}_00" for i in range(n_train, n_train + n_val)],
            "test": [f"scene{FIRST_TEST_SCENE + i:04d}_00" for i in range(config.scannet_test)]}


def _label_rows(counts: dict[int, int]) -> list[dict]:
    """scannetv2-labels.combined.tsv rows: the real `id` and names of each category used, sorted by id."""
    rows = [{"id": c.scannet_id, "raw_category": c.scannet_raw, "category": c.scannet_raw,
             "count": counts.get(c.nyu40id, 0), "nyu40id": c.nyu40id, "eigen13id": c.eigen13id,
             "nyuClass": c.nyu_class, "nyu40class": sn.NYU40_NAMES[c.nyu40id],
             "eigen13class": c.eigen13class, "mpcat40": c.mpcat40, "mpcat40index": c.mpcat40index}
            for c in CATEGORIES]
    return sorted(rows, key=lambda r: r["id"])


def _write_scannet_scene(root: Path, scene_id: str, test: bool, config: GeneratorConfig,
                         progress: bool) -> SceneLayout:
    paths = sn.scene_paths(root, scene_id, test=test)
    paths.directory.mkdir(parents=True)
    layout, mesh, renderer = _scene(scene_id, config)
    colors = {"red": mesh.vertex_colors[:, 0], "green": mesh.vertex_colors[:, 1],
              "blue": mesh.vertex_colors[:, 2], "alpha": np.full(len(mesh.vertices), 255, np.uint8)}
    write_ply(paths.mesh, mesh.vertices, mesh.faces, vertex_data=colors)
    if not test:  # the real test release has no labels
        write_ply(paths.labels_mesh, mesh.vertices, mesh.faces,
                  vertex_data={**colors, "label": mesh.vertex_labels.astype(np.uint16)})
    layout.write(paths.directory / f"{scene_id}_layout.json")
    color_cam = PinholeCamera.scaled(SCANNET_COLOR_SIZE, SCANNET_COLOR_INTRINSICS, config.color_size)
    depth_cam = PinholeCamera.scaled(SCANNET_DEPTH_SIZE, SCANNET_DEPTH_INTRINSICS, config.depth_size)
    path = handheld_scan(layout, config.frames_per_scene, config.invalid_pose_fraction,
                         _rng(config.seed, scene_id, 1))
    stored = path.stored_poses()
    sensor = _sensor(config)
    with SensWriter(paths.sens, color_intrinsics=color_cam.matrix(),
                    depth_intrinsics=depth_cam.matrix(), color_size=config.color_size,
                    depth_size=config.depth_size, depth_shift=1000.0,
                    sensor_name="StructureSensor", jpeg_quality=config.jpeg_quality) as writer:
        frames = tqdm(range(len(stored)), desc=scene_id, unit="frame", disable=not progress)
        for i in frames:
            pose = path.camera_to_world[i]  # images exist even where tracking (the pose) failed
            color = renderer.color(color_cam, pose)
            depth = sensor.apply(renderer.cast(depth_cam, pose), _rng(config.seed, scene_id, 2, i))
            writer.add_frame(stored[i], color, depth)
    return layout


def generate_scannet(root: str | Path, config: GeneratorConfig, *, progress: bool = True) -> Path:
    """Write a ScanNet v2 root at `root` (scans/, scans_test/, label table, split lists).

    Each scene folder holds `<id>.sens` (JPEG colour at `config.color_size`, zlib depth in mm at
    `config.depth_size`, ScanNet intrinsics rescaled, camera-to-world per frame, some -inf),
    `<id>_vh_clean_2.ply` (binary, vertex colours), for train/val `<id>_vh_clean_2.labels.ply`
    (same geometry + per-vertex NYU40 `label`), and `<id>_layout.json` (analytic truth for tests;
    not part of ScanNet). Returns `root`; `<root>.complete` marks it finished.
    """
    root = Path(root)
    splits = scannet_split_ids(config)
    counts: dict[int, int] = {}
    with _atomic_dataset(root, config) as partial:
        for split, ids in splits.items():
            for scene_id in ids:
                layout = _write_scannet_scene(partial, scene_id, split == "test", config, progress)
                for part in list(layout.surfaces) + list(layout.objects):
                    counts[part.label] = counts.get(part.label, 0) + 1
            sn.write_split(partial, split, ids)
        sn.write_label_table(sn.label_table_path(partial), _label_rows(counts))
    return root


# -- Matterport3D -----------------------------------------------------------------------------------
def _mapping_rows() -> list[dict]:
    """category_mapping.tsv rows: the real `index` and names of each category used, sorted by index.
    A row's `index` is what the house mesh stores as category_id."""
    rows = [{"index": c.matterport_index, "raw_category": c.matterport_raw, "category": c.matterport_raw,
             "count": 1, "nyuId": c.nyu_id, "nyu40id": c.nyu40id, "eigen13id": c.eigen13id,
             "nyuClass": c.nyu_class, "nyu40class": sn.NYU40_NAMES[c.nyu40id],
             "eigen13class": c.eigen13class, "mpcat40index": c.mpcat40index, "mpcat40": c.mpcat40}
            for c in CATEGORIES]
    return sorted(rows, key=lambda r: r["index"])


def matterport_house_ids(config: GeneratorConfig) -> list[str]:
    """House ids in Matterport's style (11 alphanumerics), deterministic from the seed."""
    rng = _rng(config.seed, "matterport-houses")
    return [''.join(rng.choice(list(_ALPHANUM), 11)) for _ in range(config.matterport_houses)]


def _write_house(root: Path, house_id: str, config: GeneratorConfig, progress: bool) -> None:
    paths = mp.house_paths(root, house_id)
    for folder in (paths.color_dir, paths.depth_dir, paths.conf.parent):
        folder.mkdir(parents=True)
    layout, mesh, renderer = _scene(house_id, config)
    category_index = {c.nyu40id: c.matterport_index for c in CATEGORIES}
    mp.write_house_mesh(paths.mesh, mesh.vertices, mesh.faces,
                        np.array([category_index[int(x)] for x in mesh.face_labels], np.int32),
                        vertex_colors=mesh.vertex_colors, face_segment_ids=mesh.face_parts)
    layout.write(paths.directory / f"{house_id}_layout.json")
    camera = PinholeCamera.scaled(MATTERPORT_SIZE, MATTERPORT_INTRINSICS, config.matterport_size)
    rng = _rng(config.seed, house_id, 3)
    centres = panorama_centres(layout, config.panoramas_per_house, rng)
    sensor = _sensor(config)
    cameras: list[mp.MatterportCamera] = []
    for centre in centres:
        pano = rng.bytes(16).hex()
        poses = panorama_poses(centre, config.camera_pitches_deg, float(rng.uniform(0, 60)))
        for k in range(poses.shape[0]):
            for j in range(poses.shape[1]):
                cameras.append(mp.MatterportCamera(len(cameras), pano, k, j, f"{pano}_d{k}_{j}.png",
                                                   f"{pano}_i{k}_{j}.jpg", camera.matrix(), poses[k, j]))
    for cam in tqdm(cameras, desc=house_id, unit="image", disable=not progress):
        hits = renderer.cast(camera, cam.camera_to_world)
        write_bytes_atomic(paths.color_path(cam), 
            encode_jpeg(renderer.shade(hits, cam.camera_to_world), config.jpeg_quality))
        mp.write_depth_png(paths.depth_path(cam),
                           sensor.apply(hits, _rng(config.seed, house_id, 4, cam.index)))
    mp.write_conf(paths.conf, cameras)


def generate_matterport(root: str | Path, config: GeneratorConfig, *, progress: bool = True) -> Path:
    """Write a Matterport3D v1 root at `root`: `metadata/category_mapping.tsv` and per house
    `house_segmentations/<house>.ply` (per-face category_id, segment_id), the undistorted camera
    `.conf`, colour JPEGs `<pano>_i<cam>_<yaw>.jpg` and 16-bit depth PNGs `<pano>_d<cam>_<yaw>.png`
    for 3 cameras (up, level, down) x 6 yaws per panorama, plus `<house>/<house>_layout.json`.
    Returns `root`; `<root>.complete` marks it finished."""
    root = Path(root)
    with _atomic_dataset(root, config) as partial:
        mp.write_category_mapping(mp.category_mapping_path(partial), _mapping_rows())
        for house_id in matterport_house_ids(config):
            _write_house(partial, house_id, config, progress)
    return root
