"""Numba kernels of pipeline.geometry.kernels vs slow, obviously-correct NumPy references."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.geometry.kernels import (cull_face_centroids, depth_world_box, far_from_samples,
                                       sample_offset_surface)


# ---------------------------------------------------------------- references (slow, plain NumPy)
def ref_cull(centroids, r_cw, t_cw, proj, widen, z_near, lo, hi):
    out = np.zeros(len(centroids), dtype=bool)
    for i, c in enumerate(centroids):
        if not (np.all(c >= lo) and np.all(c <= hi)):
            continue
        x, y, z = r_cw @ c + t_cw
        if z <= z_near:
            continue
        u, v = proj[0] * x / z + proj[2], proj[1] * y / z + proj[3]
        out[i] = abs(u) < widen and abs(v) < widen
    return out


def ref_sample(vertices, faces, candidates, cdf, normals, centre, rf, r1, r2, d):
    total = cdf[-1]
    surf, pts, lab = [], [], []
    for i in range(len(rf)):
        j = np.searchsorted(cdf, rf[i] * total, side="right")
        if j == len(cdf):
            j = np.searchsorted(cdf, total, side="left")
        f = candidates[j]
        a, b, c = vertices[faces[f]]
        s = np.sqrt(r1[i])
        p = (1 - s) * a + s * (1 - r2[i]) * b + s * r2[i] * c
        n = normals[f] if normals[f] @ (centre - p) >= 0 else -normals[f]
        surf.append(p)
        pts.append(p + d[i] * n)
        lab.append(1 if d[i] < 0 else 0)
    return np.array(surf), np.array(pts), np.array(lab, dtype=np.uint8)


def ref_far(queries, samples, radius):
    d2 = ((queries[:, None, :] - samples[None, :, :]) ** 2).sum(-1)
    return (d2 >= radius * radius).all(axis=1)


def random_pose(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                  [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                  [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    return r, rng.normal(size=3)


# ---------------------------------------------------------------- culling
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cull_matches_reference(seed):
    rng = np.random.default_rng(seed)
    cen = rng.uniform(-3, 3, size=(3000, 3))
    r, t = random_pose(rng)
    proj = np.array([1.8, 0.0, 2.4, 0.1])
    lo, hi = np.array([-2.0, -2.5, -1.0]), np.array([2.0, 2.5, 3.0])
    got = cull_face_centroids(cen, np.arange(len(cen)), r, t, proj, 1.05, 0.05, lo, hi)
    want = ref_cull(cen, r, t, proj, 1.05, 0.05, lo, hi)
    assert want.any() and not want.all()  # the random case exercises both outcomes
    np.testing.assert_array_equal(got, want)
    some = rng.permutation(len(cen))[: len(cen) // 2]  # only listed candidates can be kept
    only = np.zeros(len(cen), bool)
    only[some] = True
    np.testing.assert_array_equal(cull_face_centroids(cen, some, r, t, proj, 1.05, 0.05, lo, hi), want & only)


def test_cull_no_face_visible_and_empty_input():
    cen = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 0.01], [5.0, 0.0, 1.0]])  # behind, too near, outside
    eye = np.eye(3)
    args = (eye, np.zeros(3), np.array([1.8, 0.0, 2.4, 0.0]), 1.05, 0.05, np.full(3, -10.0), np.full(3, 10.0))
    assert not cull_face_centroids(cen, np.arange(3), *args).any()
    assert cull_face_centroids(np.zeros((0, 3)), np.zeros(0, np.int64), *args).shape == (0,)


# ---------------------------------------------------------------- sampling
def random_mesh(rng, n_faces=200, degenerate=10):
    v = rng.uniform(-1, 1, size=(3 * n_faces, 3))
    f = np.arange(3 * n_faces).reshape(-1, 3)
    v[f[:degenerate, 2]] = v[f[:degenerate, 1]]  # zero-area faces
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    norm = np.linalg.norm(cross, axis=1)
    normals = np.divide(cross, norm[:, None], out=np.zeros_like(cross), where=norm[:, None] > 0)
    return v, f.astype(np.int32), 0.5 * norm, normals


@pytest.mark.parametrize("seed", [0, 1])
def test_sample_matches_reference_and_skips_zero_area(seed):
    rng = np.random.default_rng(seed)
    v, f, area, normals = random_mesh(rng)
    cand = rng.permutation(len(f))[:150].astype(np.int64)
    cdf = np.cumsum(area[cand])  # zero-area faces give flat CDF steps
    k = 4000
    rf, r1, r2 = rng.random((3, k))
    rf[:3] = [0.0, 1.0 - 2**-53, 0.5]  # ends of the range
    d = rng.uniform(-0.064, 0.064, size=k)
    centre = np.array([0.2, -3.0, 0.5])
    surf, pts, lab, fid = sample_offset_surface(v, f, cand, cdf, normals, centre, rf, r1, r2, d)
    rs, rp, rl = ref_sample(v, f, cand, cdf, normals, centre, rf, r1, r2, d)
    np.testing.assert_allclose(surf, rs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pts, rp, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(lab, rl)
    assert (area[fid] > 0).all()
    # Each sampled point is d away from its face plane, on the camera side iff label 0.
    side = np.einsum("ij,ij->i", pts - surf, centre - surf)
    assert ((side > 0) == (d > 0)).all()


def test_sample_area_weighting_statistics():
    # Two faces with areas 1 and 3: about 25 % / 75 % of the samples.
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 1], [3, 0, 1], [0, 2, 1.0]])
    f = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int32)
    normals = np.array([[0, 0, 1.0], [0, 0, 1.0]])
    rng = np.random.default_rng(0)
    k = 20000
    rf, r1, r2 = rng.random((3, k))
    *_, fid = sample_offset_surface(v, f, np.array([0, 1]), np.array([1.0, 4.0]), normals,
                                    np.zeros(3), rf, r1, r2, np.zeros(k))
    assert abs((fid == 0).mean() - 0.25) < 0.015


# ---------------------------------------------------------------- exclusion
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_far_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    samples = rng.uniform(0, 1, size=(800, 3))
    queries = rng.uniform(-0.2, 1.2, size=(1500, 3))
    got = far_from_samples(queries, samples, 0.06)
    want = ref_far(queries, samples, 0.06)
    assert want.any() and not want.all()
    np.testing.assert_array_equal(got, want)


def test_far_points_exactly_at_radius_are_kept():
    samples = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    r = 0.25  # exactly representable, so distances of 0.25 are exact
    queries = np.array([[0.25, 0, 0], [0, -0.25, 0], [0, 0, 0.25], [1.0, 1.0, 1.25],  # exactly r
                        [0.2499999, 0, 0], [0.5, 0.5, 0.5], [-3.0, 0, 0]])
    got = far_from_samples(queries, samples, r)
    np.testing.assert_array_equal(got, ref_far(queries, samples, r))
    np.testing.assert_array_equal(got, [True, True, True, True, False, True, True])


def test_far_with_no_samples_keeps_everything_and_rejects_bad_radius():
    assert far_from_samples(np.zeros((4, 3)), np.zeros((0, 3)), 0.1).all()
    with pytest.raises(ValueError, match="radius"):
        far_from_samples(np.zeros((1, 3)), np.zeros((1, 3)), 0.0)


# ---------------------------------------------------------------- depth box
def test_depth_world_box_matches_back_projection():
    rng = np.random.default_rng(5)
    depth = rng.uniform(0.3, 6.0, size=(24, 32)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.3] = np.nan
    depth[rng.random(depth.shape) < 0.1] = 0.0  # "no reading" in the raw formats
    k = np.array([30.0, 28.0, 15.5, 12.25])
    r, t = random_pose(rng)
    lo, hi, n = depth_world_box(depth, k, r, t)
    ok = np.isfinite(depth) & (depth > 0)
    i, j = np.nonzero(ok)
    z = depth[ok].astype(np.float64)
    cam = np.stack([(j + 0.5 - k[2]) / k[0] * z, (i + 0.5 - k[3]) / k[1] * z, z], 1)
    world = cam @ r.T + t
    assert n == ok.sum()
    np.testing.assert_allclose(lo, world.min(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(hi, world.max(0), rtol=0, atol=1e-12)
    lo, hi, n = depth_world_box(np.full((4, 4), np.nan, np.float32), k, r, t)
    assert n == 0 and np.isinf(lo).all() and np.isinf(hi).all()
