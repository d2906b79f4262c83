"""The evaluate stage (benchmark.evaluate, benchmark.predictions) on prepared tiny frames and analytic scenes."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.depth_mesh import mesh_from_depth
from benchmark.evaluate import Settings, evaluate, main, mesh_path, score_frame, write_figures
from benchmark.predictions import load_prediction
from benchmark.protocols import resolve
from benchmark.scoring import evaluate_frame, to_row
from benchmark.render import render_depth
from pipeline.formats.images import encode_png16
from pipeline.formats.ply import read_ply, write_ply
from pipeline.testset import EvalFrame, FrameRef, list_test_frames, read_test_frame

SAMPLES = 20_000


@pytest.fixture(scope="module")
def tiny_frames(prepared_tiny) -> list[tuple[FrameRef, EvalFrame]]:
    """The first two ScanNet test frames of the tiny preparation, with their ground truth."""
    refs = list_test_frames(prepared_tiny.manifest("scannet", "test"), "scannet", prepared_tiny.scannet_root)
    return [(ref, read_test_frame(ref)) for ref in refs[:2]]


def _area(vertices: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())


def _stem(method_dir: Path, ref: FrameRef) -> Path:
    folder = method_dir / ref.dataset / ref.scene_id
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{ref.frame_index:06d}"


def test_perfect_mesh_scores_f1_one_under_both_protocols(tiny_frames, tmp_path):
    method = tmp_path / "perfect"
    for ref, frame in tiny_frames:
        write_ply(_stem(method, ref).with_suffix(".ply"), frame.gt_vertices, frame.gt_faces)
    settings = Settings({"perfect": method}, ("release", "paper"), tmp_path / "out", SAMPLES)
    table = evaluate([ref for ref, _ in tiny_frames], settings)
    assert len(table) == 2 * 2 and set(table["protocol"]) == {"dgs-release", "dgs-paper"}  # aliases
    assert set(table["protocol_hash"]) == {resolve(p, SAMPLES).hash for p in ("dgs-release", "dgs-paper")}
    assert (table["prediction"] == "mesh").all()
    assert (table["structure"] == "inferred").all()  # the synthetic test scene ships no labels
    for variant in ("metric", "fit"):
        # The ground truth is delineated like the prediction (gt_scope), so the same faces are kept;
        # F1 misses 1 only where 20k samples leave a gap > 5 cm on a large face.
        assert np.allclose(table[f"{variant}_f1"], 1.0, atol=1e-3), table[f"{variant}_f1"]
        # Two independent samplings of the same surface: the mean nearest distance is about
        # 0.5·sqrt(area / samples) (≈ 1 cm here), the spacing of the samples, not 0.
        for (ref, frame), rows in zip(tiny_frames, (table.iloc[:2], table.iloc[2:])):
            spacing = np.sqrt(_area(frame.gt_vertices, frame.gt_faces) / SAMPLES)
            assert (rows[f"{variant}_acc"] < spacing).all() and (rows[f"{variant}_compl"] < spacing).all()
    # The fit is near identity; not exact, as the shard's rendered depth also sees faces that the
    # visible-face selection (SPEC §4) left out.
    assert np.allclose(table["fit_a"], 1.0, atol=0.02) and np.allclose(table["fit_b"], 0.0, atol=0.05)
    assert not (tmp_path / "out" / "meshes").exists()  # a mesh method's PLY is not copied


def _plane(offset: float = 0.0, half: float = 3.0, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """The tilted plane z = 2 + 0.3·x (camera frame, metres), 2·half wide in x and y, in n × n
    quads (small, so that the frustum test keeps most of it), moved by ``offset`` metres along its
    unit normal (positive = away from the camera)."""
    s = np.linspace(-half, half, n + 1)
    xx, yy = np.meshgrid(s, s)
    normal = np.array([-0.3, 0.0, 1.0]) / np.hypot(0.3, 1.0)
    vertices = np.stack([xx.ravel(), yy.ravel(), 2.0 + 0.3 * xx.ravel()], axis=1) + offset * normal
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    return vertices, np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])


def _plane_frame(ref: FrameRef, width: int = 64, height: int = 48, focal: float = 57.6) -> EvalFrame:
    """Frame ``ref`` whose ground truth is :func:`_plane` (also its rendered and amodal depth)."""
    gt_v, gt_f = _plane()
    depth = render_depth(gt_v, gt_f, focal, focal, width / 2, height / 2, width, height)
    return EvalFrame(ref, np.zeros((3, height, width), np.uint8), depth, depth, depth,
                     np.array([focal, focal, width / 2, height / 2], np.float32), np.eye(4), np.eye(4),
                     gt_v, gt_f)


def test_plane_shifted_by_10cm_has_zero_precision_until_fitted(tmp_path):
    ref = FrameRef("scannet", "scene_plane", 0, tmp_path / "unused.h5", 0, tmp_path)
    method = tmp_path / "shifted"
    write_ply(_stem(method, ref).with_suffix(".ply"), *_plane(-0.1))  # 10 cm in front of the wall
    settings = Settings({"shifted": method}, ("release", "paper"), tmp_path / "out", SAMPLES)
    rows = pd.DataFrame(score_frame(_plane_frame(ref), "shifted", settings))
    assert list(rows["protocol"]) == ["dgs-release", "dgs-paper"]
    assert (rows["metric_prec"] == 0).all() and (rows["metric_recall"] == 0).all()
    assert np.allclose(rows["metric_acc"], 0.1, atol=0.01) and (rows["metric_acc"] >= 0.1 - 1e-9).all()
    # Along every ray the shifted plane's depth is a fixed multiple of the wall's (both planes pass
    # through the same line at infinity), so the scale/shift fit puts it back on the wall exactly.
    c = 2.0 - 0.1 * np.hypot(0.3, 1.0)
    assert np.allclose(rows["fit_a"], 2.0 / c, atol=1e-4) and np.allclose(rows["fit_b"], 0.0, atol=1e-3)
    assert (rows["fit_f1"] > 0.99).all()  # the raw and fitted meshes' frustum cuts differ at the border


def test_depth_map_method_scores_like_its_meshed_depth(tiny_frames, tmp_path):
    ref, frame = tiny_frames[0]
    npy, png = tmp_path / "npy", tmp_path / "png"
    np.save(_stem(npy, ref).with_suffix(".npy"), frame.rendered_depth)
    mm = np.nan_to_num(frame.rendered_depth * 1000.0).round().astype(np.uint16)
    _stem(png, ref).with_suffix(".png").write_bytes(encode_png16(mm))
    settings = Settings({"npy": npy, "png": png}, ("release",), tmp_path / "out", SAMPLES, save_meshes="all")
    rows = {row["method"]: row for row in score_frame(frame, "npy", settings)
            + score_frame(frame, "png", settings)}
    fx, fy, cx, cy = frame.intrinsics
    v, f = mesh_from_depth(frame.rendered_depth, fx, fy, cx, cy)
    expected = to_row(evaluate_frame(v, f, frame.gt_vertices, frame.gt_faces, frame.rendered_depth,
                                     intrinsics=frame.intrinsics, camera_to_world=frame.camera_to_world,
                                     protocol=resolve("dgs-release", SAMPLES)))
    for key in ("metric_acc", "metric_compl", "metric_f1", "fit_f1", "metric_depth_abs_rel", "faces_kept"):
        assert rows["npy"][key] == pytest.approx(expected[key], rel=1e-9), key
        assert rows["png"][key] == pytest.approx(expected[key], rel=0.02, abs=2e-3), key  # mm rounding
    assert rows["npy"]["prediction"] == "depth"
    written = read_ply(mesh_path(settings.out, "npy", ref))  # the derived mesh is an output
    assert len(written.faces) == len(f)


def test_missing_prediction_is_penalized_or_dropped_and_a_missing_folder_an_error(tiny_frames, tmp_path):
    ref, frame = tiny_frames[0]
    (tmp_path / "empty").mkdir()
    drop = {"name": "paper-drop", "base": "dgs-paper", "missing": "drop"}
    settings = Settings({"empty": tmp_path / "empty"}, ("release", drop), tmp_path / "out", SAMPLES)
    penalized, dropped = score_frame(frame, "empty", settings)
    assert (penalized["protocol"], dropped["protocol"]) == ("dgs-release", "paper-drop")
    for row in (penalized, dropped):
        assert row["prediction"] == "missing" and row["metric_reason"] == "missing_prediction"
    assert penalized["missing"] == "penalize" and penalized["metric_f1"] == 0.0 and penalized["fit_acc"] == 1.0
    assert dropped["missing"] == "drop" and np.isnan(dropped["metric_f1"]) and np.isnan(dropped["fit_acc"])
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate([ref], Settings({"empty": tmp_path / "empty"}, ("relase",), tmp_path / "out"))
    gone = Settings({"gone": tmp_path / "gone"}, ("release",), tmp_path / "out", SAMPLES)
    with pytest.raises(FileNotFoundError, match="gone"):
        evaluate([ref], gone)


def test_grid_prediction_is_meshed_at_half_and_written_as_ply(tmp_path):
    ref = FrameRef("scannet", "scene_ball", 7, tmp_path / "unused.h5", 0, tmp_path)
    cell, n, centre, radius = 0.05, 24, np.array([0.0, 0.0, 2.0]), 0.4
    origin = centre - cell * (n - 1) / 2
    idx = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1)
    distance = np.linalg.norm(origin + idx * cell - centre, axis=-1)
    occupancy = np.clip(0.5 + (radius - distance) / cell, 0, 1).astype(np.float16)  # 0.5 on the sphere
    method = tmp_path / "grid"
    np.savez(_stem(method, ref).with_suffix(".npz"), occupancy=occupancy, origin=origin,
             cell=np.full(3, cell))
    vertices, faces, kind = load_prediction(method, _plane_frame(ref))
    assert kind == "grid" and len(faces) > 100
    assert np.allclose(np.linalg.norm(vertices - centre, axis=1), radius, atol=0.01)
    settings = Settings({"grid": method}, ("release",), tmp_path / "out", 2_000, save_meshes="all")
    rows = score_frame(_plane_frame(ref), "grid", settings)
    assert rows[0]["prediction"] == "grid" and rows[0]["faces_total"] == len(faces)
    ply = read_ply(mesh_path(settings.out, "grid", ref))
    assert np.allclose(ply.vertices, vertices, atol=1e-6) and np.array_equal(ply.faces, faces)


def test_cli_writes_the_per_frame_csv_with_missing_frames_counted(prepared_tiny, tiny_frames, tmp_path):
    method = tmp_path / "perfect"
    ref, frame = tiny_frames[0]
    write_ply(_stem(method, ref).with_suffix(".ply"), frame.gt_vertices, frame.gt_faces)
    out = tmp_path / "out"
    assert main(["--method", f"perfect={method}", "--manifest",
                 f"scannet={prepared_tiny.manifest('scannet', 'test')}",
                 "--root", f"scannet={prepared_tiny.scannet_root}", "--out", str(out),
                 "--samples", str(SAMPLES), "--protocols", "release", "--figures", "2"]) == 0
    table = pd.read_csv(out / "per_frame.csv", keep_default_na=False, na_values=[""])
    n_frames = len(list_test_frames(prepared_tiny.manifest("scannet", "test"), "scannet",
                                    prepared_tiny.scannet_root))
    assert len(table) == n_frames and not list(out.glob("*.partial"))
    assert (table["prediction"] == "missing").sum() == n_frames - 1
    assert (table["metric_reason"] == "missing_prediction").sum() == n_frames - 1
    assert (table.loc[table["prediction"] == "missing", "metric_f1"] == 0).all()  # penalized
    assert table.loc[table["frame_index"] == ref.frame_index, "metric_f1"].item() == pytest.approx(1.0, abs=1e-3)
    # Figures only for frames with a prediction (one here), plus the F1 histogram.
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == ["f1_histogram.png", f"perfect_scannet_{ref.scene_id}_{ref.frame_index:06d}.png"]


def _noisy_grid(ref: FrameRef, frame: EvalFrame, method: Path, seed: int, res: int = 24) -> None:
    """A noisy occupancy grid over the frame's ground-truth box (floaters and holes, as an undertrained
    model predicts), written as the method's prediction of ``ref``."""
    lo, hi = frame.gt_box()
    cell = (hi - lo) / res
    rng = np.random.default_rng(seed)
    occupancy = rng.random((res, res, res)).astype(np.float16)
    np.savez(_stem(method, ref).with_suffix(".npz"), occupancy=occupancy, origin=lo + cell / 2, cell=cell)


def test_reuse_across_methods_and_protocols_changes_no_value(tiny_frames, tmp_path):
    """The shared ground-truth point sets and k-d trees, renders and prediction point sets give the
    same per-frame table, to the last bit, as scoring every (method, protocol) from scratch."""
    methods = {}
    for m, kind in enumerate(("perfect", "noisy_a", "noisy_b")):
        folder = methods.setdefault(kind, tmp_path / kind)
        for i, (ref, frame) in enumerate(tiny_frames):
            if kind == "perfect":
                write_ply(_stem(folder, ref).with_suffix(".ply"), frame.gt_vertices, frame.gt_faces)
            else:
                _noisy_grid(ref, frame, folder, seed=10 * m + i)
    protocols = ("dgs-release", "dgs-paper", "dgs-submission", "atlas", "transformerfusion")
    refs = [ref for ref, _ in tiny_frames]
    tables = [evaluate(refs, Settings(methods, protocols, tmp_path / "out", 5_000, reuse=flag)) for flag in (False, True)]
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
    assert len(tables[0]) == len(refs) * len(methods) * len(protocols)
    # frames in two single-threaded worker processes: the same table, and this process's environment back
    environment = dict(os.environ)
    parallel = evaluate(refs, Settings(methods, protocols, tmp_path / "out", 5_000), workers=2)
    pd.testing.assert_frame_equal(tables[1], parallel, check_exact=True)
    assert dict(os.environ) == environment
    assert (tables[0].loc[tables[0]["method"] != "perfect", "fit_f1"] < 0.9).all()  # the noise is scored


def test_save_meshes_writes_only_the_figure_frames_by_default(tiny_frames, tmp_path):
    method = tmp_path / "noisy"
    for i, (ref, frame) in enumerate(tiny_frames):
        _noisy_grid(ref, frame, method, seed=i)
    refs = [ref for ref, _ in tiny_frames]
    for mode, expected in (("none", []), ("figures", refs[:1]), ("all", refs)):
        settings = Settings({"noisy": method}, ("release",), tmp_path / mode, 2_000, save_meshes=mode)
        table = evaluate(refs, settings)
        write_figures(table, refs, settings, k=1)
        written = sorted((tmp_path / mode).glob("meshes/**/*.ply"))
        assert written == sorted(mesh_path(settings.out, "noisy", r) for r in expected), mode
def test_sdf_grid_is_meshed_at_zero_and_its_traced_depth_used_on_request(tmp_path):
    """An SDF grid file (field "sdf") is meshed at level 0; with depth_source "trace" the depth it
    stores is what the depth metrics and the fit see (here 20 % deeper than the mesh: the fit finds
    a = 1/1.2), with "mesh" the mesh is rendered; each row names the source used."""
    from benchmark.metrics import depth_metrics

    ref = FrameRef("scannet", "scene_wall", 3, tmp_path / "unused.h5", 0, tmp_path)
    frame = _plane_frame(ref)
    n, cell = 40, np.array([0.2, 0.15, 0.05])
    origin = np.array([-3.9, -2.9, 1.0])
    idx = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1)
    p = origin + idx * cell
    sdf = ((2.0 + 0.3 * p[..., 0] - p[..., 2]) / np.hypot(0.3, 1.0)).astype(np.float16)  # > 0 in front
    method = tmp_path / "sdf"
    traced = (1.2 * frame.rendered_depth).astype(np.float32)
    np.savez(_stem(method, ref).with_suffix(".npz"), sdf=sdf, field=np.str_("sdf"), level=np.float64(0.0),
             origin=origin, cell=cell, trace_depth=traced)
    vertices, faces, kind = load_prediction(method, frame)
    assert kind == "grid" and len(faces) > 100
    assert np.abs(vertices[:, 2] - 2.0 - 0.3 * vertices[:, 0]).max() < 2e-3  # float16 grid
    rows = {}
    for source in ("mesh", "trace"):
        settings = Settings({"sdf": method}, ("release",), tmp_path / source, 2_000, depth_source=source)
        rows[source] = score_frame(frame, "sdf", settings)[0]
        assert rows[source]["depth_source"] == source
    want = depth_metrics(traced.astype(np.float64), frame.rendered_depth.astype(np.float64))
    assert rows["trace"]["metric_depth_abs_rel"] == pytest.approx(want["abs_rel"]) == pytest.approx(0.2)
    assert rows["trace"]["fit_a"] == pytest.approx(1 / 1.2, rel=1e-6)
    assert rows["mesh"]["metric_depth_abs_rel"] < 0.01 and rows["mesh"]["fit_a"] == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError, match="depth_source"):
        evaluate([], Settings({"sdf": method}, ("release",), tmp_path / "x", depth_source="rays"))
