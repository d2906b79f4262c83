"""`dgs inspect` on the tiny prepared data: the PNG panel and the PLY hold what the shard holds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from plyfile import PlyData

from benchmark.inspector import COLOURS, KINDS, main
from pipeline.errors import EXIT_USER_ERROR, run_main
from pipeline.formats.ply import write_ply
from pipeline.ground_truth import visible_mesh
from pipeline.manifest import read_manifest
from pipeline.shards import ShardReader
from pipeline.testset import list_test_frames, read_test_frame


def _vertices(path: Path) -> np.ndarray:
    return PlyData.read(str(path))["vertex"].data


def test_a_shard_row_gives_a_panel_and_a_labelled_ply(prepared_tiny, tmp_path: Path, capsys) -> None:
    manifest = read_manifest(prepared_tiny.manifest("scannet", "test"))
    ok = manifest[manifest.status == "ok"].iloc[1]
    shard = prepared_tiny.manifest("scannet", "test").parent / ok.shard
    with ShardReader(shard) as reader:
        sample = reader[int(ok.row)]
    out = tmp_path / "view" / "frame"
    assert main([str(shard), "--row", str(ok.row), "--root", str(prepared_tiny.scannet_root),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{sample.scene_id} frame {sample.frame_index}" in printed and sample.source_file in printed

    with Image.open(out.with_suffix(".png")) as png:
        pixels = np.asarray(png.convert("RGB"))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300 and pixels.std() > 10  # a drawn panel, not blank
    orange = np.all(pixels == COLOURS["inward"], axis=-1).sum()
    blue = np.all(pixels == COLOURS["outward"], axis=-1).sum()
    assert orange > 20 and blue > 20  # both labels are drawn

    vertex = _vertices(out.with_suffix(".ply"))
    near_ok, labels = sample.near_surface_valid, sample.near_surface_labels
    expected = {"inward": int((near_ok & (labels == 1)).sum()), "outward": int((near_ok & (labels == 0)).sum()),
                "non_surface": int(sample.non_surface_valid.sum())}
    mesh_vertices, mesh_faces = visible_mesh("scannet", prepared_tiny.scannet_root, sample.scene_id,
                                             sample.visible_faces, sample.world_to_camera.astype(np.float64))
    expected["mesh"] = len(mesh_vertices)
    for name, count in expected.items():
        assert (vertex["kind"] == KINDS[name]).sum() == count, name
    assert min(expected.values()) > 0
    inward = vertex[vertex["kind"] == KINDS["inward"]]
    points = np.stack([inward["x"], inward["y"], inward["z"]], axis=1)
    np.testing.assert_array_equal(points, sample.near_surface_points[near_ok & (labels == 1)])
    assert {tuple(c) for c in np.stack([inward["red"], inward["green"], inward["blue"]], 1)} == {COLOURS["inward"]}
    faces = PlyData.read(str(out.with_suffix(".ply")))["face"].data["vertex_indices"]
    assert len(faces) == len(mesh_faces) == sample.visible_face_count
    assert np.all(vertex["kind"][np.concatenate(faces)] == KINDS["mesh"])  # faces join mesh vertices only


def test_a_manifest_frame_without_root_gives_points_only(prepared_tiny, tmp_path: Path, capsys) -> None:
    path = prepared_tiny.manifest("scannet", "val")
    table = read_manifest(path)
    row = table[table.status == "ok"].iloc[-1]
    out = tmp_path / "val"
    assert main([str(path), "--scene", row.scene_id, "--frame", str(row.frame_index), "--out", str(out)]) == 0
    assert f"frame {row.frame_index}" in capsys.readouterr().out
    kinds = _vertices(out.with_suffix(".ply"))["kind"]
    assert KINDS["mesh"] not in kinds and set(np.unique(kinds)) == {0, 1, 2}


def test_bad_rows_and_frames_are_user_errors(prepared_tiny, tmp_path: Path, capsys) -> None:
    path = prepared_tiny.manifest("scannet", "val")
    assert run_main(main, [str(path), "--frame", "99999", "--out", str(tmp_path / "x")]) == EXIT_USER_ERROR
    assert "no usable frame" in capsys.readouterr().err
    shard = next(path.parent.glob("*/shard_00000.h5"))
    assert run_main(main, [str(shard), "--row", "999", "--out", str(tmp_path / "x")]) == EXIT_USER_ERROR
    assert "row 999 does not exist" in capsys.readouterr().err


def test_a_prediction_is_shown_beside_the_ground_truth(prepared_tiny, tmp_path: Path) -> None:
    dataset = "scannet"
    manifest = prepared_tiny.manifest(dataset, "test")
    ref = list_test_frames(manifest, dataset, prepared_tiny.scannet_root)[0]
    frame = read_test_frame(ref)
    prediction = tmp_path / "perfect" / dataset / ref.scene_id / f"{ref.frame_index:06d}.ply"
    prediction.parent.mkdir(parents=True)
    write_ply(prediction, frame.gt_vertices, frame.gt_faces)  # a prediction equal to the ground truth
    out = tmp_path / "pred"
    assert main([str(manifest), "--prediction", str(prediction), "--root", str(prepared_tiny.scannet_root),
                 "--out", str(out)]) == 0
    kinds = _vertices(out.with_suffix(".ply"))["kind"]
    assert (kinds == KINDS["prediction"]).sum() == (kinds == KINDS["mesh"]).sum() == len(frame.gt_vertices)
    with Image.open(out.with_suffix(".png")) as png:
        pixels = np.asarray(png.convert("RGB")).astype(int)
    green = (pixels[..., 1] > pixels[..., 0] + 40) & (pixels[..., 1] > pixels[..., 2] + 40)
    red = (pixels[..., 0] > pixels[..., 1] + 60) & (pixels[..., 0] > pixels[..., 2] + 60)
    assert green.sum() > 100 and red.sum() < green.sum() / 20  # a perfect prediction renders green
