"""Delineation protocols and per-frame evaluation on generated scenes with known answers."""
import numpy as np
import pytest

from benchmark.protocols import delineate, evaluate_frame, to_row

W, H, F = 256, 192, 230.4  # the virtual camera: u = 1.8·x/z, v = 2.4·y/z
K = np.array([F, F, W / 2, H / 2])
# A camera-to-world pose that permutes axes (so a wrong frame would move the box) and translates.
T_WC = np.array([[0, -1, 0, 5.0], [1, 0, 0, -3.0], [0, 0, 1, 1.0], [0, 0, 0, 1]])


def plane_grid(z, x=np.arange(-2.0, 2.0001, 0.1), y=np.arange(-1.5, 1.5001, 0.1)):
    """Triangulated plane at depth z (camera frame); returns vertices, faces, per-vertex x, y."""
    xx, yy = np.meshgrid(x, y, indexing="ij")
    v = np.stack([xx, yy, np.full_like(xx, z)], -1).reshape(-1, 3)
    idx = np.arange(v.shape[0]).reshape(xx.shape)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    f = np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])
    return v, f


def world_box(cam_min, cam_max):
    """World box of a camera-frame box under T_WC (an axis permutation keeps boxes axis-aligned)."""
    corners = np.array([[x, y, z] for x in (cam_min[0], cam_max[0])
                        for y in (cam_min[1], cam_max[1]) for z in (cam_min[2], cam_max[2])])
    w = corners @ T_WC[:3, :3].T + T_WC[:3, 3]
    return w.min(0), w.max(0)


def expected_mask(v, f, vertex_ok):
    return vertex_ok[f].all(axis=1)


def test_release_delineation_known_triangles():
    v, f = plane_grid(2.0)
    # Camera-frame box x ∈ [−0.5, 3], y ∈ [−3, 3], z ∈ [0, 5]; 2 % of 3.5 m widens x to −0.57.
    lo, hi = world_box([-0.5, -3, 0], [3, 3, 5])
    mask = delineate(v, f, intrinsics=K, width=W, height=H, gt_box_min=lo, gt_box_max=hi,
                     camera_to_world=T_WC, protocol="release")
    # Analytic bounds at z = 2: |1.8·x/2| < 1 − 1/32 ⇒ |x| < 1.0764; |2.4·y/2| < .96875 ⇒ |y| < .8073.
    x, y = v[:, 0], v[:, 1]
    ok = (np.abs(x) < 1.0764) & (np.abs(y) < 0.8073) & (x > -0.57)
    assert np.array_equal(mask, expected_mask(v, f, ok))
    # Vertices from x = −0.5 to 1.0 (16 columns) and y = −0.8 to 0.8 (17 rows): 15·16 quads.
    assert mask.sum() == 2 * 15 * 16


def test_release_delineation_rejects_points_behind_camera():
    v, f = plane_grid(-2.0)
    lo, hi = world_box([-9, -9, -9], [9, 9, 9])
    mask = delineate(v, f, intrinsics=K, width=W, height=H, gt_box_min=lo, gt_box_max=hi,
                     camera_to_world=T_WC)
    assert not mask.any()


def test_paper_delineation_clips_to_amodal_depth():
    v, f = plane_grid(2.0)
    lo, hi = world_box([-9, -9, 0], [9, 9, 9])
    amodal = np.full((H, W), 3.0)
    amodal[:, : W // 2] = 1.5  # left half: the plane at 2 m lies behind 1.05 × 1.5 = 1.575 m
    amodal[:10, :] = np.nan  # top rows: no amodal depth, nothing in scope
    kw = dict(intrinsics=K, width=W, height=H, gt_box_min=lo, gt_box_max=hi, camera_to_world=T_WC)
    release = delineate(v, f, **kw, protocol="release")
    paper = delineate(v, f, **kw, protocol="paper", amodal_depth=amodal)
    x, y = v[:, 0], v[:, 1]
    # Pixel column = floor(115.2·x + 128) ≥ 128 ⇔ x ≥ 0; row = floor(115.2·y + 96) ≥ 10 ⇔ y > −0.7465.
    ok = (np.abs(x) < 1.0764) & (np.abs(y) < 0.8073) & (x >= 0) & (y > -0.7465)
    assert np.array_equal(paper, expected_mask(v, f, ok))
    assert np.all(release[paper]) and paper.sum() < release.sum()
    with pytest.raises(ValueError, match="amodal_depth"):
        delineate(v, f, **kw, protocol="paper")
    with pytest.raises(ValueError, match="protocol"):
        delineate(v, f, **kw, protocol="atlas")


def gt_scene():
    """GT: the tilted plane z = 2 + 0.5·x, |x| ≤ 0.8, |y| ≤ 0.6 (inside the release scope; a
    fronto-parallel plane would make the depth fit degenerate), and its analytic depth map."""
    v, f = plane_grid(0.0, x=np.arange(-0.8, 0.8001, 0.05), y=np.arange(-0.6, 0.6001, 0.05))
    v[:, 2] = 2.0 + 0.5 * v[:, 0]
    jj, ii = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rx, ry = (jj - W / 2) / F, (ii - H / 2) / F
    t = 2.0 / (1.0 - 0.5 * rx)  # z of the hit of ray (rx, ry, 1) with the plane
    depth = np.where((np.abs(rx * t) < 0.8) & (np.abs(ry * t) < 0.6), t, np.nan)
    return v, f, depth


def test_evaluate_frame_identical_and_scaled_prediction():
    gt_v, gt_f, gt_depth = gt_scene()
    kw = dict(intrinsics=K, camera_to_world=T_WC, n_samples=20_000, seed=0)
    same = evaluate_frame(gt_v, gt_f, gt_v, gt_f, gt_depth, **kw)
    assert same["protocol"] == "release" and same["fit_reason"] == ""
    assert same["fit_a"] == pytest.approx(1.0, abs=1e-5) and same["fit_b"] == pytest.approx(0, abs=1e-5)
    for variant in ("metric", "fit"):
        assert same[variant]["f1"] == 1.0 and same[variant]["acc"] < 0.01
        assert same[variant]["depth_abs_rel"] == pytest.approx(0, abs=1e-5)
    # Prediction 1.2× too far along every ray: the fit undoes it exactly.
    pred_v = gt_v * 1.2
    scaled = evaluate_frame(pred_v, gt_f, gt_v, gt_f, gt_depth, **kw)
    assert scaled["fit_a"] == pytest.approx(1 / 1.2, rel=1e-5)
    assert scaled["fit_b"] == pytest.approx(0, abs=1e-5)
    assert scaled["metric"]["f1"] == 0.0 and scaled["metric"]["acc"] > 0.3
    # GT → prediction: distance between the parallel planes z = 2 + x/2 and z = 2.4 + x/2.
    assert scaled["metric"]["compl"] == pytest.approx(0.4 / np.sqrt(1.25), abs=0.01)
    assert scaled["fit"]["f1"] == 1.0
    assert scaled["metric"]["depth_abs_rel"] == pytest.approx(0.2, rel=1e-5)
    assert scaled["fit"]["depth_abs_rel"] == pytest.approx(0, abs=1e-5)
    # Union of masks: every face passes on the fitted mesh, although the raw one leaves the box
    # (raw x reaches 0.96 > widened box edge 0.832) — all faces are kept.
    assert scaled["faces_kept"] == scaled["faces_total"] == len(gt_f)
    row = to_row(scaled)
    assert row["protocol"] == "release" and row["fit_f1"] == 1.0 and "metric_depth_rmse" in row


def test_evaluate_frame_empty_prediction_and_paper_protocol():
    gt_v, gt_f, gt_depth = gt_scene()
    kw = dict(intrinsics=K, camera_to_world=T_WC, n_samples=5_000)
    empty = evaluate_frame(np.zeros((0, 3)), np.zeros((0, 3), int), gt_v, gt_f, gt_depth, **kw)
    assert empty["fit_reason"] == "no_valid_pixels"
    assert empty["metric"]["reason"] == "empty_prediction" and np.isnan(empty["metric"]["f1"])
    assert empty["metric"]["depth_reason"] == "no_valid_pixels"
    assert empty["fit"]["reason"] == "no_valid_pixels" and np.isnan(empty["fit"]["acc"])
    amodal = np.full((H, W), 1.5)  # every vertex lies behind the scope
    paper = evaluate_frame(gt_v, gt_f, gt_v, gt_f, gt_depth, **kw, protocol="paper",
                           amodal_depth=amodal)
    assert paper["protocol"] == "paper" and paper["faces_kept"] == 0
    assert paper["metric"]["reason"] == "empty_prediction"
    clipped = evaluate_frame(gt_v, gt_f, gt_v, gt_f, gt_depth, **kw, protocol="paper",
                             amodal_depth=amodal, clip_gt=True)
    assert clipped["metric"]["reason"] == "empty_gt"
