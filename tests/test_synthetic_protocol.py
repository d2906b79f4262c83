"""What the synthetic apartments must exercise in the protocol, checked against the analytic layout:
amodal depth that cuts what lies behind walls (doorway scenes), and near-surface labels of
composite furniture that follow the camera side."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import open3d as o3d
import pandas as pd
import pytest

from pipeline.formats import scannet as sn
from pipeline.frames import PrepareConfig, RawFrame, SceneGeometry, prepare_frame
from pipeline.geometry.camera import pixel_directions
from pipeline.shards import ShardReader
from pipeline.synthetic.categories import STRUCTURE_IDS
from pipeline.synthetic.generate import read_layout, scannet_layout_path
from pipeline.synthetic.render import PinholeCamera, SceneRenderer
from pipeline.synthetic.scene import make_scene
from pipeline.synthetic.solids import any_contains
from pipeline.synthetic.structure import ray_rectangles
from pipeline.synthetic.trajectory import handheld_scan


def _structure_hits(layout, t_cw: np.ndarray, intrinsics: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, S) analytic ray parameters (= z-depth) of every pixel ray with every structure
    rectangle of the layout (inf = miss), for a frame's world_to_camera and pixel intrinsics."""
    rot, trans = t_cw[:3, :3].astype(np.float64), t_cw[:3, 3].astype(np.float64)
    centre = -rot.T @ trans
    dirs = pixel_directions(width, height, intrinsics) @ rot  # camera -> world, camera z = 1
    walls = [s for s in layout.surfaces if s.label in STRUCTURE_IDS]
    return ray_rectangles(walls, centre, dirs.reshape(-1, 3)).reshape(height, width, -1)


def test_doorway_scenes_amodal_depth_is_the_analytic_first_structure_hit(prepared_tiny):
    """In every labelled frame the shards' amodal depth equals the first structure hit computed from
    the layout (a ray that enters an apartment always meets structure again, so it is nearer than the
    farthest hit); in doorway views it lies in another room, and for many pixels it is nearer than
    the farthest hit, so the amodal scope cuts what lies behind the walls."""
    rows = 0
    cut = []
    through_doorway = 0
    for split in ("train", "val"):
        manifest = pd.read_parquet(prepared_tiny.manifest("scannet", split))
        manifest = manifest[manifest.status == "ok"]
        for scene, frames in manifest.groupby("scene_id"):
            layout = read_layout(scannet_layout_path(prepared_tiny.scannet_root, scene))
            folder = prepared_tiny.manifest("scannet", split).parent
            for frame in frames.itertuples():
                with ShardReader(folder / frame.shard) as reader:
                    s = reader[int(frame.row)]
                h, w = s.amodal_depth.shape
                t = _structure_hits(layout, s.world_to_camera, s.intrinsics, w, h)
                first = t.min(axis=2)
                last = np.where(np.isfinite(t), t, -np.inf).max(axis=2)
                analytic = np.where(np.isfinite(first), first, np.nan)
                amodal = s.amodal_depth.astype(np.float64)
                same = np.isclose(amodal, analytic, rtol=0, atol=2e-4) | (np.isnan(amodal) & np.isnan(analytic))
                assert same.mean() > 0.995, (scene, frame.frame_index, same.mean())
                rows += 1
                cut.append(np.mean(np.isfinite(first) & (first < last - 0.05) & same))
                t_cw = s.world_to_camera.astype(np.float64)
                centre = -t_cw[:3, :3].T @ t_cw[:3, 3]
                dirs = pixel_directions(w, h, s.intrinsics) @ t_cw[:3, :3]
                hit = centre + np.nan_to_num(analytic - 0.02)[..., None] * dirs  # just before the hit
                rooms = layout.room_of(hit.reshape(-1, 3)).reshape(h, w)
                here = layout.room_of(centre[None])[0]
                through_doorway += bool(np.mean((rooms >= 0) & (rooms != here)) > 0.03)
    assert rows >= 20
    assert np.mean(cut) > 0.15, np.mean(cut)  # amodal nearer than the farthest (structure) hit on this share of pixels
    assert through_doorway >= 2  # frames that see another room through a doorway


def _seen(scene: SceneGeometry, centre: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,) bool: the first hit of the ray from the camera centre to each surface point is that point,
    on the point's own face plane (not an edge of another face just in front of it)."""
    ray = points - centre
    dist = np.linalg.norm(ray, axis=1)
    rays = np.hstack([np.broadcast_to(centre, ray.shape), ray / dist[:, None]]).astype(np.float32)
    cast = scene.raycaster.cast_rays(o3d.core.Tensor(rays))
    t, hit_face = cast["t_hit"].numpy().astype(np.float64), cast["primitive_ids"].numpy().astype(np.int64)
    own = scene.raycaster.compute_closest_points(o3d.core.Tensor(points.astype(np.float32)))
    own_face = own["primitive_ids"].numpy().astype(np.int64)
    hit_face = np.where(np.isfinite(t), hit_face, own_face)
    n_hit, n_own = scene.normals[hit_face], scene.normals[own_face]
    coplanar = (np.abs(np.einsum("ij,ij->i", n_hit, n_own)) > 0.999) & (
        np.abs(np.einsum("ij,ij->i", n_hit, points - scene.vertices[scene.faces[hit_face, 0]])) < 1e-5)
    return np.isfinite(t) & (np.abs(t - dist) < 1e-3) & coplanar


@pytest.fixture(scope="module")
def furnished():
    """A 2-room apartment and the handheld frame that sees the most furniture."""
    layout, mesh = make_scene("scene0042_00", 4, edge_length=0.15, furniture_range=(5, 6), rooms_range=(2, 2))
    renderer = SceneRenderer(mesh, light=np.array([2.0, 2.0, 2.3]))
    camera = PinholeCamera(80, 60, 72.0, 72.0, 40.0, 30.0)
    path = handheld_scan(layout, 60, 0.0, np.random.default_rng(4))
    first_object = min(o.face_range[0] for o in layout.objects)
    share = [np.mean(renderer.cast(camera, pose).face >= first_object) for pose in path.camera_to_world]
    pose = path.camera_to_world[int(np.argmax(share))]
    frame = RawFrame(index=0, source_file="x.sens", camera_to_world=pose, color=renderer.color(camera, pose),
                     color_intrinsics=camera.matrix(), depth=None, depth_intrinsics=None)
    scene = SceneGeometry.from_mesh(mesh.vertices, mesh.faces, mesh.face_labels, (1, 2, 8, 9, 22))
    return layout, scene, frame, max(share)


def test_composite_furniture_labels_follow_the_camera_side(furnished):
    """Near-surface samples on visible surfaces: label 1 (occupied) exactly where the analytic
    occupancy of the layout says matter, for legs, boards, backs and cavities alike (offsets of 4 mm,
    thinner than any part); the occupied side is the one facing away from the camera."""
    layout, scene, frame, share = furnished
    assert share > 0.3
    cfg = PrepareConfig(width=64, height=48, focal=57.6, near_surface_points=4000, non_surface_points=64,
                        surface_offset=0.004)
    sample = prepare_frame(scene, frame, cfg, dataset="scannet", scene_id="s", split="train")
    base = prepare_frame(scene, frame, replace(cfg, surface_offset=1e-7), dataset="scannet", scene_id="s",
                         split="train")  # same random stream: the samples' points on the surface
    t_cw = sample.world_to_camera.astype(np.float64)

    def world(p):
        return (p.astype(np.float64) - t_cw[:3, 3]) @ t_cw[:3, :3]

    x, p = world(sample.near_surface_points), world(base.near_surface_points)
    centre = frame.camera_to_world[:3, 3]
    visible = _seen(scene, centre, p)
    labels = sample.near_surface_labels.astype(bool)
    on_object = np.zeros(len(x), bool)
    for obj in layout.objects:  # one of the two sides of the surface point is inside the object
        on_object |= any_contains(obj.parts, obj.to_local(x)) | any_contains(obj.parts, obj.to_local(2 * p - x))
    assert (visible & on_object).sum() > 300 and (visible & ~on_object).sum() > 300
    occupied = layout.occupancy(x)
    np.testing.assert_array_equal(labels[visible], occupied[visible])
    away = np.einsum("ij,ij->i", x - p, centre - p) < 0  # offset away from the camera
    np.testing.assert_array_equal(labels, away)
    # hidden samples (back faces, e.g. a shelf board's underside seen from above) follow the camera
    # side too, which there is the free side: the labels are not the occupancy everywhere
    assert (labels[~visible] != occupied[~visible]).any()


def test_label_tables_use_the_real_numbers(prepared_tiny):
    """ScanNet's `id` and Matterport's `index` of the categories used are those of the real files
    (e.g. ScanNet chair 2, floor 3; Matterport door 2, floor 4), and the house mesh stores them."""
    from pipeline.formats import matterport as mp

    table = sn.read_label_table(sn.label_table_path(prepared_tiny.scannet_root)).set_index("raw_category")
    assert {k: int(table.loc[k, "id"]) for k in ("wall", "chair", "floor", "table", "door", "couch", "ceiling")} == {
        "wall": 1, "chair": 2, "floor": 3, "table": 4, "door": 5, "couch": 6, "ceiling": 41}
    mapping = mp.read_category_mapping(mp.category_mapping_path(prepared_tiny.matterport_root))
    index = dict(zip(mapping["raw_category"], mapping["index"]))
    assert {k: index[k] for k in ("wall", "door", "ceiling", "floor", "window", "chair")} == {
        "wall": 1, "door": 2, "ceiling": 3, "floor": 4, "window": 6, "chair": 7}
    house = mp.read_house(prepared_tiny.matterport_root, mp.list_houses(prepared_tiny.matterport_root)[0])
    assert set(np.unique(house.mesh.face_labels).tolist()) >= {1, 2, 8, 9, 22}  # mapped back to NYU40
