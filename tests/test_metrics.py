"""Metric library tests against analytic answers and brute-force references (SPEC §5)."""
import numpy as np
import pytest

from benchmark.depth_mesh import mesh_from_depth
from benchmark.fit import apply_scale_shift, fit_scale_shift
from benchmark.metrics import DEPTH_KEYS, MESH_KEYS, depth_metrics, mesh_metrics
from benchmark.sampling import sample_surface

SQUARE_F = np.array([[0, 1, 2], [0, 2, 3]])


def square(z: float, size: float = 1.0) -> np.ndarray:
    return np.array([[0, 0, z], [size, 0, z], [size, size, z], [0, size, z]], dtype=float)


# ---------------------------------------------------------------- mesh metrics
def test_parallel_planes_3cm():
    a = sample_surface(square(0.0), SQUARE_F, 60_000, seed=1)
    b = sample_surface(square(0.03), SQUARE_F, 60_000, seed=2)
    m = mesh_metrics(a, b, threshold=0.05)
    # Lateral gaps between samples (~4 mm) add < 1 mm to the 3 cm plane distance.
    assert m["acc"] == pytest.approx(0.03, abs=1e-3)
    assert m["compl"] == pytest.approx(0.03, abs=1e-3)
    assert m["chamfer"] == pytest.approx(0.5 * (m["acc"] + m["compl"]))
    assert (m["prec"], m["recall"], m["f1"]) == (1.0, 1.0, 1.0)
    m2 = mesh_metrics(a, b, threshold=0.02)
    assert (m2["prec"], m2["recall"], m2["f1"]) == (0.0, 0.0, 0.0)
    assert m2["reason"] == ""


def test_sphere_vs_shifted_sphere():
    rng = np.random.default_rng(0)
    s, thr = 0.1, 0.05

    def sphere(n, c):
        p = rng.normal(size=(n, 3))
        return p / np.linalg.norm(p, axis=1, keepdims=True) + c

    a = sphere(80_000, [0, 0, 0])
    b = sphere(80_000, [s, 0, 0])
    m = mesh_metrics(a, b, threshold=thr)
    # Analytic: for a point of A with x = t (t ~ U(−1, 1) on a uniform unit sphere, Archimedes),
    # the distance to sphere B is |sqrt(1 + s² − 2 s t) − 1|; average it by quadrature.
    t = np.linspace(-1, 1, 200_001)
    d = np.abs(np.sqrt(1 + s * s - 2 * s * t) - 1)
    assert m["acc"] == pytest.approx(d.mean(), abs=2e-3)
    assert m["compl"] == pytest.approx(d.mean(), abs=2e-3)
    frac = (d < thr).mean()
    assert m["prec"] == pytest.approx(frac, abs=0.02)
    assert m["recall"] == pytest.approx(frac, abs=0.02)
    assert m["f1"] == pytest.approx(frac, abs=0.02)


def test_identical_and_disjoint_sets():
    p = np.random.default_rng(1).random((5000, 3))
    m = mesh_metrics(p, p.copy())
    assert m["acc"] == m["compl"] == m["chamfer"] == 0.0
    assert m["f1"] == 1.0
    far = mesh_metrics(p, p + [100.0, 0, 0])
    assert (far["prec"], far["recall"], far["f1"]) == (0.0, 0.0, 0.0)
    assert far["acc"] > 98.0 and far["compl"] > 98.0


def test_precision_is_about_prediction_not_gt():
    # Prediction covers half of the GT square; everything predicted is on the GT: P = 1, R ≈ 0.5.
    gt = sample_surface(square(0.0), SQUARE_F, 20_000, seed=1)
    pred = gt[gt[:, 0] < 0.5]
    m = mesh_metrics(pred, gt, threshold=0.01)
    assert m["prec"] == 1.0
    assert m["recall"] == pytest.approx(0.5, abs=0.02)


def test_empty_sets_give_nan_and_reason():
    p = np.zeros((10, 3))
    for pred, gt, reason in [(np.zeros((0, 3)), p, "empty_prediction"),
                             (p, np.zeros((0, 3)), "empty_gt"),
                             (np.full((4, 3), np.nan), p, "empty_prediction")]:
        m = mesh_metrics(pred, gt)
        assert m["reason"] == reason
        assert all(np.isnan(m[k]) for k in MESH_KEYS)


# ---------------------------------------------------------------- depth metrics
def test_depth_metrics_hand_computed():
    pred = np.array([[1.0, 2.5, 4.0], [np.nan, 3.0, 0.0]])
    gt = np.array([[1.0, 4.0, 2.0], [3.0, 15.0, 2.0]])
    # Valid pixels (pred > 0, 0 < gt < 10): (1, 1), (2.5, 4), (4, 2).
    m = depth_metrics(pred, gt)
    assert m["abs_diff"] == pytest.approx(3.5 / 3)
    assert m["abs_rel"] == pytest.approx(1.375 / 3)
    assert m["sq_rel"] == pytest.approx(2.5625 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(6.25 / 3))
    assert m["log_rmse"] == pytest.approx(np.sqrt((np.log(1.6) ** 2 + np.log(2) ** 2) / 3))
    assert (m["r1"], m["r2"], m["r3"]) == pytest.approx((1 / 3, 1 / 3, 2 / 3))
    assert m["complete"] == pytest.approx(4 / 6)  # 4 of 6 pixels carry a prediction
    assert m["reason"] == ""


def test_depth_metrics_empty():
    gt = np.full((3, 4), 2.0)
    m = depth_metrics(np.full((3, 4), np.nan), gt)
    assert m["reason"] == "no_valid_pixels" and m["complete"] == 0.0
    assert all(np.isnan(m[k]) for k in DEPTH_KEYS if k != "complete")
    m = depth_metrics(np.ones((3, 4)), np.full((3, 4), np.nan))
    assert m["reason"] == "empty_gt" and np.isnan(m["rmse"])
    with pytest.raises(ValueError, match="same shape"):
        depth_metrics(np.ones((2, 2)), np.ones((3, 3)))


# ---------------------------------------------------------------- sampling
def test_sampling_deterministic_and_on_surface():
    v, f = square(0.5), SQUARE_F
    a = sample_surface(v, f, 1000, seed=3)
    assert np.array_equal(a, sample_surface(v, f, 1000, seed=3))
    assert not np.array_equal(a, sample_surface(v, f, 1000, seed=4))
    assert a.shape == (1000, 3) and np.all(a[:, 2] == 0.5)
    assert np.all((a[:, :2] >= 0) & (a[:, :2] <= 1))
    assert sample_surface(v, np.zeros((0, 3), int), 10).shape == (0, 3)


def test_sampling_area_weighted():
    # Two disjoint triangles with areas 0.5 and 1.5, plus a degenerate one that must get nothing.
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0],
                  [5, 0, 0], [8, 0, 0], [5, 1, 0], [9, 9, 9]], dtype=float)
    f = np.array([[0, 1, 2], [3, 4, 5], [6, 6, 6]])
    n = 40_000
    p = sample_surface(v, f, n, seed=0)
    small = int((p[:, 0] < 2).sum())
    sigma = np.sqrt(n * 0.25 * 0.75)
    assert abs(small - n / 4) < 4 * sigma
    assert not np.any(p[:, 2] > 0)
    # Uniform inside a triangle: the corner region x + y < 0.5 holds 1/4 of the small one.
    s = p[p[:, 0] < 2]
    frac = ((s[:, 0] + s[:, 1]) < 0.5).mean()
    assert abs(frac - 0.25) < 4 * np.sqrt(0.25 * 0.75 / len(s))


# ---------------------------------------------------------------- fit and depth meshing
def test_fit_recovers_scale_shift():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0.5, 4, (20, 30))
    gt = 1.3 * pred - 0.2
    pred[0, :5] = np.nan
    pred[1, :5] = 0.0
    gt[0, :5] = 1e6  # ignored: pred missing there
    gt[2, :3] = np.nan
    a, b, reason = fit_scale_shift(pred, gt)
    assert reason == "" and a == pytest.approx(1.3) and b == pytest.approx(-0.2)
    assert fit_scale_shift(np.full((4, 4), 2.0), np.ones((4, 4)))[2] == "degenerate_prediction"
    a, b, reason = fit_scale_shift(np.full((4, 4), np.nan), np.ones((4, 4)))
    assert reason == "no_valid_pixels" and np.isnan(a) and np.isnan(b)


def test_apply_scale_shift_moves_along_rays():
    v = np.array([[0.3, -0.2, 2.0], [1.0, 1.0, 4.0], [0.0, 0.0, -1.0]])
    w = apply_scale_shift(v, 0.5, 0.25)
    assert w[:2, 2] == pytest.approx([1.25, 2.25])
    np.testing.assert_allclose(np.cross(v[:2], w[:2]), 0, atol=1e-12)  # same ray
    assert np.isnan(w[2]).all()


def test_mesh_from_depth_cuts_long_edges():
    fx = fy = 100.0
    cx, cy = 3.0, 2.0
    depth = np.full((4, 6), 2.0)
    depth[:, 3:] = 3.0  # a 1 m step between columns 2 and 3
    v, f = mesh_from_depth(depth, fx, fy, cx, cy)
    # 3 × 5 quads, 2 triangles each, minus the 3 quads across the step.
    assert f.shape == (24, 3)
    i, j = 1, 4
    assert v[i * 6 + j] == pytest.approx([(j + 0.5 - cx) / fx * 3, (i + 0.5 - cy) / fy * 3, 3])
    edges = np.linalg.norm(v[f] - v[f[:, [1, 2, 0]]], axis=2)
    assert edges.max() <= 0.1
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert np.all(np.einsum("ij,ij->i", n, v[f[:, 0]]) < 0)  # normals face the camera
    depth[1, 1] = np.nan  # a hole removes the 4 quads around it (8 triangles)
    assert mesh_from_depth(depth, fx, fy, cx, cy)[1].shape == (16, 3)
