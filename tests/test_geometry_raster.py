"""The rasterising depth kernel against a brute-force float64 ray–triangle oracle (Embree agreement
on the analytic room: tests/test_frames.py::test_amodal_methods_agree)."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.geometry.camera import pixel_directions, world_to_camera
from pipeline.geometry.chunks import build_chunks, chunk_members, chunks_in_view
from pipeline.geometry.raster import depth_maps_raster, rasterise_depths, view_planes

K = np.array([20.0, 18.0, 15.3, 11.7])  # fx, fy, cx, cy of a 32×24 camera (off-centre principal point)
W, H = 32, 24


def brute_force(vertices_cam: np.ndarray, faces: np.ndarray, structure: np.ndarray):
    """Every pixel ray against every face (Möller–Trumbore, float64): nearest, nearest structure,
    farthest hit t (= z-depth, rays have z = 1), with ±inf where none."""
    d = pixel_directions(W, H, K).reshape(-1, 1, 3)                       # (P, 1, 3)
    p0, p1, p2 = (vertices_cam[faces[:, k]][None] for k in range(3))     # (1, F, 3)
    e1, e2 = p1 - p0, p2 - p0
    q = np.cross(d, e2)
    det = np.einsum("pfi,pfi->pf", e1 + 0 * q, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -p0  # ray origin 0 minus p0
        u = np.einsum("pfi,pfi->pf", s + 0 * q, q) / det
        r = np.cross(s, e1)
        v = np.einsum("pfi,pfi->pf", d + 0 * r, r) / det
        t = np.einsum("pfi,pfi->pf", e2 + 0 * r, r) / det
        hit = (det != 0) & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    near = np.where(hit, t, np.inf).min(1).reshape(H, W)
    near_s = np.where(hit & structure[None], t, np.inf).min(1).reshape(H, W)
    far = np.where(hit, t, -np.inf).max(1).reshape(H, W)
    return near, near_s, far


def random_pose(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    a, b, c, d = q / np.linalg.norm(q)
    r = np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                  [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
                  [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d]])
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = r, rng.normal(size=3)
    return t


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_on_random_triangles(seed):
    rng = np.random.default_rng(seed)
    # Camera-frame triangles: most in front, some crossing the camera plane or wholly behind it,
    # large and small, plus a zero-area face and one edge-on to the camera centre.
    centres = rng.uniform([-3, -2, -1.5], [3, 2, 6], size=(150, 1, 3))
    tris = centres + rng.normal(scale=rng.choice([0.05, 0.5, 2.0], size=(150, 1, 1)), size=(150, 3, 3))
    tris[0] = [[0.1, 0.1, 1.0], [0.2, 0.2, 1.0], [0.3, 0.3, 1.0]]        # collinear: no area
    tris[1] = [[0.0, 0.0, 1.0], [0.0, 0.0, 3.0], [0.5, 0.4, 2.0]]        # its plane contains rays
    cam = tris.reshape(-1, 3)
    faces = np.arange(cam.shape[0]).reshape(-1, 3)
    structure = rng.random(faces.shape[0]) < 0.4
    t_wc = random_pose(rng)  # put the scene in a world frame: the kernel must undo the pose
    world = cam @ t_wc[:3, :3].T + t_wc[:3, 3]
    t_cw = world_to_camera(t_wc)
    chunks = build_chunks(world, faces, structure, size=2)  # small chunks: some are culled
    r, t = t_cw[:3, :3].copy(), t_cw[:3, 3].copy()
    planes = view_planes(*K, W, H)
    ok = chunks_in_view(chunks.lo, chunks.hi, r, t, planes)
    assert 0 < ok.sum() < ok.size
    members = chunk_members(chunks.starts, ok)
    got = rasterise_depths(world, chunks.faces, chunks.structure, members, r, t, *K, W, H)
    want = brute_force(cam, faces, structure)
    assert np.isfinite(want[0]).mean() > 0.5 and np.isfinite(want[1]).any()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.isfinite(g), np.isfinite(w))
        np.testing.assert_allclose(g[np.isfinite(w)], w[np.isfinite(w)], rtol=1e-9, atol=1e-12)


def test_watertight_when_rays_pass_through_shared_edges_and_vertices():
    # A tessellated plane at z = 2 whose grid vertices sit exactly on pixel rays (and diagonals
    # through pixel centres): every pixel must hit, at depth 2, whatever the winding.
    k = np.array([16.0, 16.0, 16.0, 12.0])
    xs = (np.arange(-1, W + 2) + 0.5 - k[2]) / k[0] * 2.0
    ys = (np.arange(-1, H + 2) + 0.5 - k[3]) / k[1] * 2.0
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    v = np.stack([gx, gy, np.full_like(gx, 2.0)], -1).reshape(-1, 3)
    idx = np.arange(v.shape[0]).reshape(gx.shape)
    q = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], -1).reshape(-1, 4)
    f = np.concatenate([q[:, [0, 1, 2]], q[:, [0, 3, 2]]])
    rendered, amodal = depth_maps_raster(v, build_chunks(v, f, np.zeros(len(f), bool)), np.eye(4), k, W, H)
    np.testing.assert_array_equal(rendered, 2.0)
    np.testing.assert_array_equal(amodal, 2.0)

