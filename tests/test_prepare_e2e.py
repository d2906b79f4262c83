"""End to end on generated ScanNet and Matterport roots: CLI, selection, corrupt payloads, merge."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.formats import matterport as mp
from pipeline.formats import scannet as sn
from pipeline.formats.sens import SensReader
from pipeline.manifest import main as manifest_main
from pipeline.manifest import read_manifest
from pipeline.prepare import main as prepare_main
from pipeline.select import camera_pitch_deg
from pipeline.shards import ShardReader
from pipeline.synthetic.config import preset
from pipeline.synthetic.generate import generate_matterport, generate_scannet

OPTIONS = json.dumps({"near_surface_points": 128, "non_surface_points": 32, "frames_per_shard": 4,
                      "width": 64, "height": 48, "focal": 57.6})


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("synthetic")
    cfg = preset("tiny", frames_per_scene=14, scannet_train=1, scannet_val=1, scannet_test=1,
                 panoramas_per_house=1, invalid_pose_fraction=0.15)
    return (generate_scannet(base / "scannet", cfg, progress=False),
            generate_matterport(base / "matterport", cfg, progress=False))


def run(*args: str) -> None:
    assert prepare_main([*args, "--options", OPTIONS]) == 0


def digest(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_scannet_train_with_corrupt_frame_and_rerun(roots, tmp_path: Path) -> None:
    root = roots[0]
    scene = sn.read_split(root, "train")[0]
    sens = sn.scene_paths(root, scene).sens
    with SensReader(sens) as r:
        valid = r.valid_pose_mask.copy()
        bad = int(np.flatnonzero(valid)[1])
        offset, nbytes = int(r.color_offsets[bad]), int(r.color_nbytes[bad])
    with open(sens, "r+b") as f:  # garble the JPEG of one valid frame after its header
        f.seek(offset + 20)
        f.write(b"\x00" * (nbytes - 40))
    run("--dataset", "scannet", "--root", str(root), "--split", "train", "--scene", scene,
        "--out", str(tmp_path / "serial"), "--workers", "0")
    d = tmp_path / "serial" / "scannet" / "train" / scene
    m = read_manifest(d / "manifest.parquet")
    assert m.frame_index.tolist() == list(range(len(valid)))
    reasons = dict(zip(m.frame_index, m.reason))
    assert reasons[bad] == "corrupt_payload"
    assert all(reasons[i] == "invalid_pose" for i in np.flatnonzero(~valid))
    assert (m.status == "ok").sum() >= len(valid) - (~valid).sum() - 2
    ok = m[m.status == "ok"].iloc[0]
    with ShardReader(d / ok.shard) as reader:
        s = reader[int(ok.row)]
    assert s.image.shape == (3, 48, 64) and s.near_surface_points.shape == (128, 3)
    assert np.isfinite(s.rendered_depth).mean() > 0.9 and s.source_file == f"scans/{scene}/{scene}.sens"
    # --out may also name the scene directory itself (as the workflow rule passes it): same bytes.
    # (Dask equality is tested in test_prepare.py with in-process workers: spawning worker
    # processes costs ~25 s of imports on a 2-core machine, too slow for the test suite.)
    run("--dataset", "scannet", "--root", str(root), "--split", "train", "--scene", scene,
        "--out", str(tmp_path / "again" / "scannet" / "train" / scene), "--workers", "0")
    assert digest(tmp_path / "again" / "scannet" / "train" / scene) == digest(d)


def test_scannet_test_split_and_matterport_and_merge(roots, tmp_path: Path) -> None:
    root, mroot = roots
    scene = sn.read_split(root, "test")[0]
    run("--dataset", "scannet", "--root", str(root), "--split", "test", "--scene", scene,
        "--out", str(tmp_path), "--workers", "0")
    m = read_manifest(tmp_path / "scannet" / "test" / scene / "manifest.parquet")
    with SensReader(sn.scene_paths(root, scene).sens) as r:
        cand = np.flatnonzero(r.valid_pose_mask)
    assert m.frame_index.tolist() == cand[np.rint(np.linspace(0, cand.size - 1, 10)).astype(int)].tolist()

    house = mp.list_houses(mroot)[0]
    run("--dataset", "matterport", "--root", str(mroot), "--split", "test", "--scene", house,
        "--out", str(tmp_path), "--workers", "0")
    mm = read_manifest(tmp_path / "matterport" / "test" / house / "manifest.parquet")
    cams = mp.read_house(mroot, house).cameras
    level_or_down = [c.index for c in cams if camera_pitch_deg(c.camera_to_world) <= 15][:10]
    assert mm.frame_index.tolist() == level_or_down and len(level_or_down) == 10
    # Matterport's camera 0 looks up (+41°), 1 level, 2 down (−41°): the selection keeps level and
    # down cameras, as on real houses (the first panorama's 6 level views, then down views)
    assert {cams[i].camera for i in level_or_down} == {1, 2}
    assert all(camera_pitch_deg(cams[i].camera_to_world) == pytest.approx({1: 0.0, 2: -41.0}[cams[i].camera])
               for i in level_or_down)

    out = tmp_path / "all.parquet"
    assert manifest_main(["merge", "--out", str(out),
                          str(tmp_path / "scannet" / "test" / scene / "done"),
                          str(tmp_path / "matterport" / "test" / house / "done")]) == 0
    merged = read_manifest(out)
    assert len(merged) == len(m) + len(mm)
    first = merged[merged.status == "ok"].iloc[0]
    assert (tmp_path / first.shard).exists()
