"""Fig. 5-style renders (benchmark.figures): colours follow the precision/recall flags, pixel for pixel."""
from __future__ import annotations

import numpy as np
from PIL import Image

from benchmark.figures import GREEN, RED, flags, frame_figure, orbit_eye, render_flags, view_rays


def _wall(z: float, half: float = 1.0, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A fronto-parallel square of side 2·half at depth z (camera frame, metres), n × n quads."""
    s = np.linspace(-half, half, n + 1)
    xx, yy = np.meshgrid(s, s)
    vertices = np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, z)], axis=1)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    return vertices, np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])


def _counts(pixels: np.ndarray) -> tuple[int, int]:
    """(green, red) pixel counts of an RGB image in [0, 1] or 0..255 (hue test, any shading)."""
    rgb = pixels[..., :3].astype(np.float64)
    rgb = rgb / 255.0 if rgb.max() > 1.0 else rgb
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(((g > r + 0.2) & (g > b + 0.2)).sum()), int(((r > g + 0.2) & (r > b + 0.2)).sum())


def test_orbit_zero_is_the_input_camera_and_rays_hit_the_target():
    target = np.array([0.2, -0.1, 2.0])
    assert np.allclose(orbit_eye(target, 0.0, 0.0), 0.0)
    eye = orbit_eye(target, 30.0, 20.0)
    assert np.isclose(np.linalg.norm(eye - target), np.linalg.norm(target)) and eye[1] < target[1]  # above
    rays = view_rays(eye, target, focal=50.0, width=8, height=6)
    centre = rays[2:4, 3:5, 3:].mean(axis=(0, 1))  # the four pixels around the image centre
    assert np.allclose(centre / np.linalg.norm(centre), (target - eye) / np.linalg.norm(target - eye), atol=1e-6)


def test_render_flags_colours_each_half_by_its_samples():
    vertices, faces = _wall(2.0)
    samples = np.stack(np.meshgrid(np.linspace(-1, 1, 41), np.linspace(-1, 1, 41)), -1).reshape(-1, 2)
    samples = np.column_stack([samples, np.full(len(samples), 2.0)])
    rays = view_rays(np.zeros(3), np.array([0, 0, 2.0]), focal=40.0, width=40, height=30)
    image = render_flags(vertices, faces, samples, samples[:, 0] < 0, rays)  # left half correct
    # The wall fills the view; its normal is ±z, so the shade of a pixel is 0.35 + 0.65·|ray_z|.
    shade = (0.35 + 0.65 * np.abs(rays[..., 5]))[..., None]
    expected = np.where((np.arange(40) < 20)[None, :, None], GREEN, RED) * shade
    boundary = np.isin(np.arange(40), [19, 20])  # the pixels beside x = 0 may take either flag
    assert np.allclose(image[:, ~boundary], expected[:, ~boundary], atol=1e-5)


def test_frame_figure_png_is_green_where_the_prediction_is_right(tmp_path):
    gt_v, gt_f = _wall(2.0)
    image = np.zeros((3, 48, 64), np.uint8)
    right = frame_figure(image, gt_v, gt_f, gt_v, gt_f, tmp_path / "right.png", focal=57.6,
                         n_samples=5_000, yaw_deg=10.0, pitch_deg=5.0)
    green, red = _counts(np.asarray(Image.open(right).convert("RGB")))
    assert green > 2 * 1000 and red == 0  # two panels, each ~ a quarter of 64×48 pixels or more
    shifted = gt_v + [0.0, 0.0, -0.1]  # 10 cm in front: no predicted point within 5 cm
    wrong = frame_figure(image, shifted, gt_f, gt_v, gt_f, tmp_path / "wrong.png", focal=57.6,
                         n_samples=5_000, yaw_deg=10.0, pitch_deg=5.0)
    green, red = _counts(np.asarray(Image.open(wrong).convert("RGB")))
    assert red > 2 * 1000 and green == 0
    assert not list(tmp_path.glob("*.partial*"))


def test_flags_threshold():
    points = np.array([[0.0, 0, 0], [0.049, 0, 0], [0.051, 0, 0]])
    assert flags(points, np.zeros((1, 3))).tolist() == [True, True, False]
    assert flags(points, np.zeros((0, 3))).tolist() == [False, False, False]
