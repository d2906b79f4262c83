"""Virtual-camera resampling and camera math against analytic answers."""
from __future__ import annotations

import numpy as np

from pipeline.geometry.camera import (back_project, pose_is_valid, projection_coefficients,
                                      virtual_intrinsics, world_to_camera)
from pipeline.geometry.resample import resample_color, resample_depth

W, H, F = 256, 192, 230.4
KV = virtual_intrinsics(W, H, F)
# Off-centre principal point and fx ≠ fy; the virtual field of view fits inside the source image.
KS = np.array([[300.0, 0, 210.0], [0, 280.0, 140.0], [0, 0, 1]])


def source_coordinate(n, c_v, c_s, f_s):
    """Continuous source pixel coordinate of virtual pixel centres (pixel centres at +0.5)."""
    return c_s + f_s * (np.arange(n) + 0.5 - c_v) / F


def test_color_linear_ramp_maps_exactly():
    xs = np.arange(400) + 0.5
    ys = np.arange(300) + 0.5
    img = np.zeros((300, 400, 3), dtype=np.uint8)
    img[..., 0] = np.round(0.5 * xs + 20)[None, :]
    img[..., 1] = np.round(0.6 * ys + 30)[:, None]
    img[..., 2] = 100
    out = resample_color(img, KS, W, H, KV).astype(np.float64)
    want_r = 0.5 * source_coordinate(W, KV[2], KS[0, 2], KS[0, 0]) + 20
    want_g = 0.6 * source_coordinate(H, KV[3], KS[1, 2], KS[1, 1]) + 30
    assert out.shape == (H, W, 3)
    assert np.abs(out[:, :, 0] - want_r[None, :]).max() <= 1.0
    assert np.abs(out[:, :, 1] - want_g[:, None]).max() <= 1.0
    assert (out[:, :, 2] == 100).all()


def test_color_known_pixel_lands_where_its_ray_does():
    # A smooth blob centred on the ray x/z = 0.2, y/z = −0.1 must be centred at the virtual pixel of that ray.
    cx_s, cy_s = KS[0, 2] + KS[0, 0] * 0.2, KS[1, 2] + KS[1, 1] * -0.1
    yy, xx = np.mgrid[0:300, 0:400] + 0.5
    blob = 255 * np.exp(-((xx - cx_s) ** 2 + (yy - cy_s) ** 2) / (2 * 3.0**2))
    img = np.repeat(np.round(blob).astype(np.uint8)[..., None], 3, axis=2)
    out = resample_color(img, KS, W, H, KV)[..., 0].astype(np.float64)
    vy, vx = np.mgrid[0:H, 0:W] + 0.5
    centroid = (out * vx).sum() / out.sum(), (out * vy).sum() / out.sum()
    want = (KV[2] + F * 0.2, KV[3] + F * -0.1)  # continuous virtual coordinates of the ray
    assert abs(centroid[0] - want[0]) < 0.15 and abs(centroid[1] - want[1]) < 0.15


def test_color_view_past_the_image_replicates_edges():
    k = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])  # narrower than the virtual FOV
    img = np.full((80, 100, 3), 77, dtype=np.uint8)
    assert (resample_color(img, k, W, H, KV) == 77).all()


def test_depth_bilinear_is_exact_on_a_plane_and_keeps_holes():
    xs = np.arange(400) + 0.5
    ys = np.arange(300) + 0.5
    depth = (1.0 + 0.01 * xs[None, :] + 0.02 * ys[:, None]).astype(np.float64)
    out = resample_depth(depth, KS, W, H, KV)
    want = 1.0 + 0.01 * source_coordinate(W, KV[2], KS[0, 2], KS[0, 0])[None, :] \
        + 0.02 * source_coordinate(H, KV[3], KS[1, 2], KS[1, 1])[:, None]
    np.testing.assert_allclose(out, want, rtol=1e-6)
    # One NaN and one zero (no reading) pixel: exactly the virtual samples whose 2×2 footprint
    # touches them become NaN.
    holes = [(150, 200), (60, 120)]
    depth[holes[0]] = np.nan
    depth[holes[1]] = 0.0
    out = resample_depth(depth, KS, W, H, KV)
    ix = source_coordinate(W, KV[2], KS[0, 2], KS[0, 0]) - 0.5
    iy = source_coordinate(H, KV[3], KS[1, 2], KS[1, 1]) - 0.5
    expect = np.zeros((H, W), dtype=bool)
    for r, c in holes:
        touch_x = (np.floor(ix) == c) | (np.floor(ix) + 1 == c)
        touch_y = (np.floor(iy) == r) | (np.floor(iy) + 1 == r)
        expect |= touch_y[:, None] & touch_x[None, :]
    np.testing.assert_array_equal(np.isnan(out), expect)


def test_depth_outside_the_sensor_view_is_nan():
    k = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    out = resample_depth(np.ones((80, 100)), k, W, H, KV)
    # Source column index of virtual column j: 50 + 100·(j + 0.5 − 128)/230.4 − 0.5 must be within
    # one pixel of [0, 99] to be valid.
    ix = 50 + 100 * (np.arange(W) + 0.5 - 128) / F - 0.5
    valid_cols = (ix >= -1) & (ix <= 100)
    np.testing.assert_array_equal(np.isfinite(out).any(axis=0), valid_cols)


def test_camera_math():
    assert not pose_is_valid(np.full((4, 4), -np.inf))
    scaled = np.eye(4)
    scaled[0, 0] = 2.0
    assert not pose_is_valid(scaled)
    t = np.eye(4)
    t[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    t[:3, 3] = [1, 2, 3]
    assert pose_is_valid(t)
    np.testing.assert_allclose(world_to_camera(t) @ t, np.eye(4), atol=1e-12)
    # Virtual camera: u = 1.8·x/z, v = 2.4·y/z (SPEC §1).
    np.testing.assert_allclose(projection_coefficients(*KV, W, H), [1.8, 2.4, 0.0, 0.0])
    # Back-projecting a constant-depth map gives points at that z on the pixel rays.
    pts = back_project(np.full((H, W), 2.0), KV)
    assert pts.shape == (H * W, 3) and np.allclose(pts[:, 2], 2.0)
    np.testing.assert_allclose(pts[0, :2], 2.0 * (0.5 - np.array([128.0, 96.0])) / F)


def ref_resample_depth(depth, k, width, height, kv, tol=1.0):
    """Plain NumPy bilinear resampling (float32 taps and weights, NaN taps propagate)."""
    d = np.where(depth > 0, depth, np.nan).astype(np.float32)
    h, w = d.shape
    xs = k[0, 2] + k[0, 0] * (np.arange(width) + 0.5 - kv[2]) / kv[0] - 0.5
    ys = k[1, 2] + k[1, 1] * (np.arange(height) + 0.5 - kv[3]) / kv[1] - 0.5
    out = np.full((height, width), np.nan, np.float32)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            if not (-tol <= x <= w - 1 + tol and -tol <= y <= h - 1 + tol):
                continue
            x, y = min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
            c0, r0 = min(int(np.floor(x)), w - 2), min(int(np.floor(y)), h - 2)
            ax, ay = np.float32(x - c0), np.float32(y - r0)
            top = d[r0, c0] * (1 - ax) + d[r0, c0 + 1] * ax
            bottom = d[r0 + 1, c0] * (1 - ax) + d[r0 + 1, c0 + 1] * ax
            out[i, j] = top * (1 - ay) + bottom * ay
    return out


def test_depth_matches_reference_on_random_maps_with_holes():
    rng = np.random.default_rng(11)
    depth = rng.uniform(0.4, 5.0, size=(60, 80)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.1] = 0.0
    depth[rng.random(depth.shape) < 0.1] = np.nan
    k = np.array([[70.0, 0, 41.3], [0, 66.0, 29.1], [0, 0, 1]])  # the view overhangs the sensor a bit
    kv = virtual_intrinsics(40, 30, 33.0)
    got = resample_depth(depth, k, 40, 30, kv)
    want = ref_resample_depth(depth, k, 40, 30, kv)
    assert np.isnan(want).any() and np.isfinite(want).mean() > 0.3
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
