"""The prepare runner on a scene built here: manifest, shards, skips, identical bytes, crash, Dask."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.formats.errors import FormatError
from pipeline.frames import PrepareConfig, RawFrame, SceneGeometry, SkippedFrame, prepare_frame
from pipeline.manifest import merge_manifests, read_manifest, skip_summary
from pipeline.prepare import make_client, prepare_scene, scene_dir
from pipeline.prepare_config import JobOptions
from pipeline.shards import ShardReader
from pipeline.sources import SceneSource, check_mesh

CFG = PrepareConfig(near_surface_points=256, non_surface_points=64, raycast_threads=1)
OPTS = JobOptions(frames_per_shard=2)
K_COLOR = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])


def box(lo, hi, inward: bool) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box: 8 vertices, 12 triangles (normals out, or in for a room)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    v = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    return v, (f[:, ::-1] if inward else f)


def look(yaw: float, position=(0.0, 0.0, 1.3)) -> np.ndarray:
    z = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    x = np.cross(z, [0.0, 0.0, 1.0])
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    pose[:3, 3] = position
    return pose


def room_source(n=7, invalid=(2,), corrupt=(4,), fail_at=None, degenerate=False) -> SceneSource:
    """A 6×5×2.6 m room (walls = NYU40 1) with a table-sized box (NYU40 7) and a turning camera."""
    rv, rf = box([-3, -2.5, 0], [3, 2.5, 2.6], inward=True)
    bv, bf = box([1.0, -0.5, 0], [1.8, 0.5, 0.8], inward=False)
    v = np.concatenate([rv, bv]).astype(np.float32)
    f = np.concatenate([rf, bf + len(rv)])
    labels = np.r_[np.ones(len(rf)), np.full(len(bf), 7)].astype(np.uint8)
    if degenerate:  # a repeated-index face first: every later face id shifts by one
        f, labels = np.concatenate([[[0, 0, 1]], f]), np.r_[0, labels].astype(np.uint8)
    faces, labs, ids = check_mesh("room.ply", v, f, labels)

    def read():
        for i in range(n):
            if fail_at is not None and i == fail_at:
                raise OSError("disk went away")
            if i in corrupt:
                yield SkippedFrame(i, "room.sens", "corrupt_payload")
                continue
            pose = look(0.6 * i)
            if i in invalid:
                pose[0, 0] = -np.inf
            color = np.random.default_rng(i).integers(0, 256, (240, 320, 3), dtype=np.uint8)
            yield RawFrame(i, "room.sens", pose, color, K_COLOR, None, None)

    return SceneSource("scannet", "scene0000_00", "train", "room.ply", v, faces, labs, ids,
                       len(f) - len(faces), np.arange(n), read)


def digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory) -> Path:
    return prepare_scene(room_source(), tmp_path_factory.mktemp("serial"), CFG, OPTS, progress=False)


def test_manifest_shards_and_rows_match_prepare_frame(serial_run: Path) -> None:
    d = serial_run
    assert d.parts[-3:] == ("scannet", "train", "scene0000_00")
    assert sorted(p.name for p in d.iterdir()) == ["done", "manifest.parquet", "shard_00000.h5",
                                                  "shard_00001.h5", "shard_00002.h5"]
    m = read_manifest(d / "manifest.parquet")
    assert m.frame_index.tolist() == list(range(7))
    assert m.status.tolist() == ["ok", "ok", "skipped", "ok", "skipped", "ok", "ok"]
    assert m.reason[m.status == "skipped"].tolist() == ["invalid_pose", "corrupt_payload"]
    summary = skip_summary(m)
    assert dict(zip(summary.reason, summary.frames)) == {"": 5, "corrupt_payload": 1, "invalid_pose": 1}
    done = json.loads((d / "done").read_text())
    assert done["ok"] == 5 and done["skipped"] == {"corrupt_payload": 1, "invalid_pose": 1}
    src = room_source()
    geo = SceneGeometry.from_mesh(src.vertices, src.faces, src.face_labels, CFG.structure_labels)
    raws = {r.index: r for r in src.read_frames() if isinstance(r, RawFrame)}
    for rec in m[m.status == "ok"].itertuples():
        want = prepare_frame(geo, raws[rec.frame_index], CFG, dataset="scannet",
                             scene_id="scene0000_00", split="train")
        with ShardReader(d / rec.shard) as reader:
            got = reader[rec.row]
        for name, value in vars(want).items():
            np.testing.assert_array_equal(getattr(got, name), value, err_msg=name)
        assert rec.n_valid_near == want.near_surface_valid.sum()
        assert rec.visible_faces == want.visible_faces.size > 0


def test_rerun_is_byte_identical_and_merge(serial_run: Path, tmp_path: Path) -> None:
    first = digest(serial_run)
    again = prepare_scene(room_source(), tmp_path, CFG, OPTS, progress=False)
    assert digest(again) == first
    merged = merge_manifests([serial_run / "manifest.parquet", again / "manifest.parquet"],
                             tmp_path / "all.parquet")
    assert len(merged) == 14
    ok = merged[merged.status == "ok"].iloc[0]
    assert (tmp_path / ok.shard).resolve().exists()


def test_crash_leaves_nothing_finished_and_rerun_completes(serial_run: Path, tmp_path: Path) -> None:
    with pytest.raises(OSError, match="disk went away"):
        prepare_scene(room_source(fail_at=6), tmp_path, CFG, OPTS, progress=False)
    d = scene_dir(tmp_path, "scannet", "train", "scene0000_00")
    # frames 0,1 | 3,5 filled two shards; frame 6 would have started the third
    assert sorted(p.name for p in d.iterdir()) == ["shard_00000.h5", "shard_00001.h5"]
    assert not (d / "done").exists() and not (d / "manifest.parquet").exists()
    prepare_scene(room_source(), tmp_path, CFG, OPTS, progress=False)
    assert digest(d) == digest(serial_run)


def test_degenerate_faces_dropped_and_ids_kept(serial_run: Path, tmp_path: Path) -> None:
    src = room_source(degenerate=True)
    assert src.dropped_faces == 1 and src.face_ids[0] == 1
    d = prepare_scene(src, tmp_path, CFG, OPTS, progress=False)
    assert json.loads((d / "done").read_text())["dropped_degenerate_faces"] == 1
    with ShardReader(d / "shard_00000.h5") as a, ShardReader(serial_run / "shard_00000.h5") as b:
        np.testing.assert_array_equal(a[0].visible_faces, b[0].visible_faces + 1)  # original ids
        np.testing.assert_array_equal(a[0].near_surface_points, b[0].near_surface_points)


def test_nan_vertex_fails_naming_the_file() -> None:
    v, f = box([0, 0, 0], [1, 1, 1], inward=False)
    v[3, 1] = np.nan
    with pytest.raises(FormatError, match=r"room_bad\.ply.*1 of 8 vertices are NaN"):
        check_mesh("room_bad.ply", v, f, None)


def test_dask_over_tcp_equals_serial(serial_run: Path, tmp_path: Path) -> None:
    from distributed import LocalCluster

    # in-process workers keep the test fast; the client connects by address as a remote one would
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        client = make_client(0, cluster.scheduler_address)
        opts = JobOptions(frames_per_shard=2, window_per_worker=1)
        try:
            d = prepare_scene(room_source(), tmp_path / "a", CFG, opts, client=client, progress=False)
            dd = prepare_scene(room_source(degenerate=True), tmp_path / "b", CFG, opts, client=client,
                               progress=False)  # the broadcast face-id map is applied on workers
        finally:
            client.close()
    assert digest(d) == digest(serial_run)
    serial_dd = prepare_scene(room_source(degenerate=True), tmp_path / "c", CFG, OPTS, progress=False)
    assert digest(dd) == digest(serial_dd)
