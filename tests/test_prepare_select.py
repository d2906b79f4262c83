"""Frame selection rules (SPEC §4, §5): evenly spaced test frames, strides, Matterport pitch."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.select import (camera_pitch_deg, evenly_spaced, select_matterport_cameras,
                             select_scannet_frames, valid_pose_mask)


def look(forward, position=(0.0, 0.0, 1.5)) -> np.ndarray:
    """OpenCV camera-to-world looking along ``forward`` with world +z up."""
    z = np.asarray(forward, float) / np.linalg.norm(forward)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    pose[:3, 3] = position
    return pose


def test_test_frames_are_evenly_spaced_over_valid_poses() -> None:
    rng = np.random.default_rng(0)
    for n_frames in (5, 10, 11, 37, 1000):
        valid = rng.random(n_frames) < 0.8
        valid[[0, -1]] = False  # invalid ends must not be picked
        got = select_scannet_frames(valid, "test", test_frames=10)
        cand = np.flatnonzero(valid)
        assert np.all(valid[got]) and np.all(np.diff(got) > 0)
        if cand.size <= 10:
            np.testing.assert_array_equal(got, cand)
            continue
        assert got.size == 10 and got[0] == cand[0] and got[-1] == cand[-1]
        # independent check: the k-th pick sits at the valid-list position nearest k·(n−1)/9
        pos = np.searchsorted(cand, got)
        ideal = np.arange(10) * (cand.size - 1) / 9
        assert np.all(np.abs(pos - ideal) <= 0.5 + 1e-9)


def test_train_val_stride_and_invalid_pose_mask() -> None:
    poses = np.tile(np.eye(4), (7, 1, 1))
    poses[3, 0, 0] = -np.inf
    valid = valid_pose_mask(poses)
    np.testing.assert_array_equal(valid, [1, 1, 1, 0, 1, 1, 1])
    np.testing.assert_array_equal(select_scannet_frames(valid, "train"), np.arange(7))
    np.testing.assert_array_equal(select_scannet_frames(valid, "val", stride=3), [0, 3, 6])
    with pytest.raises(ValueError, match="split"):
        select_scannet_frames(valid, "dev")
    assert evenly_spaced([4, 9], 10).tolist() == [4, 9]


def test_matterport_pitch_from_pose_not_name() -> None:
    # A sweep like Matterport's: per yaw, cameras pitched down 30°, level, up 30° (file order).
    poses, truth = [], []
    for yaw in np.radians([0, 60, 120, 180, 240, 300]):
        for pitch in np.radians([-30.0, 0.0, 30.0]):
            poses.append(look([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)]))
            truth.append(np.degrees(pitch))
    for pose, want in zip(poses, truth):
        assert camera_pitch_deg(pose) == pytest.approx(want, abs=1e-9)
    chosen = select_matterport_cameras(poses, 10)
    expected = [i for i, p in enumerate(truth) if p <= 15.0][:10]
    assert chosen.tolist() == expected and len(expected) == 10
    # a camera with a non-finite pose is never chosen
    poses[0] = poses[0].copy()
    poses[0][0, 0] = np.nan
    assert 0 not in select_matterport_cameras(poses, 10).tolist()
    # rolled 90° about the optical axis: still level (pitch uses the optical axis only)
    rolled = poses[1] @ np.diag([1.0, 1.0, 1.0, 1.0])
    rolled[:3, :2] = rolled[:3, [1, 0]] * np.array([1.0, -1.0])
    assert camera_pitch_deg(rolled) == pytest.approx(0.0, abs=1e-9)
