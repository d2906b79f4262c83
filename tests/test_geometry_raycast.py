"""Rendered/amodal depth wrappers on layered planes with known depths (both amodal methods)."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.geometry.camera import pixel_directions
from pipeline.geometry.scene import SceneGeometry, depth_maps_listed, depth_maps_first_hits, first_hit_depth

K = np.array([20.0, 20.0, 16.0, 12.0])  # 32×24 pixels, camera at the origin looking along +z


def plane(z, x0, x1, label, n=3):
    """An n×n-quad rectangle z = const over x ∈ [x0, x1], y ∈ [−9, 9]; returns (V, F, labels)."""
    g = np.linspace(0, 1, n + 1)
    xx, yy = np.meshgrid(x0 + g * (x1 - x0), -9 + 18 * g, indexing="ij")
    v = np.stack([xx, yy, np.full_like(xx, z)], -1).reshape(-1, 3)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    q = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], -1).reshape(-1, 4)
    f = np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
    return v, f, np.full(len(f), label)


def combine(*parts):
    vs, fs, ls, off = [], [], [], 0
    for v, f, lab in parts:
        vs.append(v)
        fs.append(f + off)
        ls.append(lab)
        off += len(v)
    return np.concatenate(vs), np.concatenate(fs), np.concatenate(ls)


@pytest.mark.parametrize("method", [depth_maps_listed, depth_maps_first_hits])
def test_amodal_is_min_of_first_structure_and_farthest(method):
    # Left half (x < 0): furniture at z = 2 and 3, a wall at z = 5 → amodal 5.
    # Right half (x > 0): furniture at z = 2 and 3, no structure behind → amodal = farthest = 3,
    # and a window (structure) at z = 2.5 only for x > 1 → amodal 2.5 there.
    v, f, lab = combine(plane(2.0, -9, 9, 39), plane(3.0, -9, 9, 5), plane(5.0, -9, 0, 1),
                        plane(2.5, 1, 9, 9))
    scene = SceneGeometry.from_mesh(v, f, lab, (1, 2, 8, 9, 22))
    d = pixel_directions(32, 24, K)
    rendered, amodal = method(scene, np.zeros(3), d)
    x_over_z = d[..., 0]
    np.testing.assert_allclose(rendered, 2.0, atol=1e-5)
    want = np.where(x_over_z < 0, 5.0, np.where(2.5 * x_over_z > 1, 2.5, 3.0))
    np.testing.assert_allclose(amodal, want, atol=1e-5)
    np.testing.assert_allclose(first_hit_depth(scene, np.zeros(3), d), rendered, atol=1e-6)


def test_no_hit_is_nan_and_depth_is_z_not_distance():
    v, f, lab = plane(4.0, -0.55, 0.55, 1)  # edges between pixel rays
    scene = SceneGeometry.from_mesh(v, f, lab, (1,))
    d = pixel_directions(32, 24, K)
    rendered, amodal = depth_maps_first_hits(scene, np.zeros(3), d)
    hit = np.abs(4.0 * d[..., 0]) < 0.55
    assert np.isnan(rendered[~hit]).all() and np.isnan(amodal[~hit]).all()
    np.testing.assert_allclose(rendered[hit], 4.0, atol=1e-5)  # z-depth, although rays are oblique


def test_structure_mask_and_degenerate_faces():
    v = np.array([[0, 0, 1.0], [1, 0, 1], [0, 1, 1], [2, 2, 2]])
    f = np.array([[0, 1, 2], [3, 3, 3]])  # second face has zero area
    s = SceneGeometry.from_mesh(v, f, np.array([22, 5]), (1, 22))
    np.testing.assert_array_equal(s.structure, [True, False])
    np.testing.assert_allclose(s.areas, [0.5, 0.0])
    np.testing.assert_allclose(np.abs(s.normals[0]), [0, 0, 1])
    np.testing.assert_array_equal(s.normals[1], 0.0)
    with pytest.raises(ValueError, match="face indices"):
        SceneGeometry.from_mesh(v, np.array([[0, 1, 7]]), None, (1,))
