"""Generated ScanNet / Matterport roots: read back through pipeline.formats, determinism, atomicity."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.formats import matterport as mp
from pipeline.formats import scannet as sn
from pipeline.formats.images import decode_color
from pipeline.formats.sens import SensReader
from pipeline.synthetic import generate as gen
from pipeline.synthetic.categories import STRUCTURE_IDS
from pipeline.synthetic.cli import main
from pipeline.synthetic.config import preset
from pipeline.synthetic.render import PinholeCamera, SceneRenderer
from pipeline.synthetic.scene import SceneLayout, SceneMesh, make_scene
from pipeline.synthetic.trajectory import handheld_scan

SMALL = preset("tiny", scannet_train=1, scannet_val=1, scannet_test=1, frames_per_scene=10,
               invalid_pose_fraction=0.2, panoramas_per_house=1, color_size=(80, 60),
               depth_size=(64, 48), matterport_size=(64, 52))
CLEAN = SMALL.with_overrides(depth_noise=0.0, hole_blobs=0.0, grazing_dropout_deg=None)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    gen.generate_scannet(root / "scannet", CLEAN, progress=False)
    gen.generate_matterport(root / "matterport", CLEAN, progress=False)
    return root


def _renderer_from_files(vertices, faces):
    mesh = SceneMesh(vertices, faces, np.full((len(vertices), 3), 128, np.uint8),
                     np.zeros(len(vertices), np.uint8), np.zeros(len(faces), np.uint8),
                     np.zeros(len(faces), np.int32))
    return SceneRenderer(mesh, light=np.zeros(3))


def _camera(matrix, size):
    return PinholeCamera(size[0], size[1], float(matrix[0, 0]), float(matrix[1, 1]),
                         float(matrix[0, 2]), float(matrix[1, 2]))


def test_scannet_layout_splits_and_labels(clean_root):
    root = clean_root / "scannet"
    assert sn.check_layout(root) == []
    assert sn.read_split(root, "train") == ["scene0000_00"]
    assert sn.read_split(root, "val") == ["scene0001_00"]
    assert sn.read_split(root, "test") == ["scene0707_00"]
    test_paths = sn.scene_paths(root, "scene0707_00")
    assert test_paths.is_test and test_paths.sens.is_file() and not test_paths.labels_mesh.exists()
    table = sn.read_label_table(sn.label_table_path(root))
    assert list(table.columns) == sn.LABEL_TABLE_COLUMNS
    for scene_id in ("scene0000_00", "scene0001_00"):
        mesh = sn.read_scene_mesh(sn.scene_paths(root, scene_id))
        layout, truth = make_scene(scene_id, CLEAN.seed, CLEAN.edge_length,
                                   (CLEAN.furniture_min, CLEAN.furniture_max), (CLEAN.rooms_min, CLEAN.rooms_max),
                                   CLEAN.inner_walls)
        assert np.array_equal(mesh.vertices, truth.vertices) and np.array_equal(mesh.faces, truth.faces)
        assert np.array_equal(mesh.vertex_colors, truth.vertex_colors)
        assert np.array_equal(mesh.face_labels, truth.face_labels)
        assert set(STRUCTURE_IDS) <= set(mesh.face_labels.tolist())
        assert set(mesh.face_labels.tolist()) <= set(table["nyu40id"].tolist())
        assert gen.read_layout(gen.scannet_layout_path(root, scene_id)) == layout


def test_sens_round_trip_depth_equals_ray_cast_from_the_files(clean_root):
    """Camera from the header, pose from the frame, mesh from the ply: ray casting them again
    gives the stored millimetres; poses equal the generated path (invalid ones -inf)."""
    paths = sn.scene_paths(clean_root / "scannet", "scene0000_00")
    mesh = sn.read_scene_mesh(paths, with_labels=False)
    layout = SceneLayout.from_json((paths.directory / "scene0000_00_layout.json").read_text())
    path = handheld_scan(layout, CLEAN.frames_per_scene, CLEAN.invalid_pose_fraction,
                         gen._rng(CLEAN.seed, "scene0000_00", 1))
    renderer = _renderer_from_files(mesh.vertices, mesh.faces)
    with SensReader(paths.sens) as reader:
        h = reader.header
        assert (h.version, h.color_compression, h.depth_compression, h.depth_shift) == (4, "jpeg", "zlib_ushort", 1000.0)
        assert h.color_size == CLEAN.color_size and h.depth_size == CLEAN.depth_size
        assert np.array_equal(reader.valid_pose_mask, path.valid) and (~path.valid).sum() == 2
        assert np.array_equal(reader.poses, path.stored_poses().astype(np.float32))
        depth_cam = _camera(h.depth_intrinsics, h.depth_size)
        color_cam = _camera(h.color_intrinsics, h.color_size)
        for i in np.flatnonzero(reader.valid_pose_mask)[:4]:
            frame = reader.read_frame(i)
            expected = np.rint(renderer.depth(depth_cam, reader.poses[i]).astype(np.float64) * 1000)
            stored = np.rint(frame.depth.astype(np.float64) * 1000)
            assert np.all(np.isfinite(stored))
            assert np.mean(stored == expected) > 0.99 and np.abs(stored - expected).max() <= 1
            assert frame.color.shape == (CLEAN.color_size[1], CLEAN.color_size[0], 3)
            # Colour: JPEG of the shaded render; the image is lit (not black) and textured.
            assert 40 < frame.color.mean() < 250 and frame.color.std() > 3
            assert color_cam.width == frame.color.shape[1]


def test_sens_depth_with_sensor_model_is_the_rendered_mm(tmp_path):
    """With noise and holes on, the stored depth equals the generator's own sensor depth in mm."""
    root = gen.generate_scannet(tmp_path / "scannet", SMALL, progress=False)
    layout, mesh, renderer = gen._scene("scene0000_00", SMALL)
    path = handheld_scan(layout, SMALL.frames_per_scene, SMALL.invalid_pose_fraction,
                         gen._rng(SMALL.seed, "scene0000_00", 1))
    from pipeline.synthetic.config import SCANNET_DEPTH_INTRINSICS, SCANNET_DEPTH_SIZE
    cam = PinholeCamera.scaled(SCANNET_DEPTH_SIZE, SCANNET_DEPTH_INTRINSICS, SMALL.depth_size)
    holes = 0
    with SensReader(sn.scene_paths(root, "scene0000_00").sens) as reader:
        for i in range(len(reader)):
            depth = gen._sensor(SMALL).apply(renderer.cast(cam, path.camera_to_world[i]),
                                             gen._rng(SMALL.seed, "scene0000_00", 2, i))
            expected = np.where(np.isnan(depth), 0, np.rint(depth.astype(np.float64) * 1000))
            assert np.array_equal(reader.read_depth_raw(i), expected.astype(np.uint16))
            holes += int((expected == 0).sum())
    assert holes > 0


def test_matterport_house_round_trip(clean_root):
    root = clean_root / "matterport"
    (house_id,) = mp.list_houses(root)
    house = mp.read_house(root, house_id)
    layout = gen.read_layout(gen.matterport_layout_path(root, house_id))
    _, truth = make_scene(house_id, CLEAN.seed, CLEAN.edge_length,
                          (CLEAN.furniture_min, CLEAN.furniture_max), (CLEAN.rooms_min, CLEAN.rooms_max), CLEAN.inner_walls)
    assert np.array_equal(house.mesh.face_labels, truth.face_labels)
    assert np.array_equal(house.mesh.vertices, truth.vertices)
    assert len(house.cameras) == 18 and len({c.panorama for c in house.cameras}) == 1
    renderer = _renderer_from_files(house.mesh.vertices, house.mesh.faces)
    for cam in house.cameras:
        assert cam.color_file == f"{cam.panorama}_i{cam.camera}_{cam.yaw}.jpg"
        assert cam.depth_file == f"{cam.panorama}_d{cam.camera}_{cam.yaw}.png"
        pitch = np.degrees(np.arcsin(cam.camera_to_world[2, 2]))  # optical axis elevation
        assert pitch == pytest.approx(CLEAN.camera_pitches_deg[cam.camera], abs=1e-6)
        assert not layout.occupancy(cam.camera_to_world[None, :3, 3])[0]
        assert layout.room_of(cam.camera_to_world[None, :3, 3])[0] >= 0
    for cam in house.cameras[::5]:
        w, h = CLEAN.matterport_size
        depth = mp.read_depth_png(house.paths.depth_path(cam))
        expected = renderer.depth(_camera(cam.intrinsics, (w, h)), cam.camera_to_world)
        units = np.rint(depth.astype(np.float64) * 4000), np.rint(expected.astype(np.float64) * 4000)
        assert np.mean(units[0] == units[1]) > 0.99 and np.abs(units[0] - units[1]).max() <= 1
        color = decode_color(house.paths.color_path(cam).read_bytes(), path="")
        assert color.shape == (h, w, 3) and color.std() > 3
    mapping = mp.read_category_mapping(mp.category_mapping_path(root))
    assert (mp.category_mapping_path(root).read_bytes().count(b"\r\n") == len(mapping) + 1)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    config = SMALL.with_overrides(frames_per_scene=4, scannet_val=0, scannet_test=0)
    for name in ("a", "b"):
        gen.generate_scannet(tmp_path / name / "scannet", config, progress=False)
        gen.generate_matterport(tmp_path / name / "matterport", config, progress=False)
    gen.generate_scannet(tmp_path / "c" / "scannet", config.with_overrides(seed=1), progress=False)
    a, b, c = (_digest(tmp_path / n / "scannet") for n in "abc")
    assert a == b and len(a) >= 8
    assert _digest(tmp_path / "a" / "matterport") == _digest(tmp_path / "b" / "matterport")
    assert a.keys() == c.keys() and a["scans/scene0000_00/scene0000_00.sens"] != c["scans/scene0000_00/scene0000_00.sens"]


def test_killed_run_is_not_complete_and_rerun_finishes(tmp_path, monkeypatch):
    config = SMALL.with_overrides(frames_per_scene=4, scannet_test=0)
    calls = {"n": 0}
    original = SceneRenderer.color

    def failing(self, *args):
        calls["n"] += 1
        if calls["n"] == 6:  # in the second scene
            raise KeyboardInterrupt("simulated kill")
        return original(self, *args)

    monkeypatch.setattr(SceneRenderer, "color", failing)
    target = tmp_path / "synthetic" / "scannet"
    with pytest.raises(KeyboardInterrupt):
        gen.generate_scannet(target, config, progress=False)
    assert not target.exists() and not gen.marker_path(target).exists()
    assert not gen.is_complete(target, config)
    monkeypatch.setattr(SceneRenderer, "color", original)
    gen.generate_scannet(target, config, progress=False)
    assert gen.is_complete(target, config) and not (tmp_path / "synthetic" / "scannet.partial").exists()
    assert json.loads(gen.marker_path(target).read_text())["config"]["frames_per_scene"] == 4
    assert not gen.is_complete(target, config.with_overrides(seed=3))


def test_cli_writes_both_datasets_and_skips_when_complete(tmp_path, capsys):
    args = ["--root", str(tmp_path), "--preset", "tiny", "--seed", "2", "--quiet",
            "--set", "frames_per_scene=3", "--set", "scannet_train=1", "--set", "scannet_val=0",
            "--set", "scannet_test=0", "--set", "panoramas_per_house=1"]
    assert main(args) == 0
    assert (tmp_path / "scannet.complete").is_file() and (tmp_path / "matterport.complete").is_file()
    assert sn.check_layout(tmp_path / "scannet") == []
    before = _digest(tmp_path)
    assert main(args) == 0 and "already complete" in capsys.readouterr().out
    assert _digest(tmp_path) == before
    assert main(["--root", str(tmp_path), "--set", "no_such_field=1"]) == 2
