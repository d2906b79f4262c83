"""`dgs train`: validation pictures and the validation mesh reach TensorBoard; the release-size model is
refused on a CPU without --allow-cpu."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dgs.training import main as dgs_train
from dgs.validation_views import colourise, frame_views, val_frames
from dgs_core.experiment import ConfigError
from dgs_core.model import DGSNet, ModelConfig
from dgs_core.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
FAST = ["model.encoder.out_channels=[4, 4, 4, 4, 4]", "model.d_hidden=16", "data.near_points=64",
        "data.non_points=16", "data.workers=0", "optim.batch_size=2", "optim.iterations=2", "checkpoint.every=2",
        "validation.every=2", "validation.frames=2", "log.every=1", "log.images=2", "log.image_grid=8"]


def test_validation_step_writes_images_and_meshes(prepared_tiny, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    dgs_train(["--config", str(REPO / "config" / "experiments" / "tiny.yaml"),
               "--train-manifest", str(prepared_tiny.manifest("scannet", "train")),
               "--val-manifest", str(prepared_tiny.manifest("scannet", "val")), "--out", str(out),
               "--device", "cpu", "--set", *FAST])
    events = EventAccumulator(str(out / "tb"), size_guidance={"images": 0, "tensors": 0}).Reload()
    images = events.Tags()["images"]
    for i in (0, 1):
        for name in ("depth", "occupancy_slice", "mesh_view"):
            assert f"val_views/{i}/{name}" in images, images
    depth = events.Images("val_views/0/depth")[-1]
    assert depth.step == 2 and depth.width == 3 * 64 and depth.height == 48  # three 64×48 panels side by side
    meshes = {tag for tag in events.Tags()["tensors"] if tag.startswith("val_views/")}
    assert meshes <= {f"val_views/{i}/mesh_{part}" for i in (0, 1) for part in ("VERTEX", "FACE", "COLOR")}


def test_frame_views_of_an_occupied_half_space(prepared_tiny) -> None:
    """A stand-in network whose occupancy is 1 beyond the frame's median depth: the mesh is the plane at
    that depth (plus the walls where the frustum, outside which cells are free, cuts the occupied
    space), nothing lies in front of it, and the slice is free near, occupied far."""
    frame = val_frames(prepared_tiny.manifest("scannet", "val"), 1)[0]
    near = frame.near_surface_points[frame.near_surface_valid]
    plane = float(np.median(near[:, 2]))

    class HalfSpace(DGSNet):
        def query(self, features, points, intrinsics):
            return (points[..., 2] - plane) * 50.0  # logit: occupied beyond z = plane

    net = HalfSpace(ModelConfig.tiny()).eval()
    views = frame_views(net, frame, 16, torch.device("cpu"))
    vertices, faces = views["mesh"]
    on_plane = np.abs(vertices[:, 2] - plane) < 0.02 * plane
    assert len(faces) and on_plane.mean() > 0.3 and vertices[:, 2].min() > 0.98 * plane
    assert views["depth"].shape == (3, 48, 3 * 64) and views["mesh_view"].shape == (3, 48, 64)
    slice_rgb = views["occupancy_slice"]
    assert slice_rgb.shape == (3, 128, 128)  # 16 cells of 8 pixels each way
    assert slice_rgb[:, 0].mean() > slice_rgb[:, -1].mean()  # far (top) occupied: bright


def test_colourise_maps_nan_to_black_and_clips() -> None:
    rgb = colourise(np.array([[np.nan, -1.0, 0.0, 9.0, 1.0]]), 0.0, 1.0)
    assert rgb.shape == (3, 1, 5) and np.all(rgb[:, 0, 0] == 0)
    np.testing.assert_array_equal(rgb[:, 0, 1], rgb[:, 0, 2])  # clipped to the bottom of the scale
    np.testing.assert_array_equal(rgb[:, 0, 3], rgb[:, 0, 4])  # and to the top
    assert not np.allclose(rgb[:, 0, 2], rgb[:, 0, 4])


def test_release_model_on_cpu_is_refused_without_allow_cpu(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="release-size model.*--allow-cpu"):
        train_main(["--train-manifest", str(tmp_path / "t.parquet"), "--val-manifest", str(tmp_path / "v.parquet"),
                    "--out", str(tmp_path / "run"), "--device", "cpu"])
    with pytest.raises(FileNotFoundError):  # with the flag it gets past the check, to the missing manifest
        train_main(["--train-manifest", str(tmp_path / "t.parquet"), "--val-manifest", str(tmp_path / "v.parquet"),
                    "--out", str(tmp_path / "run"), "--device", "cpu", "--allow-cpu"])
