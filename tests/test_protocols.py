"""Delineation protocols and per-frame evaluation on generated scenes with known answers."""
import numpy as np
import pytest

from benchmark.protocols import delineate, resolve
from benchmark.scoring import evaluate_frame, to_row

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
                     camera_to_world=T_WC, protocol="dgs-release")
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


def test_a_view_of_one_plane_keeps_the_plane_despite_a_zero_extent_box():
    """The GT sees one plane z = 2 (camera frame): its world box has zero extent along the normal.
    The plane itself, moved by float rounding (1e-7 m), stays in scope (the 1 mm floor of the
    widening); the same plane 1 cm nearer is out of the box (2 % of zero extent plus 1 mm)."""
    v, f = plane_grid(2.0, x=np.arange(-0.5, 0.5001, 0.1), y=np.arange(-0.4, 0.4001, 0.1))
    lo, hi = world_box(v.min(0), v.max(0))
    kw = dict(intrinsics=K, width=W, height=H, gt_box_min=lo, gt_box_max=hi, camera_to_world=T_WC)
    assert delineate(v * (1 + 1e-7), f, **kw).all()
    assert not delineate(v * np.array([1, 1, 0.995]), f, **kw).any()


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
    with pytest.raises(ValueError, match="unknown protocol"):
        delineate(v, f, **kw, protocol="atlas-2020")


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
    kw = dict(intrinsics=K, camera_to_world=T_WC, protocol=resolve("release", n_samples=20_000), seed=0)
    same = evaluate_frame(gt_v, gt_f, gt_v, gt_f, gt_depth, **kw)
    assert same["protocol"] == "dgs-release" and same["fit_reason"] == ""
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
    assert row["protocol"] == "dgs-release" and row["fit_f1"] == 1.0 and "metric_depth_rmse" in row
    assert row["protocol_hash"] == resolve("release", n_samples=20_000).hash and row["missing"] == "penalize"


def test_evaluate_frame_empty_prediction_is_penalized_or_dropped():
    gt_v, gt_f, gt_depth = gt_scene()
    kw = dict(intrinsics=K, camera_to_world=T_WC)
    empty_v, empty_f = np.zeros((0, 3)), np.zeros((0, 3), int)
    penalized = evaluate_frame(empty_v, empty_f, gt_v, gt_f, gt_depth, **kw,
                               protocol=resolve("dgs-release", n_samples=5_000))
    assert penalized["fit_reason"] == "no_valid_pixels"
    for variant, reason in (("metric", "empty_prediction"), ("fit", "no_valid_pixels")):
        row = penalized[variant]
        assert row["reason"] == reason and row["depth_reason"] == "no_valid_pixels"
        assert (row["prec"], row["recall"], row["f1"]) == (0.0, 0.0, 0.0)
        assert row["acc"] == row["compl"] == row["chamfer"] == 1.0  # the distance clamp, metres
        assert row["depth_r1"] == 0.0 and row["depth_complete"] == 0.0 and np.isnan(row["depth_abs_rel"])
    drop = {"name": "release-drop", "base": "dgs-release", "missing": "drop", "n_samples": 5_000}
    dropped = evaluate_frame(empty_v, empty_f, gt_v, gt_f, gt_depth, **kw, protocol=drop)
    assert dropped["missing"] == "drop" and dropped["metric"]["reason"] == "empty_prediction"
    assert np.isnan(dropped["metric"]["f1"]) and np.isnan(dropped["fit"]["acc"])


def test_paper_protocol_cuts_everything_behind_the_amodal_depth():
    gt_v, gt_f, gt_depth = gt_scene()
    kw = dict(intrinsics=K, camera_to_world=T_WC, amodal_depth=np.full((H, W), 1.5))  # all behind
    unclipped = {"name": "paper-whole-gt", "base": "dgs-paper", "gt_scope": "none", "n_samples": 5_000}
    paper = evaluate_frame(gt_v, gt_f, gt_v, gt_f, gt_depth, **kw, protocol=unclipped)
    assert paper["protocol"] == "paper-whole-gt" and paper["faces_kept"] == 0
    assert paper["metric"]["reason"] == "empty_prediction" and paper["metric"]["f1"] == 0.0
    clipped = evaluate_frame(gt_v, gt_f, gt_v, gt_f, gt_depth, **kw,
                             protocol=resolve("paper", n_samples=5_000))  # GT clipped alike
    assert clipped["metric"]["reason"] == "empty_gt" and np.isnan(clipped["metric"]["f1"])


# -- the registry and each shipped protocol's rule, with hand-computed answers ------------------------


def test_registry_names_aliases_hashes_and_inline_sets():
    from benchmark.protocols import NAMES, PROTOCOLS, parse_cli

    assert list(PROTOCOLS) == ["dgs-release", "dgs-paper", "dgs-submission", "atlas", "transformerfusion"]
    assert resolve("release") is PROTOCOLS["dgs-release"] and resolve("paper").name == "dgs-paper"
    assert {"release", "paper"} <= set(NAMES)
    hashes = {p.hash for p in PROTOCOLS.values()}
    assert len(hashes) == 5 and all(len(h) == 8 for h in hashes)
    # The hash covers the parameters, not the name; it changes with any parameter.
    same = resolve({"name": "my-release", "base": "dgs-release"})
    assert same.hash == resolve("dgs-release").hash and same.name == "my-release"
    assert resolve("dgs-release", n_samples=20_000).hash != resolve("dgs-release").hash
    assert resolve("atlas", n_samples=20_000) == resolve("atlas")  # vertices: no samples to change
    inline = resolve(parse_cli('{"name": "wide", "base": "dgs-paper", "threshold": 0.1}'))
    assert (inline.threshold, inline.amodal_factor, inline.name) == (0.1, 1.05, "wide")
    with pytest.raises(ValueError, match="unknown key.*treshold"):
        resolve({"name": "typo", "treshold": 0.1})
    with pytest.raises(ValueError, match="own 'name'"):
        resolve({"name": "paper", "threshold": 0.1})
    with pytest.raises(ValueError, match="missing must be one of"):
        resolve({"name": "x", "missing": "ignore"})


def test_submission_delineates_first_then_fits_and_clips_the_gt_by_frustum_only():
    gt_v, gt_f, gt_depth = gt_scene()
    pred_v = gt_v * 1.2  # 1.2× too far along every ray; z' = 2.4 + 0.6·x, x' = 1.2·x, y' = 1.2·y
    kw = dict(intrinsics=K, camera_to_world=T_WC, amodal_depth=np.full((H, W), 9.0), seed=0)
    release = evaluate_frame(pred_v, gt_f, gt_v, gt_f, gt_depth, **kw, protocol=resolve("release", n_samples=20_000))
    assert release["faces_kept"] == len(gt_f) and release["fit"]["f1"] == 1.0  # the union keeps all
    submission = evaluate_frame(pred_v, gt_f, gt_v, gt_f, gt_depth, **kw,
                                protocol=resolve("dgs-submission", n_samples=100_000))
    # Raw test against the GT box x ∈ ±0.832, y ∈ ±0.624, z ≤ 2.416 (2 % wider than the plane):
    # |1.2·x| ≤ 0.832, |1.2·y| ≤ 0.624 and 0.6·x ≤ 0.016 keep grid vertices x ∈ [−0.65, 0],
    # y ∈ [−0.5, 0.5]: 13 × 20 quads.
    assert submission["faces_kept"] == 2 * 13 * 20
    # The fit on the kept part undoes the scale exactly; the fitted patch lies on the GT (precision 1)
    # and recalls the GT within 5 cm of it: the rectangle 0.65 × 1.0 (in x, y) grown by 5 cm, i.e. by
    # 0.05/√1.25 in x on the tilted plane: area 0.65 + 2·0.65·0.05 + 2·1.0·0.0447 + π·0.0447·0.05,
    # of the GT's 1.6 × 1.2 (samples 6 mm apart recall slightly less: 0.421 with 10⁶ of them).
    assert submission["fit_a"] == pytest.approx(1 / 1.2, rel=1e-6)
    dx = 0.05 / np.sqrt(1.25)
    recall = (0.65 + 2 * 0.65 * 0.05 + 2 * 1.0 * dx + np.pi * dx * 0.05) / (1.6 * 1.2)
    assert submission["fit"]["prec"] == 1.0
    assert submission["fit"]["recall"] == pytest.approx(recall, abs=0.01)
    assert submission["fit"]["f1"] == pytest.approx(2 * recall / (1 + recall), abs=0.01)
    # GT by the frustum test only: an amodal depth in front of everything empties the prediction,
    # not the GT (dgs-paper would clip the GT to nothing: empty_gt).
    kw["amodal_depth"] = np.full((H, W), 1.5)
    behind = evaluate_frame(gt_v, gt_f, gt_v, gt_f, gt_depth, **kw, protocol=resolve("dgs-submission", n_samples=5_000))
    assert behind["metric"]["reason"] == "empty_prediction" and behind["metric"]["f1"] == 0.0
    assert behind["fit"]["reason"] == "no_valid_pixels" and behind["fit"]["acc"] == 1.0


def test_atlas_vertices_after_a_2cm_voxel_down_sample():
    from benchmark.sampling import voxel_down_sample
    from benchmark.scoring import point_set

    # Grid origin = min − 1 cm = (−0.01, −0.01, −0.01): p0 and p1 share voxel (0, 0, 0) and become
    # their mean; p2 (voxel (5, 0, 0)) and p3 ((0, 5, 0)) stay; p4 is used by no face.
    v = np.array([[0, 0, 0], [0.004, 0.006, 0.002], [0.1, 0, 0], [0, 0.1, 0], [5, 5, 5]], float)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    expected = np.array([[0.002, 0.003, 0.001], [0, 0.1, 0], [0.1, 0, 0]])  # by voxel index
    np.testing.assert_allclose(point_set(v, f, resolve("atlas"), seed=0), expected, atol=1e-12)
    # The rule is Open3D's voxel_down_sample (averages per voxel; its output order is unspecified).
    import open3d as o3d

    pts = np.random.default_rng(0).uniform(0, 0.2, (500, 3))
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts)).voxel_down_sample(0.02)
    theirs = np.asarray(cloud.points)
    ours = voxel_down_sample(pts, 0.02)
    def rows_sorted(a: np.ndarray) -> np.ndarray:
        return a[np.lexsort(np.round(a, 9).T[::-1])]

    assert ours.shape == theirs.shape and len(ours) < len(pts)
    np.testing.assert_allclose(rows_sorted(ours), rows_sorted(theirs), atol=1e-12)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        voxel_down_sample(np.zeros((4, 6)), 0.02)


def test_atlas_precision_is_about_the_predicted_vertices():
    gt_v, gt_f, gt_depth = gt_scene()  # vertices 5 cm apart: each alone in its 2 cm voxel
    kw = dict(intrinsics=K, camera_to_world=T_WC, protocol="atlas")
    same = evaluate_frame(gt_v, gt_f, gt_v, gt_f, gt_depth, **kw)
    assert same["metric"]["acc"] == 0.0 and same["metric"]["f1"] == 1.0  # identical vertex sets
    # The left half (x ≤ 0) of the GT as the prediction: every predicted vertex lies on a GT vertex
    # (precision 1); GT vertices with x ≤ 0 are matched, the next column is 5·√1.25 = 5.6 cm away:
    # recall = 17 of 33 columns. Atlas's own eval_mesh reports these two the other way round.
    centroid_x = gt_v[gt_f].mean(axis=1)[:, 0]
    half = evaluate_frame(gt_v, gt_f[centroid_x < 0], gt_v, gt_f, gt_depth, **kw)
    assert half["metric"]["prec"] == 1.0 and half["metric"]["acc"] == 0.0
    assert half["metric"]["recall"] == pytest.approx(17 / 33)
    assert half["metric"]["f1"] == pytest.approx(2 * (17 / 33) / (1 + 17 / 33))


def test_transformerfusion_clamps_every_distance_at_1m():
    from benchmark.metrics import mesh_metrics
    from benchmark.scoring import failed_frame

    pred, gt = np.array([[0.0, 0, 0], [3.0, 0, 0]]), np.array([[0.0, 0, 0]])
    plain, clamped = mesh_metrics(pred, gt), mesh_metrics(pred, gt, clamp=1.0)
    assert plain["acc"] == 1.5 and clamped["acc"] == 0.5  # (0 + 3)/2 against (0 + min(3, 1))/2
    assert clamped["compl"] == 0.0 and (clamped["prec"], clamped["recall"]) == (0.5, 1.0)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        mesh_metrics(np.zeros((5, 6)), gt)  # points with normals are not 2 × 5 points
    # On a frame: a 20 cm patch at the plane's left edge against the whole plane; GT samples farther
    # than 1 m from it count 1 m. Same samples as dgs-release, so the difference is the clamp alone.
    gt_v, gt_f, gt_depth = gt_scene()
    patch = gt_f[gt_v[gt_f].mean(axis=1)[:, 0] < -0.6]
    kw = dict(intrinsics=K, camera_to_world=T_WC)
    tf = evaluate_frame(gt_v, patch, gt_v, gt_f, gt_depth, **kw, protocol=resolve("transformerfusion", n_samples=5_000))
    release = evaluate_frame(gt_v, patch, gt_v, gt_f, gt_depth, **kw, protocol=resolve("dgs-release", n_samples=5_000))
    from benchmark.sampling import sample_surface
    from scipy.spatial import cKDTree

    gt_pts = sample_surface(gt_v, gt_f, 5_000, 0)
    pred_pts = sample_surface(gt_v, patch, 5_000, 1)
    d_gt = cKDTree(pred_pts).query(gt_pts)[0]
    assert d_gt.max() > 1.5  # the far edge is 1.6·√1.25 m away
    assert tf["metric"]["compl"] == pytest.approx(np.minimum(d_gt, 1.0).mean(), rel=1e-9)
    assert release["metric"]["compl"] == pytest.approx(d_gt.mean(), rel=1e-9)
    assert tf["metric"]["f1"] == release["metric"]["f1"]
    missing = failed_frame("transformerfusion", "missing_prediction")  # a missing frame scores F1 = 0
    assert missing["fit"]["f1"] == 0.0 and missing["fit"]["acc"] == 1.0 and missing["protocol"] == "transformerfusion"
