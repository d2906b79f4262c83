"""Which frames a prepare job considers (SPEC §4, §5): pure functions of poses, no file access.

- ScanNet train/val: every ``stride``-th frame of the ``.sens`` file (stride 1 = all); frames with an
  invalid pose among them are *considered* and recorded as skipped ("invalid_pose").
- A *valid* pose is one the per-frame step accepts (``pipeline.geometry.camera.pose_is_valid``:
  finite and rigid), so a selected test frame is never skipped for its pose.
- ScanNet test: ``n`` frames evenly spaced among the frames with a valid pose (SPEC §5):
  positions ``round(linspace(0, n_valid − 1, n))`` of the valid-frame list, so the first and last
  valid frames are always included; every valid frame when there are fewer than ``n``.
- Matterport: the first ``n`` cameras of the house in ``.conf`` order, leaving out upward-pitched
  views. The pitch is computed from the pose (the OpenCV optical axis, third column of the
  camera-to-world rotation, against world +z, Matterport being z-up), never from the file name:
  a camera with pitch > ``max_pitch_deg`` (default 15°) is left out. Matterport's tripod has three
  cameras, index 0 diagonally up (about +41° in real ``.conf`` files), 1 level and 2 diagonally down
  (about −41°), so 15° separates the level camera from either tilted one with margin; the level and
  down cameras are kept.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.geometry.camera import pose_is_valid

MAX_PITCH_DEG = 15.0


def valid_pose_mask(poses: np.ndarray) -> np.ndarray:
    """(N,) bool: pose (N, 4, 4) passes ``pose_is_valid`` (finite and rigid; ScanNet writes −inf
    for lost tracking, a broken export may write zeros)."""
    return np.array([pose_is_valid(p) for p in np.asarray(poses)], dtype=bool)


def evenly_spaced(candidates: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """``n`` entries of ``candidates`` at positions round(linspace(0, len − 1, n)); all if fewer.

    Returns an (min(n, len),) int64 array in the candidates' order, without repeats.
    """
    c = np.asarray(candidates, dtype=np.int64)
    if n <= 0:
        raise ValueError(f"number of frames to select must be positive, got {n}")
    if c.size <= n:
        return c.copy()
    # linspace positions are at least (len-1)/(n-1) >= 1 apart here, so rounding never repeats one
    return c[np.rint(np.linspace(0, c.size - 1, n)).astype(np.int64)]


def select_scannet_frames(valid: np.ndarray, split: str, *, stride: int = 1,
                          test_frames: int = 10) -> np.ndarray:
    """Frame indices to consider for a ScanNet scene.

    Args:
        valid: (N,) bool, frame i has a valid pose (:func:`valid_pose_mask`).
        split: "train", "val" or "test".
        stride: train/val keep frames 0, stride, 2·stride, … (valid or not; invalid ones are later
            recorded as skipped with reason "invalid_pose").
        test_frames: the number of evenly spaced valid frames of a test scene.
    Returns:
        (n,) int64 increasing frame indices.
    """
    valid = np.asarray(valid, dtype=bool)
    if split == "test":
        return evenly_spaced(np.flatnonzero(valid), test_frames)
    if split not in ("train", "val"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    if stride < 1:
        raise ValueError(f"frame stride must be >= 1, got {stride}")
    return np.arange(0, valid.size, stride, dtype=np.int64)


def camera_pitch_deg(camera_to_world: np.ndarray, up: Sequence[float] = (0.0, 0.0, 1.0)) -> float:
    """Elevation of the optical axis above the horizontal plane, degrees (positive = looking up).

    camera_to_world: (4, 4) OpenCV pose (z forward); up: world up direction (Matterport: +z).
    """
    forward = np.asarray(camera_to_world, dtype=np.float64)[:3, 2]
    up_v = np.asarray(up, dtype=np.float64)
    s = forward @ up_v / (np.linalg.norm(forward) * np.linalg.norm(up_v))
    return float(np.degrees(np.arcsin(np.clip(s, -1.0, 1.0))))


def select_matterport_cameras(poses: Sequence[np.ndarray], n: int = 10, *,
                              max_pitch_deg: float = MAX_PITCH_DEG) -> np.ndarray:
    """Positions (in ``.conf`` order) of the first ``n`` cameras with a valid, not upward pose.

    poses: camera-to-world (4, 4) OpenCV matrices in file order. Returns (≤ n,) int64 positions.
    """
    chosen = []
    for i, pose in enumerate(poses):
        if len(chosen) == n:
            break
        if pose_is_valid(pose) and camera_pitch_deg(pose) <= max_pitch_deg:
            chosen.append(i)
    return np.asarray(chosen, dtype=np.int64)
