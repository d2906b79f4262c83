"""Camera paths through a synthetic apartment: a handheld ScanNet-style walk through its rooms and
Matterport panoramas.

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


def _room_order(layout: SceneLayout, rng: np.random.Generator) -> list[int]:
    """Every room once, walking through doorways: a depth-first tour from a random room, with the
    way back through already visited rooms spelt out (so consecutive entries share a doorway)."""
    links: dict[int, list[int]] = {k: [] for k in range(len(layout.rooms))}
    for o in layout.openings:
        if o.kind == "doorway":
            a, b = o.rooms
            links[a].append(b)
            links[b].append(a)
    start = int(rng.integers(len(layout.rooms)))
    order, seen = [start], {start}

    def visit(k: int) -> None:
        for n in sorted(links[k], key=lambda _: rng.random()):
            if n not in seen:
                seen.add(n)
                order.append(n)
                visit(n)
                if len(seen) < len(links):
                    order.append(k)  # walk back to continue the tour

    visit(start)
    return order


def _doorway(layout: SceneLayout, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre of the doorway from room a to room b on a's inner wall face (xy), and a's inward
    unit normal there."""
    for o in layout.openings:
        if o.kind == "doorway" and sorted(o.rooms) == sorted([a, b]):
            side = o.side if o.rooms[0] == a else -o.side
            lo, hi = np.array(o.box[:2]), np.array(o.box[3:5])
            centre = (lo + hi) / 2
            centre[o.axis] = lo[o.axis] if side > 0 else hi[o.axis]
            inward = np.zeros(2)
            inward[o.axis] = -side
            return centre, inward
    raise ValueError(f"{layout.scene_id}: no doorway between rooms {a} and {b}")


def _loop(zone: list[float], turns: float, start: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) points of a loop inside a camera zone and (n,) outward look angles (radians)."""
    x0, y0, x1, y1 = zone
    centre, half = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), np.array([(x1 - x0) / 2, (y1 - y0) / 2])
    n = max(8, int(60 * abs(turns)))
    t = np.linspace(0.0, 1.0, n)
    theta = start + 2 * math.pi * turns * t
    xy = centre + np.stack([0.6 * half[0] * np.cos(theta) + _smooth(t, 0.25 * half[0], rng),
                            0.6 * half[1] * np.sin(theta) + _smooth(t, 0.25 * half[1], rng)], 1)
    return xy, theta + _smooth(t, 0.8, rng)  # mostly outward, sweeping left and right


def _walk(layout: SceneLayout, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Key points (n, 2) of the tour and the look angle at each: loops in every room's camera zone,
    and between rooms straight through the doorway, looking along the way (into the next room)."""
    order = _room_order(layout, rng)
    points, looks = [], []
    for step, k in enumerate(order):
        zone = layout.rooms[k].camera_zone
        start = math.atan2(points[-1][-1][1] - (zone[1] + zone[3]) / 2, points[-1][-1][0] - (zone[0] + zone[2]) / 2) \
            if points else rng.uniform(0, 2 * math.pi)
        xy, look = _loop(zone, rng.uniform(0.5, 0.9) * rng.choice([-1.0, 1.0]), start, rng)
        points.append(xy)
        looks.append(look)
        if step + 1 < len(order):
            nxt = order[step + 1]
            door_a, in_a = _doorway(layout, k, nxt)
            door_b, _ = _doorway(layout, nxt, k)
            front_a, front_b = door_a + 0.7 * in_a, door_b - 0.7 * in_a
            zone_b = layout.rooms[nxt].camera_zone
            # via the zone points nearest the doorway: the floor between is kept free of furniture
            path = np.array([np.clip(front_a, zone[:2], zone[2:]), front_a, door_a, door_b, front_b,
                             np.clip(front_b, zone_b[:2], zone_b[2:])])
            heading = math.atan2(-in_a[1], -in_a[0])  # through the doorway, into the next room
            points.append(path)
            looks.append(np.full(len(path), heading))
    return np.concatenate(points), np.concatenate(looks)


def _resample(points: np.ndarray, values: np.ndarray, n: int, smooth_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions and (unwrapped, smoothed) look angles at n points evenly spaced along the polyline."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    keep = np.concatenate([[True], seg > 1e-9])
    arc, points, values = arc[keep], points[keep], np.unwrap(values[keep])
    s = np.linspace(0.0, arc[-1], n)
    xy = np.column_stack([np.interp(s, arc, points[:, 0]), np.interp(s, arc, points[:, 1])])
    fine = np.linspace(0.0, arc[-1], 2000)
    look = np.interp(fine, arc, values)
    sigma = smooth_m / max(fine[1] - fine[0], 1e-9)
    kernel = np.exp(-0.5 * (np.arange(-int(3 * sigma) - 1, int(3 * sigma) + 2) / max(sigma, 1e-9)) ** 2)
    padded = np.pad(look, len(kernel) // 2, mode="edge")
    look = np.convolve(padded, kernel / kernel.sum(), mode="valid")
    return xy, np.interp(s, fine, look)


def handheld_scan(layout: SceneLayout, frames: int, invalid_fraction: float,
                  rng: np.random.Generator) -> Trajectory:
    """A smooth walk through every room of the apartment, as a ScanNet scan.

    In each room the camera loops inside the room's camera zone (free of furniture) looking outward
    at the furniture and walls with slow yaw sweeps; between rooms it walks straight through the
    doorway, looking along the way, so it looks through the doorway into the next room before
    entering it. Height 1.2–1.7 m; small smooth roll and pitch jitter (a few degrees) as a handheld
    sensor has; the camera looks down toward points about 0.8 m high ~2 m ahead.
    """
    keys, key_looks = _walk(layout, rng)
    xy, look = _resample(keys, key_looks, frames, smooth_m=0.8)
    t = np.linspace(0.0, 1.0, frames)
    height = 1.45 + _smooth(t, 0.2, rng) + _smooth(t * 8, 0.04, rng)
    target_z = 0.8 + _smooth(t, 0.3, rng)
    roll = np.radians(_smooth(t * 4, 3.0, rng))
    pitch = np.radians(_smooth(t * 4, 2.0, rng))
    poses = np.empty((frames, 4, 4))
    for i in range(frames):
        forward = np.array([2.0 * math.cos(look[i]), 2.0 * math.sin(look[i]), target_z[i] - height[i]])
        forward[2] += pitch[i] * 2.0
        poses[i] = pose_matrix(look_rotation(forward, roll[i]), np.array([xy[i, 0], xy[i, 1], height[i]]))
    return Trajectory(poses, _invalid_mask(frames, invalid_fraction, rng))


def panorama_centres(layout: SceneLayout, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 3) tripod positions (world, metres) at ~1.55 m height, taking the rooms (not
    corridors) in turn and spreading the positions within each room's camera zone."""
    rooms = [r for r in layout.rooms if r.kind == "room"] or list(layout.rooms)
    points: list[np.ndarray] = []
    for i in range(count):
        x0, y0, x1, y1 = rooms[i % len(rooms)].camera_zone
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

    Camera k is pitched by `pitches_deg[k]` (positive looks up; Matterport's camera 0 looks up,
    1 level, 2 down); yaw j turns it by
    `yaw_offset + j * 360 / yaws` degrees about +z.
    """
    poses = np.empty((len(pitches_deg), yaws, 4, 4))
    for k, pitch in enumerate(np.radians(pitches_deg)):
        for j in range(yaws):
            yaw = math.radians(yaw_offset + j * 360.0 / yaws)
            forward = [math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)]
            poses[k, j] = pose_matrix(look_rotation(np.array(forward)), np.asarray(centre))
    return poses
