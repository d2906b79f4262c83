"""Camera math of SPEC §1: poses, the virtual camera, pixel rays and normalised projection.

Camera frame is OpenCV (x right, y down, z forward, metres). ``T_wc`` (4, 4) maps camera points to
world points; ``T_cw = inv(T_wc)``. Pixel centres are at integer + 0.5 (OpenCV), normalised
coordinates use the ``align_corners=False`` convention: u = 2·(fx·x/z + cx)/W − 1.
"""
from __future__ import annotations

import numpy as np


def pose_problem(camera_to_world: np.ndarray, tol: float = 1e-3) -> str | None:
    """Why ``camera_to_world`` (4, 4) is not a usable pose, or None when it is finite, rigid
    (R orthonormal, det +1) and affine (last row 0 0 0 1), each within ``tol``.

    ScanNet marks lost tracking with −inf entries; such frames must be skipped (SPEC §4).
    """
    t = np.asarray(camera_to_world, dtype=np.float64)
    if t.shape != (4, 4):
        return f"pose has shape {t.shape}, expected (4, 4)"
    if not np.all(np.isfinite(t)):
        return "pose has non-finite entries (lost tracking)"
    r = t[:3, :3]
    ortho, det = float(np.abs(r.T @ r - np.eye(3)).max()), float(np.linalg.det(r))
    if ortho > tol or abs(det - 1.0) > tol:
        return f"pose rotation is not rigid (max|RᵀR − I| = {ortho:.3g}, det R = {det:.3g})"
    last = float(np.abs(t[3] - np.array([0.0, 0.0, 0.0, 1.0])).max())
    if last > tol:
        return f"pose last row is {t[3].tolist()}, expected [0, 0, 0, 1]"
    return None


def pose_is_valid(camera_to_world: np.ndarray, tol: float = 1e-3) -> bool:
    """True if :func:`pose_problem` finds nothing wrong with ``camera_to_world``."""
    return pose_problem(camera_to_world, tol) is None


def world_to_camera(camera_to_world: np.ndarray) -> np.ndarray:
    """Rigid inverse of a camera-to-world pose: (4, 4) float64 world → camera."""
    t = np.asarray(camera_to_world, dtype=np.float64)
    r = t[:3, :3]
    out = np.eye(4)
    out[:3, :3] = r.T
    out[:3, 3] = -r.T @ t[:3, 3]
    return out


def scale_intrinsics(k: np.ndarray, size: tuple[int, int], shape: tuple[int, ...]) -> np.ndarray:
    """3×3 pixel intrinsics of an image of ``size`` (W, H) rescaled to a decoded array of ``shape``.

    ``shape`` is the decoded array's (H, W[, C]) (e.g. a JPEG decoded at a libjpeg draft scale).
    Pixel-edge convention (SPEC §1): coordinates scale without a half-pixel shift.
    """
    sx, sy = shape[1] / size[0], shape[0] / size[1]
    out = np.array(k[:3, :3], dtype=np.float64)
    out[0] *= sx
    out[1] *= sy
    out[2] = (0.0, 0.0, 1.0)
    return out


def virtual_intrinsics(width: int, height: int, focal: float) -> np.ndarray:
    """(4,) float64 fx, fy, cx, cy in pixels of the virtual camera: principal point at the centre."""
    return np.array([focal, focal, width / 2.0, height / 2.0])


def projection_coefficients(fx: float, fy: float, cx: float, cy: float,
                            width: int, height: int) -> np.ndarray:
    """(4,) normalised intrinsics (a_u, a_v, c_u, c_v): u = a_u·x/z + c_u, v = a_v·y/z + c_v (SPEC §1).

    Pixel intrinsics of a W×H image (OpenCV, pixel centres at +0.5), ``align_corners=False``:
    a_u = 2·fx/W, c_u = 2·cx/W − 1 (likewise for v). The model uses the same order
    (``dgs_core.camera.normalised_intrinsics``); the virtual camera gives (1.8, 2.4, 0, 0).
    """
    return np.array([2.0 * fx / width, 2.0 * fy / height,
                     2.0 * cx / width - 1.0, 2.0 * cy / height - 1.0])


def project_normalised(points_cam: np.ndarray, proj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised image coordinates (u, v), each (N,), of camera points (N, 3) (z must be ≠ 0)."""
    z = points_cam[:, 2]
    return proj[0] * points_cam[:, 0] / z + proj[2], proj[1] * points_cam[:, 1] / z + proj[3]


def in_frustum(points_cam: np.ndarray, proj: np.ndarray, z_near: float, widen: float = 1.0) -> np.ndarray:
    """(N,) bool: z > z_near and |u|, |v| ≤ widen for camera points (N, 3), metres."""
    z = points_cam[:, 2]
    ok = z > z_near
    zs = np.where(ok, z, 1.0)
    u = proj[0] * points_cam[:, 0] / zs + proj[2]
    v = proj[1] * points_cam[:, 1] / zs + proj[3]
    return ok & (np.abs(u) <= widen) & (np.abs(v) <= widen)


def pixel_directions(width: int, height: int, intrinsics: np.ndarray) -> np.ndarray:
    """(H, W, 3) float64 camera-frame ray directions through pixel centres, scaled to z = 1.

    With z = 1 the ray parameter t of a hit *is* its z-depth, so ray-cast distances are depths.
    """
    fx, fy, cx, cy = (float(a) for a in intrinsics)
    xs = (np.arange(width) + 0.5 - cx) / fx
    ys = (np.arange(height) + 0.5 - cy) / fy
    d = np.empty((height, width, 3))
    d[..., 0] = xs[None, :]
    d[..., 1] = ys[:, None]
    d[..., 2] = 1.0
    return d


def back_project(depth: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Camera points (N, 3) float64 of the finite, positive pixels of a z-depth map (H, W), metres."""
    h, w = depth.shape
    d = pixel_directions(w, h, intrinsics)
    ok = np.isfinite(depth) & (depth > 0)
    return d[ok] * depth[ok][:, None]
