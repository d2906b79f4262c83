"""Camera paths: inside the room, clear of furniture, smooth, orthonormal OpenCV poses."""
import math

import numpy as np
import pytest

from pipeline.synthetic.scene import make_scene
from pipeline.synthetic.structure import ray_rectangles
from pipeline.synthetic.trajectory import (handheld_scan, look_rotation, panorama_centres,
                                           panorama_poses)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_handheld_scan_walks_every_room_clear_of_matter(seed):
    layout, _ = make_scene(f"scene{seed:04d}_00", seed, edge_length=0.5, rooms_range=(2, 4))
    path = handheld_scan(layout, 300, 0.05, np.random.default_rng(seed))
    pos = path.camera_to_world[:, :3, 3]
    assert not layout.occupancy(pos).any()  # never inside a wall, slab or piece of furniture
    assert np.all((pos[:, 2] >= 1.2) & (pos[:, 2] <= 1.7))
    rooms = layout.room_of(pos)
    assert set(rooms.tolist()) - {-1} == set(range(len(layout.rooms)))  # every room is visited
    in_doorway = rooms == -1  # between two rooms: inside a doorway's passage
    assert in_doorway.any()
    for o in layout.objects:  # horizontal distance to every piece of furniture
        foot = o.footprint()
        outside = np.maximum(np.maximum(foot[:2] - pos[:, :2], pos[:, :2] - foot[2:]), 0)
        assert np.linalg.norm(outside, axis=1).min() > 0.1, o.name
    steps = np.linalg.norm(np.diff(pos, axis=0), axis=1)
    assert steps.max() < 0.15  # smooth: a few cm per frame at 300 frames
    forward = path.camera_to_world[:, :3, 2]
    turn = np.degrees(np.arccos(np.clip(np.sum(forward[1:] * forward[:-1], 1), -1, 1)))
    assert turn.max() < 15.0


def test_handheld_scan_looks_through_doorways():
    """Some frames look from one room into another: the optical axis leaves through a doorway."""
    layout, _ = make_scene("scene0000_00", 0, edge_length=0.5, rooms_range=(3, 3))
    path = handheld_scan(layout, 200, 0.0, np.random.default_rng(0))
    pos, forward = path.camera_to_world[:, :3, 3], path.camera_to_world[:, :3, 2]
    walls = [s for s in layout.surfaces if s.category in ("wall", "floor", "ceiling")]
    through = 0
    for p, f in zip(pos, forward):
        t = ray_rectangles(walls, p, f[None]).min()
        room_here, room_there = layout.room_of(np.array([p, p + (t - 0.05) * f]))
        through += room_here >= 0 and room_there >= 0 and room_here != room_there
    assert through >= 10


def test_poses_are_opencv_rotations_and_invalid_frames_are_minus_inf():
    layout, _ = make_scene("scene0000_00", 0, edge_length=0.5)
    path = handheld_scan(layout, 200, 0.1, np.random.default_rng(0))
    rot = path.camera_to_world[:, :3, :3]
    assert np.allclose(rot.transpose(0, 2, 1) @ rot, np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(rot), 1.0)
    assert np.all(rot[:, 2, 1] < 0)  # camera y (image down) points down in the world (z up)
    roll = np.degrees(np.arcsin(np.abs(rot[:, 2, 0])))  # camera x leaves the horizontal plane
    assert roll.max() < 6.0
    assert (~path.valid).sum() == 20
    stored = path.stored_poses()
    assert np.all(np.isneginf(stored[~path.valid])) and np.all(np.isfinite(stored[path.valid]))
    assert np.array_equal(stored[path.valid], path.camera_to_world[path.valid])


def test_look_rotation_axes():
    rot = look_rotation(np.array([1.0, 0.0, 0.0]))
    assert np.allclose(rot[:, 0], [0, -1, 0])  # right of a +x view with z up is -y
    assert np.allclose(rot[:, 1], [0, 0, -1])  # image down is world down
    assert np.allclose(rot[:, 2], [1, 0, 0])
    rolled = look_rotation(np.array([1.0, 0.0, 0.0]), math.radians(90))
    assert np.allclose(rolled[:, 0], [0, 0, -1]) and np.allclose(rolled[:, 2], [1, 0, 0])


def test_panorama_poses_pitch_and_yaw():
    layout, _ = make_scene("scene0000_00", 0, edge_length=0.5, rooms_range=(3, 3))
    centres = panorama_centres(layout, 3, np.random.default_rng(0))
    rooms = [r for r in layout.rooms if r.kind == "room"]
    for k, c in enumerate(centres):  # the rooms in turn, inside each one's camera zone
        x0, y0, x1, y1 = rooms[k % len(rooms)].camera_zone
        assert x0 <= c[0] <= x1 and y0 <= c[1] <= y1
    poses = panorama_poses(centres[0], (41.0, 0.0, -41.0), 15.0)
    assert poses.shape == (3, 6, 4, 4)
    pitch = np.degrees(np.arcsin(poses[:, :, 2, 2]))  # elevation of the optical axis
    assert np.allclose(pitch, np.array([41, 0, -41])[:, None])
    yaw = np.degrees(np.arctan2(poses[1, :, 1, 2], poses[1, :, 0, 2]))
    wrapped = np.mod(yaw - 15.0 - np.arange(6) * 60.0 + 180.0, 360.0) - 180.0
    assert np.allclose(wrapped, 0.0, atol=1e-9)
    assert np.allclose(poses[..., :3, 3], centres[0])
