"""Camera paths through a synthetic room: a handheld ScanNet-style scan and Matterport panoramas.

Poses are camera-to-world (4, 4) float64 in the OpenCV camera convention (x right, y down,
z forward), world z up, metres.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .scene import SceneLayout


@dataclass
class Trajectory:
    """camera_to_world: (N, 4, 4) float64 true poses; valid: (N,) bool, False for the frames whose
    pose the ScanNet file marks invalid (all -inf) although their images are rendered."""

    camera_to_world: np.ndarray
    valid: np.ndarray

    def stored_poses(self) -> np.ndarray:
        """(N, 4, 4) float64 poses as ScanNet stores them: invalid frames are all -inf."""
        poses = self.camera_to_world.copy()
        poses[~self.valid] = -np.inf
        return poses


def look_rotation(forward: np.ndarray, roll: float = 0.0) -> np.ndarray:
    """(3, 3) rotation whose columns are the camera x (right), y (down), z (forward) axes in world.

    forward: (3,) viewing direction (world, need not be unit; must not be vertical). roll: radians
    about the viewing axis, positive turns the image clockwise.
    """
    z = np.asarray(forward, dtype=np.float64)
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])  # right = forward x up, level when roll = 0
    x /= np.linalg.norm(x)
    y = np.cross(z, x)  # down
    c, s = math.cos(roll), math.sin(roll)
    x, y = c * x + s * y, -s * x + c * y
    return np.stack([x, y, z], axis=1)


def pose_matrix(rotation: np.ndarray, position: np.ndarray) -> np.ndarray:
    """(4, 4) camera-to-world from a (3, 3) rotation (camera axes as columns) and (3,) centre."""
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = position
    return pose


def _smooth(t: np.ndarray, amplitude: float, rng: np.random.Generator, waves: int = 3) -> np.ndarray:
    """Sum of a few random low-frequency sines over t in [0, 1]; |value| <= amplitude."""
    freqs = rng.uniform(0.5, 3.0, waves)
    phases = rng.uniform(0, 2 * math.pi, waves)
    weights = rng.dirichlet(np.ones(waves))
    return amplitude * np.sum(weights[:, None] * np.sin(2 * math.pi * freqs[:, None] * t + phases[:, None]), 0)


def _invalid_mask(n: int, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Invalid frames as one or two contiguous runs (tracking loss lasts several frames)."""
    valid = np.ones(n, dtype=bool)
    bad = int(round(fraction * n))
    runs = [bad] if bad < 4 else [bad // 2, bad - bad // 2]
    for length in runs:
        start = int(rng.integers(0, n - length + 1))
        valid[start:start + length] = False
    return valid


def handheld_scan(layout: SceneLayout, frames: int, invalid_fraction: float,
                  rng: np.random.Generator) -> Trajectory:
    """A smooth loop through the room's camera zone, looking outward at the furniture and walls.

    Positions stay inside `layout.camera_zone` (free of furniture) at 1.2-1.7 m height; the camera
    looks toward points 0.5-1.1 m high on the far side of the room with slow yaw sweeps, plus small
    smooth roll and pitch jitter (a few degrees) as a handheld sensor has.
    """
    t = np.linspace(0.0, 1.0, frames)
    x0, y0, x1, y1 = layout.camera_zone
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    half = np.array([(x1 - x0) / 2, (y1 - y0) / 2])
    turns = rng.uniform(0.8, 1.2) * rng.choice([-1.0, 1.0])
    theta = rng.uniform(0, 2 * math.pi) + 2 * math.pi * turns * t
    xy = centre + np.stack([0.6 * half[0] * np.cos(theta) + _smooth(t, 0.25 * half[0], rng),
                            0.6 * half[1] * np.sin(theta) + _smooth(t, 0.25 * half[1], rng)], 1)
    height = 1.45 + _smooth(t, 0.2, rng) + _smooth(t * 8, 0.04, rng)
    look = theta + _smooth(t, 0.8, rng)  # mostly outward, sweeping left and right
    reach = 0.45 * min(layout.room_size[0], layout.room_size[1])
    target_z = 0.8 + _smooth(t, 0.3, rng)
    targets = np.column_stack([xy + reach * np.stack([np.cos(look), np.sin(look)], 1), target_z])
    position = np.column_stack([xy, height])
    roll = np.radians(_smooth(t * 4, 3.0, rng))
    pitch = np.radians(_smooth(t * 4, 2.0, rng))
    poses = np.empty((frames, 4, 4))
    for i in range(frames):
        forward = targets[i] - position[i]
        forward[2] += pitch[i] * np.linalg.norm(forward[:2])
        poses[i] = pose_matrix(look_rotation(forward, roll[i]), position[i])
    return Trajectory(poses, _invalid_mask(frames, invalid_fraction, rng))


def panorama_centres(layout: SceneLayout, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 3) tripod positions (world, metres) spread over the camera zone at ~1.55 m height."""
    x0, y0, x1, y1 = layout.camera_zone
    points = []
    for _ in range(count):
        candidates = np.column_stack([rng.uniform(x0, x1, 32), rng.uniform(y0, y1, 32)])
        if points:  # farthest-point choice spreads the tripod positions
            dist = np.min(np.linalg.norm(candidates[:, None] - np.array(points)[None], axis=2), 1)
            points.append(candidates[np.argmax(dist)])
        else:
            points.append(candidates[0])
    heights = 1.5 + rng.uniform(0.0, 0.1, count)
    return np.column_stack([np.array(points), heights])


def panorama_poses(centre: np.ndarray, pitches_deg: tuple[float, ...], yaw_offset: float,
                   yaws: int = 6) -> np.ndarray:
    """(len(pitches), yaws, 4, 4) camera-to-world of one Matterport sweep (OpenCV axes).

    Camera k is pitched by `pitches_deg[k]` (positive looks up); yaw j turns it by
    `yaw_offset + j * 360 / yaws` degrees about +z.
    """
    poses = np.empty((len(pitches_deg), yaws, 4, 4))
    for k, pitch in enumerate(np.radians(pitches_deg)):
        for j in range(yaws):
            yaw = math.radians(yaw_offset + j * 360.0 / yaws)
            forward = [math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)]
            poses[k, j] = pose_matrix(look_rotation(np.array(forward)), np.asarray(centre))
    return poses
