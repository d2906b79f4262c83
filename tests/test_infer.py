"""dgs_core.infer: the evaluation grid against brute-force queries, the frustum, the grid convention
that pipeline.geometry.isosurface assumes, and the resumable per-manifest prediction."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pipeline.geometry.isosurface import extract_mesh
from dgs_core.model.inputs import image_to_tensor
from dgs_core.infer import Z_NEAR, encode_image, frame_path, grid_geometry, predict_frames, predict_grid
from dgs_core.model import DGSNet, ModelConfig
from pipeline.ground_truth import visible_mesh
from pipeline.manifest import read_manifest
from pipeline.shards import ShardReader

WIDTH, HEIGHT = 64, 48
INTRINSICS_PX = np.array([57.6, 57.6, 32.0, 24.0])  # the prepared_tiny virtual camera


class FieldNet:
    """A stand-in network whose occupancy is an analytic function of the camera-space point."""

    config = SimpleNamespace(input_norm="none")

    def __init__(self, occupancy) -> None:
        self.occupancy, self.queried = occupancy, []

    def encode(self, images: torch.Tensor, intrinsics: torch.Tensor | None = None) -> SimpleNamespace:
        return SimpleNamespace(features=[])

    def query(self, features, points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
        self.queried.append(points[0].double().numpy())
        o = self.occupancy(points[0].double()).clamp(1e-6, 1 - 1e-6)
        return torch.log(o / (1 - o))[None].float()


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (3, HEIGHT, WIDTH), dtype=np.uint8)


def _cell_centres(box_min, box_max, resolution) -> np.ndarray:
    """(X, Y, Z, 3) float64: centres of the cells that tile the box, written out independently."""
    lo, hi = np.asarray(box_min, float), np.asarray(box_max, float)
    axes = [lo[d] + (np.arange(resolution) + 0.5) * (hi[d] - lo[d]) / resolution for d in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)


def _in_frustum(p: np.ndarray) -> np.ndarray:
    """SPEC §1 in pixel form: u = 2(fx·x/z + cx)/W − 1, v likewise; |u|, |v| ≤ 1, z > z_near."""
    fx, fy, cx, cy = INTRINSICS_PX
    z = p[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = 2 * (fx * p[..., 0] / z + cx) / WIDTH - 1
        v = 2 * (fy * p[..., 1] / z + cy) / HEIGHT - 1
    return (z > Z_NEAR) & (np.abs(u) <= 1) & (np.abs(v) <= 1)


def test_grid_matches_per_point_queries_of_the_net() -> None:
    torch.manual_seed(0)
    net = DGSNet(ModelConfig.tiny()).eval()
    box_min, box_max, res = np.array([-1.3, -0.9, -0.2]), np.array([1.1, 0.8, 3.7]), 12
    occ, origin, cell = predict_grid(net, _image(), INTRINSICS_PX, box_min, box_max, res, batch_points=97)
    centres = _cell_centres(box_min, box_max, res)
    inside = _in_frustum(centres)
    assert 0.2 < inside.mean() < 0.8, "the box must straddle the frustum for this test to mean anything"
    cells = np.argwhere(inside)[np.random.default_rng(1).choice(int(inside.sum()), 20, replace=False)]
    points = torch.tensor(centres[tuple(cells.T)], dtype=torch.float32)[None]
    fx, fy, cx, cy = INTRINSICS_PX
    intrinsics = torch.tensor([[2 * fx / WIDTH, 2 * fy / HEIGHT, 2 * cx / WIDTH - 1, 2 * cy / HEIGHT - 1]],
                              dtype=torch.float32)
    with torch.no_grad():
        expected = net(image_to_tensor(_image(), net.config.input_norm)[None], points, intrinsics)[0].numpy()
    np.testing.assert_allclose(occ[tuple(cells.T)], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(origin, centres[0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(origin + (res - 1) * cell, centres[-1, -1, -1], atol=1e-12)


def test_out_of_frustum_cells_are_free_and_never_queried() -> None:
    net = FieldNet(lambda p: torch.full(p.shape[:1], 0.9, dtype=p.dtype))
    box_min, box_max, res = np.array([-2.1, -1.7, -0.6]), np.array([1.9, 1.3, 4.1]), 10
    occ, _, _ = predict_grid(net, _image(), INTRINSICS_PX, box_min, box_max, res, batch_points=64)
    centres = _cell_centres(box_min, box_max, res)
    inside = _in_frustum(centres)
    assert 0 < inside.sum() < inside.size
    assert np.all(occ[~inside] == 0)
    np.testing.assert_allclose(occ[inside], 0.9, atol=1e-6)
    queried = np.concatenate(net.queried)
    assert len(queried) == inside.sum() and np.all(_in_frustum(queried))


def test_extracted_surface_of_a_plane_field_lies_on_the_plane() -> None:
    """Occupancy linear across the tilted plane z = 2 + 0.2x − 0.1y (occupied behind it): marching
    cubes of the grid must reproduce the plane exactly — a half-cell offset or swapped axes would
    move it by ≥ cell/2 ≈ 2 cm."""
    def plane_field(p: torch.Tensor) -> torch.Tensor:
        return 0.5 + (p[:, 2] - 2.0 - 0.2 * p[:, 0] + 0.1 * p[:, 1]) / 0.8

    box_min, box_max, res = np.array([-0.4, -0.3, 1.5]), np.array([0.4, 0.3, 2.5]), 24
    occ, origin, cell = predict_grid(FieldNet(plane_field), _image(), INTRINSICS_PX, box_min, box_max, res)
    assert occ.min() > 0, "the box must lie inside the frustum"
    vertices, faces = extract_mesh(occ, origin, cell)
    assert len(faces) > 2 * (res - 2) ** 2
    residual = vertices[:, 2] - (2.0 + 0.2 * vertices[:, 0] - 0.1 * vertices[:, 1])
    assert np.abs(residual).max() < 1e-5  # float32 queries; a half-cell offset gives 1.9e-2
    np.testing.assert_allclose(vertices[:, 0].min(), box_min[0] + cell[0] / 2, atol=1e-9)
    np.testing.assert_allclose(vertices[:, 1].max(), box_max[1] - cell[1] / 2, atol=1e-9)


def test_a_flat_box_is_refused() -> None:
    with pytest.raises(ValueError, match="box_max > box_min"):
        grid_geometry(np.zeros(3), np.array([1.0, 1.0, 0.0]), 8)


def test_near_plane_is_the_prepare_stage_one() -> None:
    from pipeline.frames import PrepareConfig

    assert Z_NEAR == PrepareConfig().z_near


def test_predict_frames_writes_one_grid_per_ok_frame_and_resumes(prepared_tiny, tmp_path) -> None:
    torch.manual_seed(0)
    net, res = DGSNet(ModelConfig.tiny()).eval(), 6
    manifest = prepared_tiny.manifest("scannet", "test")
    frames = read_manifest(manifest).query("status == 'ok'")
    assert len(frames) > 0
    paths = predict_frames(net, manifest, prepared_tiny.scannet_root, tmp_path, resolution=res, grid="dense")
    assert sorted(paths) == sorted(tmp_path.glob("scannet/*/*.npz")) and len(paths) == len(frames)
    assert (tmp_path / "scannet" / "done").exists() and not list(tmp_path.rglob("*.partial"))
    row = frames.iloc[-1]
    with np.load(paths[-1]) as grid:
        assert grid["occupancy"].dtype == np.float16 and grid["occupancy"].shape == (res,) * 3
        rec = ShardReader(manifest.parent / row.shard).read(int(row.row))
        vertices, _ = visible_mesh("scannet", prepared_tiny.scannet_root, row.scene_id,
                                   rec["visible_faces"], rec["world_to_camera"])
        centres = _cell_centres(vertices.min(0), vertices.max(0), res)
        np.testing.assert_allclose(grid["origin"], centres[0, 0, 0], atol=1e-9)
        np.testing.assert_allclose(grid["origin"] + (res - 1) * grid["cell"], centres[-1, -1, -1], atol=1e-9)
    stamps = {p: p.stat().st_mtime_ns for p in paths[1:]}
    paths[0].unlink()
    counting = FieldNet(lambda p: torch.full(p.shape[:1], 0.5, dtype=p.dtype))
    predict_frames(counting, manifest, prepared_tiny.scannet_root, tmp_path, resolution=res, grid="dense")
    assert paths[0].exists() and {p: p.stat().st_mtime_ns for p in paths[1:]} == stamps
    assert len(counting.queried) == 1, "only the missing frame may be predicted again"
    predict_frames(counting, manifest, prepared_tiny.scannet_root, tmp_path, resolution=res, model_id="retrained",
                   grid="dense")
    assert len(counting.queried) == 1 + len(paths), "grids of another model must not be reused"
    with np.load(paths[-1]) as grid:
        assert set(np.unique(grid["occupancy"]).tolist()) == {0.0, 0.5}, "rewritten by the new (constant 0.5) net"


def test_cli_predicts_from_a_checkpoint(prepared_tiny, tmp_path) -> None:
    """The command line: checkpoint → the same grids as the saved net, method.json, done marker."""
    from dgs_core.checkpoint import capture_rng, save_checkpoint
    from dgs_core.experiment import to_dict
    from dgs_core.infer import main

    torch.manual_seed(1)
    net, res = DGSNet(ModelConfig.tiny()).eval(), 6
    ckpt = save_checkpoint(tmp_path / "models" / "tiny_nograd" / "final.pt", model=net, step=0, epoch=0, position=0,
                           config={"model": to_dict(ModelConfig.tiny())}, rng=capture_rng())
    manifest, out = prepared_tiny.manifest("matterport", "test"), tmp_path / "pred"
    assert main(["--checkpoint", str(ckpt), "--manifest", str(manifest), "--root", str(prepared_tiny.matterport_root),
                 "--out", str(out), "--resolution", str(res), "--device", "cpu", "--threads", "1"]) == 0
    method = json.loads((out / "method.json").read_text())
    assert method == {"name": "tiny_nograd", "kind": "grid", "checkpoint": str(ckpt), "resolution": res,
                      "field": "occupancy", "depth_source": "mesh"}
    assert (out / "matterport" / "done").exists()
    frames = read_manifest(manifest).query("status == 'ok'")
    row = frames.iloc[0]
    rec = ShardReader(manifest.parent / row.shard).read(int(row.row))
    vertices, _ = visible_mesh("matterport", prepared_tiny.matterport_root, row.scene_id,
                               rec["visible_faces"], rec["world_to_camera"])
    expected, _, _ = predict_grid(net, rec["image"], rec["intrinsics"], vertices.min(0), vertices.max(0), res)
    with np.load(frame_path(out, "matterport", row.scene_id, row.frame_index)) as grid:
        np.testing.assert_array_equal(grid["occupancy"], expected.astype(np.float16))
    assert len(list(out.glob("matterport/*/*.npz"))) == len(frames)


class SdfNet(FieldNet):
    """A stand-in network whose raw output is an analytic signed distance (metres, > 0 free)."""

    def query(self, features, points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
        self.queried.append(points[0].double().numpy())
        return self.occupancy(points[0].double())[None].float()


def _plane_sdf(p: torch.Tensor) -> torch.Tensor:
    """Signed distance to the plane z = 2 + 0.2x − 0.1y, positive on the camera side."""
    n = torch.tensor([-0.2, 0.1, 1.0], dtype=p.dtype)
    return (2.0 - p @ n) / torch.linalg.vector_norm(n)


@pytest.mark.parametrize("grid", ["dense", "coarse_to_fine"])
def test_sdf_grids_mesh_at_level_zero_and_are_free_outside(grid) -> None:
    box_min, box_max, res = np.array([-1.5, -1.2, 1.5]), np.array([1.5, 1.2, 2.7]), 32
    net = SdfNet(_plane_sdf)
    sdf, origin, cell = predict_grid(net, _image(), INTRINSICS_PX, box_min, box_max, res, grid=grid, field="sdf")
    inside = _in_frustum(_cell_centres(box_min, box_max, res))
    assert 0 < inside.sum() < inside.size and np.all(sdf[~inside] == 1.0)  # free, never queried
    vertices, faces = extract_mesh(sdf, origin, cell, field="sdf")
    assert len(faces) > 100
    residual = vertices[:, 2] - (2.0 + 0.2 * vertices[:, 0] - 0.1 * vertices[:, 1])
    # Away from the frustum's sides (where the occupied side meets the free outside) every vertex
    # lies on the plane, and the plane is there.
    inner = _in_frustum(vertices * [1 / 0.9, 1 / 0.9, 1]) & (vertices[:, 2] < 2.6)
    assert inner.sum() > 50 and np.abs(residual[inner]).max() < 1e-5
    normals = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    assert (normals[inner[faces].all(1), 2] < 0).all()  # toward the camera: from occupied to free


def test_sdf_model_traced_depth_and_coloured_meshes(prepared_tiny, tmp_path) -> None:
    """predict_frames of an SDF field with trace_depth stores the sphere-traced depth (the plane's exact
    depth within the footprint) next to the grid; a colour model writes vertex-coloured meshes outside
    the dataset tree, coloured by its head at the vertices."""
    from benchmark.predictions import load_prediction, traced_depth
    from dgs_core.color import vertex_colors
    from dgs_core.sphere_trace import footprint_epsilon, pixel_rays
    from pipeline.formats.ply import read_ply
    from pipeline.testset import list_test_frames, read_test_frame

    manifest, res = prepared_tiny.manifest("scannet", "test"), 6
    paths = predict_frames(SdfNet(_plane_sdf), manifest, prepared_tiny.scannet_root, tmp_path / "sdf",
                           resolution=res, grid="dense", field="sdf", trace_depth=True)
    ref = list_test_frames(manifest, "scannet", prepared_tiny.scannet_root)[0]
    frame = read_test_frame(ref)
    with np.load(paths[0]) as grid:
        assert str(grid["field"]) == "sdf" and float(grid["level"]) == 0 and grid["trace_queries"] > 0
        assert grid["sdf"].shape == (res,) * 3 and "occupancy" not in grid.files
    depth = traced_depth(tmp_path / "sdf", frame)
    d = pixel_rays(WIDTH, HEIGHT, INTRINSICS_PX).numpy()
    exact = 2.0 / (d @ np.array([-0.2, 0.1, 1.0]))
    below = exact <= frame.gt_box()[1][2]  # rays end at the grid box's far face
    assert below.sum() > 100 and np.isnan(depth[~below]).all()
    gap = exact[below] - depth[below]
    assert (gap >= -1e-5).all() and (gap < 2 * footprint_epsilon(exact[below].max(), INTRINSICS_PX)).all()
    assert load_prediction(tmp_path / "sdf", frame)[2] == "grid"

    torch.manual_seed(4)
    net = DGSNet(ModelConfig(**{**vars(ModelConfig.tiny()), "color": True})).eval()
    predict_frames(net, manifest, prepared_tiny.scannet_root, tmp_path / "rgb", resolution=res, grid="dense")
    mesh_file = tmp_path / "rgb" / "colored_meshes" / "scannet" / ref.scene_id / f"{ref.frame_index:06d}.ply"
    vertices, faces, _ = load_prediction(tmp_path / "rgb", frame)  # the scored mesh: the same geometry
    mesh = read_ply(mesh_file)
    assert len(mesh.faces) == len(faces) > 0
    np.testing.assert_allclose(mesh.vertices, vertices, atol=1e-6)
    rgb = np.stack([mesh.vertex_data[c] for c in ("red", "green", "blue")], axis=1)
    assert rgb.dtype == np.uint8
    k = [2 * 57.6 / WIDTH, 2 * 57.6 / HEIGHT, 0.0, 0.0]
    features = encode_image(net, frame.image, k).features
    np.testing.assert_array_equal(rgb, vertex_colors(net, features, mesh.vertices, k))
    assert traced_depth(tmp_path / "rgb", frame) is None  # an occupancy model's grid holds no traced depth
