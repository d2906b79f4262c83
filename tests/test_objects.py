"""Synthetic objects → object shards → training items → object-protocol predictions and scores:
inside/outside by winding number against analytic solids, deterministic files, the camera chain
(normalisation composed with the views' cameras) against the rendered depth, and a stand-in field
that knows the ground truth scoring near-perfectly through infer_objects + benchmark.objects."""
import hashlib
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmark.objects import evaluate, summarise
from dgs_core.data import DataConfig, ShardDataset
from dgs_core.infer_objects import predict_objects
from dgs_core.object_data import ObjectShardDataset, open_dataset
from pipeline.formats import shapenet as sn
from pipeline.geometry.winding import inside_mesh, winding_numbers
from pipeline.object_shards import ObjectShardReader, read_object_manifest
from pipeline.prepare_objects import ObjectPrepareConfig, load_object_prepare_section, prepare_split
from pipeline.synthetic.objects import CATEGORIES, PRESETS, ObjectGeneratorConfig, generate_objects
from pipeline.synthetic.primitives import box, cylinder, merge

CFG = ObjectGeneratorConfig(categories=("chair", "lamp"), train=2, val=1, test=1, views=2, image_size=40)
PREP = ObjectPrepareConfig(uniform_points=3000, near_points=3000, near_sigma=1e-4, exclusion=0.02, models_per_shard=2)


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    base = tmp_path_factory.mktemp("objects")
    root = generate_objects(base / "shapenet", CFG, progress=False)
    for split in ("train", "test"):
        prepare_split("shapenet", root, split, base / "work", PREP, progress=False)
    return SimpleNamespace(root=root, work=base / "work", base=base)


def test_winding_number_matches_analytic_solids():
    a = box(np.array([1.0, 0.6, 0.4]), 0.3)  # overlapping boxes, one touching face, a cylinder prism
    b = (box(np.array([0.4, 0.4, 1.0]), 0.3)[0] + [0.3, 0.0, 0.2], box(np.array([0.4, 0.4, 1.0]), 0.3)[1])
    c = (box(np.array([0.3, 0.3, 0.3]), 0.3)[0] + [-0.65, 0.0, 0.0], box(np.array([0.3, 0.3, 0.3]), 0.3)[1])
    cv, cf = cylinder(0.2, 0.5, 0.3)
    d = (cv + [-0.2, 0.3, 0.5], cf)
    v, f = merge([a, b, c, d])
    p = np.random.default_rng(0).uniform(-1, 1, (4000, 3))
    n = max(12, math.ceil(2 * math.pi * 0.2 / 0.3))  # the prism's sides (primitives.cylinder)
    ang = 2 * math.pi * np.arange(n) / n
    corners = 0.2 * np.stack([np.cos(ang), np.sin(ang)], 1)  # counter-clockwise
    edges = np.roll(corners, -1, axis=0) - corners
    q = p[:, :2] - [-0.2, 0.3]
    in_prism = np.all([e[0] * (q[:, 1] - c[1]) - e[1] * (q[:, 0] - c[0]) > 0 for c, e in zip(corners, edges)],
                      axis=0) & (np.abs(p[:, 2] - 0.5) < 0.25)
    expected = (np.all(np.abs(p) < [0.5, 0.3, 0.2], 1) | np.all(np.abs(p - [0.3, 0, 0.2]) < [0.2, 0.2, 0.5], 1)
                | np.all(np.abs(p - [-0.65, 0, 0]) < 0.15, 1) | in_prism)
    np.testing.assert_array_equal(inside_mesh(p, v, f), expected)
    # overlap counts twice: the winding number counts the parts containing a point
    assert winding_numbers(np.array([[0.3, 0.0, 0.0]]), v, f)[0] == pytest.approx(2.0)


def test_generator_writes_the_shapenet_layout_deterministically(objects, tmp_path):
    chair = CATEGORIES["chair"]
    assert sn.list_synsets(objects.root) == sorted(CATEGORIES[c] for c in CFG.categories)
    train = sn.read_split(objects.root, chair, "train")
    assert len(train) == 2 and all(len(m) == 32 and int(m, 16) >= 0 for m in train)
    v, f = sn.read_obj(sn.mesh_path(objects.root, chair, train[0]))
    np.testing.assert_allclose((v.max(0) - v.min(0)).max(), 1.0, atol=1e-6)  # in the normalised cube
    assert v[:, 1].max() - v[:, 1].min() > 0.9  # a chair is tallest along +Y (ShapeNet's up)
    again = generate_objects(tmp_path / "again", CFG.with_overrides(categories=("chair",)), progress=False)

    def digest(root: Path, synset: str) -> str:
        files = sorted(p for p in (root / synset).rglob("*") if p.is_file())
        return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()

    assert digest(again, chair) == digest(objects.root, chair)
    assert set(PRESETS) == {"tiny", "demo", "ablation"}  # the scene generator's preset names


def test_prepared_points_agree_with_the_rendered_depth(objects):
    """Near-surface points (σ = 1e-4) projected with the stored camera land on the rendered surface."""
    with ObjectShardReader(sorted((objects.work / "shapenet" / "train").glob("shard_*.h5"))[0]) as reader:
        rec = reader[0]
    for view in range(len(rec.image)):
        t, (fx, fy, cx, cy) = rec.world_to_camera[view].astype(np.float64), rec.intrinsics[view]
        cam = rec.near_points @ t[:3, :3].T + t[:3, 3]
        u, v = (fx * cam[:, 0] / cam[:, 2] + cx).astype(int), (fy * cam[:, 1] / cam[:, 2] + cy).astype(int)
        depth = rec.depth[view][np.clip(v, 0, 39), np.clip(u, 0, 39)]
        hit = np.isfinite(depth)  # thin parts can fall between pixel centres
        tol = 0.05  # depth changes by up to ~0.05 within a pixel (0.03 wide here) on a slanted face
        assert np.mean(np.abs(cam[hit, 2] - depth[hit]) < tol) > 0.2  # the visible side is seen where it lies
        assert np.mean(cam[hit, 2] < depth[hit] - tol) < 0.03  # (almost) nothing in front of the rendered surface
    assert 0.3 < rec.near_labels.mean() < 0.7 and rec.uniform_labels.mean() < 0.5
    assert rec.uniform_far.any() and not rec.uniform_far.all()


def test_normalisation_composes_with_the_cameras(objects, tmp_path):
    """A model stored 2× larger and shifted, its cameras and depth changed to match, gives the same record
    (2×, not more: the 16-bit depth files hold up to 6.5 units)."""
    chair = CATEGORIES["chair"]
    model = sn.read_split(objects.root, chair, "test")[0]
    root = tmp_path / "moved"
    for split in sn.SPLITS:
        sn.write_split(root, chair, split, [model] if split == "test" else [])
    v, f = sn.read_obj(sn.mesh_path(objects.root, chair, model))
    shift = np.array([0.4, -1.0, 2.5])
    sn.write_obj(sn.mesh_path(root, chair, model), 2 * v + shift, f)
    views = []
    for view in sn.read_views(objects.root, chair, model):
        t = view.world_to_camera.copy()
        t[:3, 3] = 2 * t[:3, 3] - t[:3, :3] @ shift
        views.append(sn.View(view.color, view.depth * 2, t, view.intrinsics))
    sn.write_views(root, chair, model, views)
    prepare_split("shapenet", root, "test", tmp_path / "work", PREP, synsets=[chair], progress=False)
    moved = ObjectShardReader(tmp_path / "work" / "shapenet" / "test" / "shard_00000.h5")[0]
    table = read_object_manifest(objects.work / "shapenet" / "test" / "manifest.parquet")
    row = table[table.model_id == model].iloc[0]
    original = ObjectShardReader(objects.work / "shapenet" / "test" / row.shard)[int(row.row)]
    np.testing.assert_allclose(moved.world_to_camera, original.world_to_camera, atol=1e-5)
    np.testing.assert_allclose(moved.depth, original.depth, atol=3e-4, equal_nan=True)  # 16-bit depth steps
    np.testing.assert_allclose(moved.uniform_points, original.uniform_points, atol=1e-6)
    assert np.mean(moved.uniform_labels == original.uniform_labels) > 0.999


def test_training_items_are_in_the_camera_frame(objects):
    manifest = objects.work / "shapenet" / "train" / "manifest.parquet"
    ds = open_dataset(manifest, DataConfig(near_points=64, non_points=16), seed=1)
    assert isinstance(ds, ObjectShardDataset) and len(ds) == 4 and (ds.width, ds.height) == (40, 40)
    item = ds[0]
    assert item["image"].shape == (3, 40, 40) and item["image"].dtype == torch.uint8
    assert item["near_points"].shape == (64, 3) and item["far_points"].shape == (16, 3)
    assert (item["near_points"][:, 2] > 1.0).all()  # the camera is ~2 units from the cube's centre
    assert set(item["near_labels"].unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(ds[0]["near_points"], item["near_points"])  # same seed, epoch, index
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["near_points"], item["near_points"])


def test_open_dataset_picks_the_scene_reader_for_scene_manifests(prepared_tiny):
    ds = open_dataset(prepared_tiny.manifest("scannet", "train"), DataConfig(near_points=8, non_points=4))
    assert isinstance(ds, ShardDataset)


class CubeFieldNet:
    """A stand-in network that knows one model: logit +30 inside its ground-truth mesh, −30 outside, read
    in the normalised cube by undoing the view's camera (the chain infer_objects must invert)."""

    config = SimpleNamespace(input_norm="none")

    def __init__(self, vertices, faces, world_to_camera):
        self.v, self.f, self.cam_to_cube = vertices, faces, np.linalg.inv(world_to_camera)

    def encode(self, images, intrinsics=None):
        return SimpleNamespace(features=[])

    def query(self, features, points, intrinsics):
        p = points[0].double().numpy() @ self.cam_to_cube[:3, :3].T + self.cam_to_cube[:3, 3]
        return torch.from_numpy(np.where(inside_mesh(p, self.v, self.f), 30.0, -30.0)).float()[None]


def test_a_field_that_knows_the_answer_scores_near_perfectly(objects, tmp_path):
    manifest = objects.work / "shapenet" / "test" / "manifest.parquet"
    row = read_object_manifest(manifest).iloc[0]
    rec = ObjectShardReader(manifest.parent / row.shard).read(int(row.row), ("world_to_camera",))
    v, f = sn.read_obj(sn.mesh_path(objects.root, row.synset, row.model_id))
    net = CubeFieldNet(v, f, rec["world_to_camera"][0].astype(np.float64))
    (path,) = [p for p in predict_objects(net, manifest, tmp_path / "pred", resolution=64, grid="dense")
               if p.stem == row.model_id]
    per_model = evaluate({"oracle": tmp_path / "pred"}, manifest, objects.root, samples=20000)
    mine = per_model[per_model.model_id == row.model_id].iloc[0]
    assert mine.iou > 0.75 and mine.chamfer_l1 < 0.01 and mine.normal_consistency > 0.9
    summary = summarise(per_model, {row.synset: "x"})
    assert {"IoU mean", "IoU median", "Chamfer-L1 ×10 mean"} <= set(summary.columns)
    assert (summary.category == "all").sum() == 1


def test_prepare_section_refuses_unknown_keys():
    with pytest.raises(ValueError, match=r"my\.yaml.*'uniform'"):
        load_object_prepare_section({"uniform": 3}, "my.yaml")
    assert load_object_prepare_section({}, "x") == ObjectPrepareConfig()
