"""Camera helpers shared by the model and the gradient modes (SPEC §1).

All points are in the OpenCV camera frame (x right, y down, z forward), metres. Intrinsics are the
*normalised* ``(a_u, a_v, c_u, c_v)`` of the ``align_corners=False`` convention, so that
``u = a_u·x/z + c_u`` and ``v = a_v·y/z + c_v`` lie in [-1, 1] inside the image. Because of that
convention one set of normalised intrinsics serves every feature map of an image, whatever its stride.
"""
from __future__ import annotations

import torch

from pipeline.geometry.camera import projection_coefficients


def normalised_intrinsics(fx: float, fy: float, cx: float, cy: float, width: int, height: int
                          ) -> tuple[float, float, float, float]:
    """Pixel intrinsics (pixels, OpenCV, centres at +0.5) of a W×H image → ``(a_u, a_v, c_u, c_v)``.

    ``a_u = 2·fx/W``, ``c_u = 2·cx/W − 1`` and likewise for v. The virtual camera of the protocol
    (256×192, f = 230.4, centred principal point) gives ``(1.8, 2.4, 0, 0)``.
    """
    return tuple(float(c) for c in projection_coefficients(fx, fy, cx, cy, width, height))


def check_points_intrinsics(points: torch.Tensor, intrinsics: torch.Tensor) -> None:
    """Raise a ValueError naming what was expected if ``points``/``intrinsics`` have bad shapes."""
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"points: expected (B, Q, 3) camera-space xyz, found shape {tuple(points.shape)}; "
                         "reshape your query points to (batch, queries, 3)")
    if intrinsics.shape != (points.shape[0], 4):
        raise ValueError(f"intrinsics: expected ({points.shape[0]}, 4) normalised (a_u, a_v, c_u, c_v), "
                         f"found shape {tuple(intrinsics.shape)}; convert pixel intrinsics with "
                         "dgs_core.camera.normalised_intrinsics")


def project(points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Project camera-space points to normalised image coordinates.

    Args:
        points: (B, Q, 3) float, metres, camera frame, z > 0.
        intrinsics: (B, 4) normalised ``(a_u, a_v, c_u, c_v)``.
    Returns:
        (B, Q, 2) ``(u, v)``, differentiable w.r.t. ``points`` (used by the autograd mode).
    """
    check_points_intrinsics(points, intrinsics)
    z = points[..., 2]
    u = intrinsics[:, None, 0] * points[..., 0] / z + intrinsics[:, None, 2]
    v = intrinsics[:, None, 1] * points[..., 1] / z + intrinsics[:, None, 3]
    return torch.stack((u, v), dim=-1)
