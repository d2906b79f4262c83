"""Marching-cubes placement/orientation and double-sided depth rendering against analytic scenes."""
import numpy as np
import pytest

from pipeline.geometry.isosurface import extract_mesh
from benchmark.render import render_depth

ORIGIN = np.array([0.3, -0.7, 1.1])
CELL = np.array([0.05, 0.04, 0.03])


def grid_points(shape):
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return ORIGIN + idx * CELL  # cell centres: origin is the centre of cell 0


def test_plane_vertices_at_cell_centre_positions():
    p = grid_points((20, 16, 12))
    x0 = 0.3 + 0.05 * 7.3  # plane x = x0, occupied for x > x0
    # Linear ramp in x: marching cubes interpolates it exactly, so vertices lie on x = x0.
    occ = np.clip(0.5 + (p[..., 0] - x0) / 0.5, 0, 1)
    v, f = extract_mesh(occ, ORIGIN, CELL)
    assert len(f) > 0
    # A half-cell offset would put them at x0 ± 0.025.
    np.testing.assert_allclose(v[:, 0], x0, atol=1e-5)
    # The y, z extent spans the first to the last cell centre, not a half cell beyond.
    assert v[:, 1].min() == pytest.approx(ORIGIN[1], abs=1e-6)
    assert v[:, 2].max() == pytest.approx(ORIGIN[2] + 11 * CELL[2], abs=1e-6)
    # Normals point from occupied (x > x0) to free: toward −x.
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert np.all(n[:, 0] < 0) and np.allclose(n[:, 1:], 0, atol=1e-9)


def test_sphere_centre_radius_and_outward_normals():
    shape = (40, 50, 60)
    p = grid_points(shape)
    centre = ORIGIN + np.array([19.4, 24.6, 30.2]) * CELL
    r0 = 0.6
    dist = np.linalg.norm(p - centre, axis=-1)
    occ = np.clip(0.5 + (r0 - dist) / 0.2, 0, 1)  # occupied inside
    v, f = extract_mesh(occ, ORIGIN, CELL)
    r = np.linalg.norm(v - centre, axis=1)
    assert np.abs(r - r0).max() < 2e-3  # edge interpolation of a curved field: ~curvature·cell²
    np.testing.assert_allclose(v.mean(axis=0), centre, atol=2e-3)  # half-cell shift: ≥ 0.015
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(b - a, c - a)
    outward = np.einsum("ij,ij->i", n, (a + b + c) / 3 - centre) > 0
    assert outward.all()
    volume = np.einsum("ij,ij->i", a - centre, np.cross(b - centre, c - centre)).sum() / 6
    assert volume == pytest.approx(4 / 3 * np.pi * r0 ** 3, rel=0.01)


def test_sdf_grid_gives_the_occupancy_mesh_with_the_same_orientation():
    """An SDF (> 0 free) at level 0 and an occupancy ramp that is an affine image of it at level 0.5
    give the same vertices and faces; NaN cells count as free in both."""
    p = grid_points((24, 20, 28))
    centre = ORIGIN + np.array([11.2, 9.7, 13.1]) * CELL
    sdf = np.linalg.norm(p - centre, axis=-1) - 0.35
    sdf[0, 0, 0] = np.nan
    occ = 0.5 - sdf / 2.0  # in [0, 1] on this grid: no clipping, exactly affine
    assert np.nanmin(occ) > 0 and np.nanmax(occ) < 1
    v_s, f_s = extract_mesh(sdf, ORIGIN, CELL, field="sdf")
    v_o, f_o = extract_mesh(occ, ORIGIN, CELL)
    assert len(f_s) > 100
    np.testing.assert_allclose(v_s, v_o, atol=1e-6)
    np.testing.assert_array_equal(f_s, f_o)
    a, b, c = v_s[f_s[:, 0]], v_s[f_s[:, 1]], v_s[f_s[:, 2]]
    assert (np.einsum("ij,ij->i", np.cross(b - a, c - a), (a + b + c) / 3 - centre) > 0).all()  # outward = free
    shifted, _ = extract_mesh(sdf, ORIGIN, CELL, level=0.05, field="sdf")  # an explicit level: a larger sphere
    assert np.linalg.norm(shifted - centre, axis=1).mean() > np.linalg.norm(v_s - centre, axis=1).mean() + 0.04
    with pytest.raises(ValueError, match="field"):
        extract_mesh(sdf, ORIGIN, CELL, field="udf")


def test_no_crossing_gives_empty_mesh():
    v, f = extract_mesh(np.zeros((4, 4, 4)), ORIGIN, CELL)
    assert v.shape == (0, 3) and f.shape == (0, 3)
    with pytest.raises(ValueError, match="3-D"):
        extract_mesh(np.zeros((4, 4)), ORIGIN, CELL)


def test_render_tilted_plane_double_sided():
    fx, fy, cx, cy, w, h = 60.0, 50.0, 31.0, 22.5, 64, 48
    # Plane n·p = d with n = (0.2, −0.1, 1), d = 2: a big quad covering the whole view.
    n, d = np.array([0.2, -0.1, 1.0]), 2.0
    xy = np.array([[-10, -10], [10, -10], [10, 10], [-10, 10]], dtype=float)
    z = (d - xy @ n[:2]) / n[2]
    verts = np.c_[xy, z]
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rx, ry = (jj - cx) / fx, (ii - cy) / fy
    expected = d / (n[0] * rx + n[1] * ry + n[2])  # z of the hit along (rx, ry, 1)
    got = render_depth(verts, faces, fx, fy, cx, cy, w, h)
    assert got.shape == (h, w) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    flipped = render_depth(verts, faces[:, ::-1], fx, fy, cx, cy, w, h)
    np.testing.assert_allclose(flipped, expected, rtol=1e-5)


def test_render_misses_are_nan():
    fx = fy = 10.0
    # One triangle covering only pixels whose centre has x/z > 0 and y/z > 0 near the centre.
    verts = np.array([[0.0, 0.0, 1.0], [0.53, 0.0, 1.0], [0.0, 0.53, 1.0]])
    got = render_depth(verts, np.array([[0, 1, 2]]), fx, fy, 5.0, 5.0, 10, 10)
    # Pixel (i, j) centre ray: ((j + .5 − 5)/10, (i + .5 − 5)/10); hit iff x ≥ 0, y ≥ 0, x + y ≤ .53 (no centre on an edge).
    jj, ii = np.meshgrid(np.arange(10) + 0.5, np.arange(10) + 0.5)
    x, y = (jj - 5) / 10, (ii - 5) / 10
    hit = (x > 0) & (y > 0) & (x + y < 0.53)
    assert np.array_equal(np.isfinite(got), hit)
    assert np.allclose(got[hit], 1.0)
    assert np.isnan(render_depth(verts, np.zeros((0, 3), int), fx, fy, 5, 5, 10, 10)).all()
