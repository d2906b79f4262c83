"""HDF5 shards: schema round trip, identical bytes on re-run, atomic finish, schema-version check."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.frame_sample import FrameSample
from pipeline.shards import (ARRAY_FIELDS, MIN_SCHEMA_VERSION, SCHEMA_VERSION, SURFACE_SAMPLES, SchemaError,
                             ShardLayout, ShardReader, ShardWriter)

W, H, K, M, S = 16, 12, 32, 8, 6


def make_sample(i: int, n_faces: int | None = None) -> FrameSample:
    """A random but reproducible frame with NaN holes, padding and a sparse visible-face set."""
    rng = np.random.default_rng(1000 + i)
    depth = rng.uniform(0.5, 4.0, (H, W)).astype(np.float32)
    depth[rng.random((H, W)) < 0.2] = np.nan
    near_valid = np.ones(K, bool)
    near_valid[K - i:] = False  # frame i pads i points
    n_faces = int(rng.integers(0, 500)) if n_faces is None else n_faces
    faces = np.sort(rng.choice(300_000, size=n_faces, replace=False)).astype(np.int32)
    return FrameSample(
        dataset="scannet", scene_id="scene0000_00", frame_index=7 * i,
        source_file=f"scans/scene0000_00/scene0000_00.sens#{i}", split="train",
        image=rng.integers(0, 256, (3, H, W), dtype=np.uint8), depth=depth,
        rendered_depth=(depth + 0.01).astype(np.float32),
        amodal_depth=np.where(np.isnan(depth), np.nan, depth + 1).astype(np.float32),
        intrinsics=np.array([14.4, 14.4, 8, 6], np.float32),
        world_to_camera=rng.normal(size=(4, 4)).astype(np.float32),
        near_surface_points=rng.normal(size=(K, 3)).astype(np.float32),
        near_surface_labels=rng.integers(0, 2, K, dtype=np.uint8), near_surface_valid=near_valid,
        non_surface_points=rng.normal(size=(M, 3)).astype(np.float32),
        non_surface_valid=rng.random(M) < 0.8, visible_faces=faces,
        near_surface_offsets=rng.uniform(-0.1, 0.1, K).astype(np.float32),
        surface_points=rng.normal(size=(S, 3)).astype(np.float32),
        surface_normals=rng.normal(size=(S, 3)).astype(np.float32),
        surface_colors=rng.integers(0, 256, (S, 3), dtype=np.uint8), surface_colored=bool(i % 2))


def assert_same(a: FrameSample, b: FrameSample) -> None:
    for name, va in vars(a).items():
        vb = getattr(b, name)
        if isinstance(va, np.ndarray):
            assert vb.dtype == va.dtype and vb.shape == va.shape, name
            np.testing.assert_array_equal(vb, va, err_msg=name)  # NaN == NaN here
        else:
            assert vb == va and type(vb) is type(va), name


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("compression", ["zstd", "gzip", "lzf"])
def test_round_trip_every_field(tmp_path: Path, compression: str) -> None:
    samples = [make_sample(i) for i in range(5)] + [make_sample(5, n_faces=0)]
    with ShardWriter(tmp_path, frames_per_shard=4, compression=compression) as w:
        places = [w.append(s) for s in samples]
    assert places == [("shard_00000.h5", r) for r in range(4)] + [("shard_00001.h5", r) for r in range(2)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard_00000.h5", "shard_00001.h5"]
    for s, (name, row) in zip(samples, places):
        with ShardReader(tmp_path / name) as r:
            assert_same(r[row], s)
            assert r.layout == ShardLayout(W, H, K, M, S)
    with ShardReader(tmp_path / "shard_00001.h5") as r:
        assert len(r) == 2 and r.visible_faces(1).shape == (0,)
        assert r.read(0, fields=("frame_index", "split")) == {"frame_index": 28, "split": "train"}
        f = r.file
        assert f["image"].chunks == (1, 3, H, W)  # one frame per chunk
        assert f.attrs["schema_version"] == SCHEMA_VERSION


def test_rerun_gives_identical_bytes(tmp_path: Path) -> None:
    def write(out: Path) -> list[str]:
        with ShardWriter(out, frames_per_shard=3, attrs={"config": '{"seed": 0}'}) as w:
            for i in range(4):
                w.append(make_sample(i))
        return [sha(out / n) for n in w.finished]

    first = write(tmp_path / "a")
    time.sleep(1.1)  # HDF5 timestamps have 1 s resolution: a stored time would now differ
    assert write(tmp_path / "b") == first
    other = make_sample(3)
    other.near_surface_points[0, 0] += 1e-3  # the hash does see content changes
    with ShardWriter(tmp_path / "c", frames_per_shard=3, attrs={"config": '{"seed": 0}'}) as w:
        for s in [make_sample(0), make_sample(1), make_sample(2), other]:
            w.append(s)
    assert [sha(tmp_path / "c" / n) for n in w.finished][0] == first[0]
    assert sha(tmp_path / "c" / w.finished[1]) != first[1]


def test_crash_mid_shard_leaves_nothing_finished_looking(tmp_path: Path) -> None:
    def frames():
        for i in range(5):
            if i == 3:
                raise RuntimeError("reader died")
            yield make_sample(i)

    with pytest.raises(RuntimeError, match="reader died"):
        with ShardWriter(tmp_path, frames_per_shard=2) as w:
            for s in frames():
                w.append(s)
    # shard 0 (rows 0-1) was complete; shard 1 held one row when the source failed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard_00000.h5"]
    # a failure while the file itself is being written (here: an attribute h5py cannot store),
    # even without the context manager's cleanup: the temporary file is removed, nothing is left
    w = ShardWriter(tmp_path / "killed", frames_per_shard=2, attrs={"bad": object()})
    w.append(make_sample(0))
    with pytest.raises(TypeError):
        w.append(make_sample(1))  # the shard is full: written now
    assert list((tmp_path / "killed").iterdir()) == []
    with pytest.raises(FileNotFoundError, match="did not finish"):
        len(ShardReader(tmp_path / "killed" / "shard_00000.h5"))


def test_schema_version_mismatch_names_the_file(tmp_path: Path) -> None:
    with ShardWriter(tmp_path) as w:
        w.append(make_sample(0))
    path = tmp_path / "shard_00000.h5"
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaError, match=f"shard {path}.*schema_version {SCHEMA_VERSION + 1}"):
        ShardReader(path)[0]


def test_inconsistent_frame_is_refused(tmp_path: Path) -> None:
    bad = make_sample(1)
    bad.near_surface_points = bad.near_surface_points[:-1]
    with pytest.raises(ValueError, match="near_surface_points.*expects"):
        with ShardWriter(tmp_path) as w:
            w.append(make_sample(0))
            w.append(bad)
    assert list(tmp_path.iterdir()) == []
    unsorted = make_sample(2, n_faces=5)
    unsorted.visible_faces = unsorted.visible_faces[::-1].copy()
    with pytest.raises(ValueError, match="strictly increasing"):
        with ShardWriter(tmp_path / "u") as w:
            w.append(unsorted)


def test_version_1_shards_and_manifests_read_structure_source_as_unknown(tmp_path: Path) -> None:
    """Schema 2 added ``structure_source``; a version-1 file (no such dataset) still reads, as do
    manifests written before the column existed."""
    import pandas as pd

    from pipeline.manifest import COLUMNS, read_manifest

    sample = make_sample(0)
    sample.structure_source = "inferred"
    with ShardWriter(tmp_path) as w:
        w.append(sample)
    path = tmp_path / "shard_00000.h5"
    with ShardReader(path) as reader:
        assert reader[0].structure_source == "inferred" and reader.version == SCHEMA_VERSION
    with h5py.File(path, "a") as f:  # what a version-1 writer left
        del f["structure_source"]
        f.attrs["schema_version"] = 1
    with ShardReader(path) as reader:
        old = reader[0]
        assert reader.version == 1 and old.structure_source == "unknown"
        assert reader.read(0, fields=("structure_source", "scene_id")) == {
            "structure_source": "unknown", "scene_id": "scene0000_00"}
    np.testing.assert_array_equal(old.amodal_depth, sample.amodal_depth)
    manifest = tmp_path / "manifest.parquet"
    row = {c: ("x" if t == "string" else 0) for c, t in COLUMNS.items() if c != "structure_source"}
    pd.DataFrame([row]).to_parquet(manifest)
    assert read_manifest(manifest)["structure_source"].tolist() == ["unknown"]
def test_older_versions_read_with_the_newer_fields_absent(tmp_path: Path, as_version_1) -> None:
    assert MIN_SCHEMA_VERSION == 1 and all(MIN_SCHEMA_VERSION <= f.since <= SCHEMA_VERSION for f in ARRAY_FIELDS)
    added = {f.attr for f in ARRAY_FIELDS if f.since == SURFACE_SAMPLES}
    assert added == {"near_surface_offsets", "surface_points", "surface_normals", "surface_colors", "surface_colored"}
    sample = make_sample(2)
    with ShardWriter(tmp_path) as w:
        w.append(sample)
    path = tmp_path / "shard_00000.h5"
    with ShardReader(path) as r:
        r.require(tuple(added), "the SDF loss")  # a current shard has everything
    as_version_1(path)
    with ShardReader(path) as r:
        row = r[0]
        assert r.version == 1 and r.layout == ShardLayout(W, H, K, M, 0)
        for name in added:
            assert getattr(row, name) is None, name
        np.testing.assert_array_equal(row.near_surface_points, sample.near_surface_points)
        assert r.read(0, ("surface_points", "split")) == {"surface_points": None, "split": "train"}
        r.require(("near_surface_points", "image"), "training")  # version-1 fields: no error
        with pytest.raises(SchemaError, match=rf"shard {path}: loss.kind=sdf needs \['surface_points'\].*version "
                                              rf"{SURFACE_SAMPLES} on.*version 1.*python -m pipeline.prepare "
                                              rf"--dataset scannet --split train --scene scene0000_00"):
            r.require(("surface_points", "image"), "loss.kind=sdf")


def test_writer_refuses_a_frame_without_the_current_fields(tmp_path: Path) -> None:
    old = make_sample(0)
    old.surface_normals = None
    with pytest.raises(ValueError, match="'surface_normals' is missing"):
        with ShardWriter(tmp_path) as w:
            w.append(old)
