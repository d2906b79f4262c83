"""Hostile input to the readers and the prepare job, each built here in tmp_path: a clear error that
names the file and what to do, or a counted skip that keeps its message, and nothing partial on disk.

Classes (README "What happens on bad input"): ids read from dataset files; JPEG garbage that libjpeg
only warns about; decoded sizes against the header; codecs refused at the header; label tables out
of range; NaN vertices; poses that select_* must not pick; scenes that yield no frame; skip
messages; missing Matterport depth; a failed rerun leaving an old ``done``."""
from __future__ import annotations

import io
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import simplejpeg
from PIL import Image

from pipeline.errors import run_main
from pipeline.formats import matterport as mp
from pipeline.formats import scannet as sn
from pipeline.formats.errors import FormatError
from pipeline.formats.images import decode_color, encode_jpeg
from pipeline.formats.ply import write_ply
from pipeline.formats.sens import SensReader, SensWriter
from pipeline.manifest import COLUMNS, read_manifest
from pipeline.prepare import main as prepare_main
from pipeline.select import select_scannet_frames, valid_pose_mask

OPTIONS = json.dumps({"near_surface_points": 64, "non_surface_points": 16, "frames_per_shard": 4,
                      "width": 64, "height": 48, "focal": 57.6})


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> tuple[Path, Path]:
    """(ScanNet root with one train and one test scene, Matterport root with one house): tiny."""
    from pipeline.synthetic.config import preset
    from pipeline.synthetic.generate import generate_matterport, generate_scannet

    base = tmp_path_factory.mktemp("hostile")
    cfg = preset("tiny", frames_per_scene=6, scannet_train=1, scannet_val=0, scannet_test=1,
                 panoramas_per_house=1, invalid_pose_fraction=0.0)
    return (generate_scannet(base / "scannet", cfg, progress=False),
            generate_matterport(base / "matterport", cfg, progress=False))


def _copy(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / root.name))


def _prepare(capsys, *argv: str) -> tuple[int, str]:
    """Run the prepare command as `python -m pipeline.prepare` does; (exit status, stderr)."""
    status = run_main(prepare_main, [*argv, "--workers", "0", "--options", OPTIONS], prog="prepare")
    return status, capsys.readouterr().err


def _scannet_argv(root: Path, out: Path, split: str = "train") -> list[str]:
    scene = sn.read_split(root, split)[0]
    return ["--dataset", "scannet", "--root", str(root), "--split", split, "--scene", scene, "--out", str(out)]


def _garbage_entropy(jpeg: bytes, seed: int = 0) -> bytes:
    """The same JPEG headers, with the entropy-coded data after the scan header replaced by noise."""
    sos = jpeg.find(b"\xff\xda")
    start = sos + 2 + int.from_bytes(jpeg[sos + 2:sos + 4], "big")
    noise = np.random.default_rng(seed).integers(0, 255, len(jpeg) - start - 2, dtype=np.uint8).tobytes()
    return jpeg[:start] + noise.replace(b"\xff", b"\x00") + jpeg[-2:]


# -- ids read from dataset files ------------------------------------------------------------------
def test_split_line_that_is_not_a_scene_id_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "scannetv2_train.txt").write_text("scene0000_00\nscene0001_00; touch /tmp/owned\n")
    with pytest.raises(FormatError, match=r"scannetv2_train\.txt \(field 'line 2'\).*scene0001_00; touch"):
        sn.read_split(tmp_path, "train")
    (tmp_path / "scannetv2_val.txt").write_text("../../etc\n")
    with pytest.raises(FormatError, match="line 1"):
        sn.read_split(tmp_path, "val")


def test_house_folder_and_conf_image_names_must_not_be_paths(tmp_path: Path) -> None:
    (tmp_path / "house $(id)" / "house_segmentations").mkdir(parents=True)
    with pytest.raises(FormatError, match=r"house \$\(id\).*house id"):
        mp.list_houses(tmp_path)
    conf = tmp_path / "x.conf"
    conf.write_text("n_images 1\nintrinsics_matrix 1 0 0 0 1 0 0 0 1\n"
                    "scan ../../secret.png a_i1_0.jpg " + " ".join(["1"] * 16) + "\n")
    with pytest.raises(FormatError, match=r"line 3.*plain names"):
        mp.read_conf(conf)


def test_scene_ids_that_are_paths_never_escape_out(raw, tmp_path: Path, capsys) -> None:
    root, _ = raw
    for bad in ("../../escaped", str(tmp_path / "abs"), "scene0000_00/../../x"):
        status, err = _prepare(capsys, "--dataset", "scannet", "--root", str(root), "--split", "train",
                               "--scene", bad, "--out", str(tmp_path / "out"))
        assert status == 2 and "--scene" in err and "Traceback" not in err, err
    assert not list(tmp_path.rglob("*")) and not (tmp_path.parent / "escaped").exists()  # nothing written


# -- silent wrong output --------------------------------------------------------------------------
def test_jpeg_with_garbage_entropy_data_is_corrupt_not_decoded(tmp_path: Path) -> None:
    good = encode_jpeg(np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    bad = _garbage_entropy(good)
    assert Image.open(io.BytesIO(bad)).load() is not None  # Pillow accepts it: the silent failure
    with pytest.raises(FormatError, match=r"bad\.jpg.*not a decodable image.*Corrupt JPEG data"):
        decode_color(bad, path=tmp_path / "bad.jpg")
    np.testing.assert_array_equal(decode_color(good, path="good.jpg"), simplejpeg.decode_jpeg(good))


def test_garbage_jpeg_frame_is_a_counted_skip_with_its_message(raw, tmp_path: Path, capsys) -> None:
    root = _copy(raw[0], tmp_path)
    sens = sn.scene_paths(root, sn.read_split(root, "train")[0]).sens
    with SensReader(sens) as r:
        off, n = int(r.color_offsets[3]), int(r.color_nbytes[3])
        jpeg = r.read_raw_payloads(3)[0]
    data = bytearray(sens.read_bytes())
    data[off:off + n] = _garbage_entropy(jpeg)
    sens.write_bytes(bytes(data))
    status, err = _prepare(capsys, *_scannet_argv(root, tmp_path / "out"))
    assert status == 0, err
    d = next((tmp_path / "out").rglob("done")).parent
    m = read_manifest(d / "manifest.parquet")
    row = m[m.frame_index == 3].iloc[0]
    assert (row.status, row.reason) == ("skipped", "corrupt_payload")
    assert "Corrupt JPEG data" in row.message and f"byte {off}" in row.message
    done = json.loads((d / "done").read_text())
    assert done["skipped"] == {"corrupt_payload": 1} and "Corrupt JPEG data" in done["skip_examples"]["corrupt_payload"]
    assert "skipped corrupt_payload: 1 frames, first: frame 3" in err  # the job log


def _sens(path: Path, frames: list[tuple[np.ndarray, np.ndarray]], size=(64, 48)) -> None:
    k = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
    with SensWriter(path, color_intrinsics=k, depth_intrinsics=k / 2, color_size=size, depth_size=(32, 24)) as w:
        for pose, color in frames:
            w.add_frame(pose, color, np.full((24, 32), 1.5))


def _patch_header(path: Path, at: int, fmt: str, *values) -> None:
    """Overwrite header fields from ``at`` bytes after the colour compression code."""
    data = bytearray(path.read_bytes())
    start = _header_codes_offset(path) + at
    data[start:start + struct.calcsize(fmt)] = struct.pack(fmt, *values)
    path.write_bytes(bytes(data))


def _written(folder: Path) -> list[Path]:
    """Files a prepare job left under ``folder``, apart from its lock files."""
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def _header_codes_offset(path: Path) -> int:
    """Byte offset of the colour compression code (the depth code follows at +4)."""
    (name_len,) = struct.unpack("<Q", path.read_bytes()[4:12])
    return 12 + name_len + 4 * 64


def test_decoded_size_must_match_the_header(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    small = [(np.eye(4), rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))]
    _sens(tmp_path / "small.sens", small, size=(32, 24))
    _patch_header(tmp_path / "small.sens", 8, "<II", 64, 48)  # header 64x48, frames 32x24: refused once
    with pytest.raises(FormatError, match=r"small\.sens.*header says colour frames are 64x48.*32x24"):
        SensReader(tmp_path / "small.sens")
    frames = [(np.eye(4), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for _ in range(2)]
    with SensWriter(tmp_path / "stray.sens", color_intrinsics=np.eye(3), depth_intrinsics=np.eye(3),
                    color_size=(32, 24), depth_size=(32, 24)) as w:
        w.add_frame(np.eye(4), rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), np.full((24, 32), 1.5))
    with SensReader(tmp_path / "stray.sens") as r:
        stray = r.read_raw_payloads(0)
    with SensWriter(tmp_path / "mixed.sens", color_intrinsics=np.eye(3), depth_intrinsics=np.eye(3),
                    color_size=(64, 48), depth_size=(32, 24)) as w:
        for pose, color in frames:
            w.add_frame(pose, color, np.full((24, 32), 1.5))
        w.add_encoded_frame(np.eye(4), *stray, color_timestamp=0, depth_timestamp=0)  # another size
    with SensReader(tmp_path / "mixed.sens") as r:
        assert r.read_color(0, draft=(32, 24)).shape == (24, 32, 3)  # a JPEG draft scale is fine
        with pytest.raises(FormatError, match=r"frame 2 decoded to 32x24, the header says 64x48"):
            r.read_color(2)


def test_unsupported_or_mismatched_codecs_are_refused_at_the_header(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [(np.eye(4), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for _ in range(3)]
    for name, field, code, message in (("occi", 4, 2, "depth compression 'occi_ushort' is not supported"),
                                       ("png", 0, 1, "header says colour compression 'png'.*JPEG data")):
        path = tmp_path / f"{name}.sens"
        _sens(path, frames)
        _patch_header(path, field, "<i", code)
        with pytest.raises(FormatError, match=message):
            SensReader(path)


def test_category_mapping_nyu40id_out_of_range_never_wraps(tmp_path: Path) -> None:
    path = tmp_path / "category_mapping.tsv"
    mp.write_category_mapping(path, [{"index": 1, "nyu40id": 5}, {"index": 2, "nyu40id": 257}])
    with pytest.raises(FormatError, match=r"category_mapping\.tsv.*nyu40id must be an integer in 0\.\.40.*257.*row 2"):
        mp.read_category_mapping(path)
    table = pd.DataFrame({"index": [1, 2], "nyu40id": [5, 257]})
    with pytest.raises(FormatError, match="nyu40id"):  # 257 would be label 1 (wall) in uint8
        mp.category_to_nyu40(np.array([1, 2]), table, path="house.ply")


def test_nan_vertices_are_named_before_geometry_is_compared(tmp_path: Path) -> None:
    paths = sn.scene_paths(tmp_path, "scene0000_00", test=False)
    paths.directory.mkdir(parents=True)
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [np.nan, 0, 1]], np.float32)
    f = np.array([[0, 1, 2], [0, 1, 3]])
    write_ply(paths.mesh, v, f)
    write_ply(paths.labels_mesh, v, f, vertex_data={"label": np.ones(4, np.uint16)})
    with pytest.raises(FormatError, match=r"_vh_clean_2\.ply \(field 'vertex'\): 1 of 4 vertices are NaN"):
        sn.read_scene_mesh(paths)


def test_frames_with_non_rigid_poses_are_never_selected_for_test() -> None:
    poses = np.tile(np.eye(4), (12, 1, 1))
    poses[0] = 0.0  # finite but not a pose: used to be selected, then skipped
    poses[11, :3, :3] *= 2.0
    valid = valid_pose_mask(poses)
    assert not valid[0] and not valid[11] and valid[1:11].all()
    chosen = select_scannet_frames(valid, "test", test_frames=10)
    assert chosen.tolist() == list(range(1, 11))


# -- silent success on nothing --------------------------------------------------------------------
def test_sens_with_zero_frames_is_an_error_and_writes_nothing(raw, tmp_path: Path, capsys) -> None:
    root = _copy(raw[0], tmp_path)
    sens = sn.scene_paths(root, sn.read_split(root, "train")[0]).sens
    _sens(sens, [])
    status, err = _prepare(capsys, *_scannet_argv(root, tmp_path / "out"))
    assert status == 2 and str(sens) in err and "holds 0 frames" in err and "What to do" in err, err
    assert not _written(tmp_path / "out")


def test_mesh_with_zero_faces_is_an_error(raw, tmp_path: Path, capsys) -> None:
    root = _copy(raw[0], tmp_path)
    paths = sn.scene_paths(root, sn.read_split(root, "train")[0])
    for mesh in (paths.mesh, paths.labels_mesh):
        write_ply(mesh, np.zeros((3, 3), np.float32), np.zeros((0, 3), np.int64),
                  vertex_data={"label": np.zeros(3, np.uint16)} if mesh == paths.labels_mesh else None)
    status, err = _prepare(capsys, *_scannet_argv(root, tmp_path / "out"))
    assert status == 2 and str(paths.mesh) in err and "no face of positive area" in err, err


def test_every_frame_skipped_names_the_reason_with_an_example(raw, tmp_path: Path, capsys) -> None:
    root = _copy(raw[0], tmp_path)
    sens = sn.scene_paths(root, sn.read_split(root, "train")[0]).sens
    with SensReader(sens) as r:
        frames = [(np.zeros((4, 4)), r.read_color(i)) for i in range(len(r))]  # an export with zero poses
    _sens(sens, frames, size=frames[0][1].shape[1::-1])
    status, err = _prepare(capsys, *_scannet_argv(root, tmp_path / "out"))
    assert status == 2, err
    assert "no frame could be prepared" in err and "most frequent reason invalid_pose (6 of 6)" in err
    assert "frame 0 (scans/" in err and "not rigid" in err and "What to do: the scan's camera tracking" in err
    assert not _written(tmp_path / "out")


# -- errors that mislead --------------------------------------------------------------------------
def test_missing_matterport_depth_is_named(raw, tmp_path: Path, capsys) -> None:
    _, mroot = raw
    mroot = _copy(mroot, tmp_path)
    house = mp.list_houses(mroot)[0]
    cams = mp.read_house(mroot, house).cameras
    level = next(c for c in cams if c.camera == 1)  # a level camera: one the house selects
    depth = mp.house_paths(mroot, house).depth_path(level)
    depth.unlink()
    status, err = _prepare(capsys, "--dataset", "matterport", "--root", str(mroot), "--split", "test",
                           "--scene", house, "--out", str(tmp_path / "out"))
    assert status == 0, err
    m = read_manifest(next((tmp_path / "out").rglob("manifest.parquet")))
    row = m[m.frame_index == level.index].iloc[0]
    assert row.reason == "corrupt_payload" and row.source_file.endswith(level.color_file)
    assert depth.name in row.message and "expected a Matterport 16-bit depth PNG" in row.message


def test_manifest_without_the_message_column_still_reads(tmp_path: Path) -> None:
    old = pd.DataFrame([{c: (0 if t == "int64" else "x") for c, t in COLUMNS.items() if c != "message"}])
    old.to_parquet(tmp_path / "old.parquet")
    assert read_manifest(tmp_path / "old.parquet")["message"].tolist() == [""]


# -- stale state ----------------------------------------------------------------------------------
def test_failed_rerun_leaves_no_old_done(raw, tmp_path: Path, capsys) -> None:
    root = _copy(raw[0], tmp_path)
    argv = _scannet_argv(root, tmp_path / "out")
    assert _prepare(capsys, *argv)[0] == 0
    d = next((tmp_path / "out").rglob("done")).parent
    sn.scene_paths(root, argv[7]).sens.unlink()  # the input disappears after a good run
    status, err = _prepare(capsys, *argv)
    assert status == 2 and ".sens" in err
    assert sorted(p.name for p in d.iterdir()) == []  # no done, manifest or shards of the old run


# -- faults ---------------------------------------------------------------------------------------
def test_disk_full_before_a_shard_names_folder_and_bytes_and_leaves_nothing(raw, tmp_path: Path, capsys,
                                                                          monkeypatch) -> None:
    import pipeline.shards as shards

    real = shutil.disk_usage

    def almost_full(path):  # 1 kB left: the first shard (not pre-checked) fits, the second does not
        return real(path)._replace(free=1000)

    monkeypatch.setattr(shards.shutil, "disk_usage", almost_full)
    argv = _scannet_argv(_copy(raw[0], tmp_path), tmp_path / "out")
    status, err = _prepare(capsys, *argv)
    folder = tmp_path / "out" / "scannet" / "train" / argv[7]
    assert status == 2 and f"{folder}: not enough free space to write shard_00001.h5" in err, err
    assert "bytes needed, 1000 free" in err and "Traceback" not in err
    assert not _written(tmp_path / "out")  # the finished first shard is removed too


def test_enospc_while_writing_a_shard_removes_the_partial_file(tmp_path: Path, monkeypatch) -> None:
    import errno

    import pipeline.shards as shards
    from pipeline.errors import DiskFullError

    def write_then_fail(self, path: Path) -> None:
        path.write_bytes(b"\0" * 4096)  # what HDF5 got out before the disk filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shards._OpenShard, "_write", write_then_fail)
    sample = _shard_sample()
    with pytest.raises(DiskFullError, match=rf"{tmp_path}: not enough free space to write shard_00000\.h5: "
                       r"about \d+ bytes needed"):
        with shards.ShardWriter(tmp_path, frames_per_shard=1) as writer:
            writer.append(sample)
    assert list(tmp_path.iterdir()) == []


def _shard_sample():
    from pipeline.frame_sample import FrameSample

    h, w, k, m, s = 4, 6, 5, 3, 2
    return FrameSample(
        dataset="scannet", scene_id="scene0000_00", frame_index=0, source_file="x.sens", split="train",
        image=np.zeros((3, h, w), np.uint8), depth=np.ones((h, w), np.float32),
        rendered_depth=np.ones((h, w), np.float32), amodal_depth=np.ones((h, w), np.float32),
        intrinsics=np.ones(4, np.float32), world_to_camera=np.eye(4, dtype=np.float32),
        near_surface_points=np.zeros((k, 3), np.float32), near_surface_labels=np.zeros(k, np.uint8),
        near_surface_valid=np.ones(k, bool), non_surface_points=np.zeros((m, 3), np.float32),
        non_surface_valid=np.ones(m, bool), visible_faces=np.arange(3, dtype=np.int32),
        near_surface_offsets=np.zeros(k, np.float32), surface_points=np.zeros((s, 3), np.float32),
        surface_normals=np.zeros((s, 3), np.float32), surface_colors=np.zeros((s, 3), np.uint8),
        surface_colored=False)
