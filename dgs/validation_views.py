"""TensorBoard pictures of the model at each validation step (``dgs train``).

For ``log.images`` evenly spaced val frames (read once, on the first call) it adds, under
``val_views/<i>`` (i = 0, 1, …):

- ``depth``: predicted metric depth (the encoder's depth head) | sensor depth | depth of the mesh
  predicted from the occupancy grid, rendered from the input camera — one colour scale (metres),
  black where there is no value;
- ``occupancy_slice``: the predicted occupancy o ∈ [0, 1] (magma: dark = free, bright = occupied)
  on the horizontal plane through the optical axis (y = 0, camera frame), seen from above: x to the
  right, depth z upward, each grid cell a block of pixels (at least 128 pixels across);
- ``mesh_view``: the predicted mesh seen from 25° to the right of and 20° above the input camera,
  shaded by |normal · ray| (:func:`benchmark.figures.render_flags`);
- ``mesh`` (TensorBoard's mesh plugin): that mesh, camera frame, metres.

The occupancy is predicted on a ``log.image_grid``³ grid (:func:`dgs_core.infer.predict_grid`)
over the box of the frame's valid near-surface points, and meshed at o = 0.5 by
:func:`pipeline.geometry.isosurface.extract_mesh`, as the evaluation does at 128³.
"""
from __future__ import annotations

import numpy as np
import torch

from pipeline.geometry.isosurface import extract_mesh
from benchmark.figures import orbit_eye, render_flags, view_rays
from benchmark.render import render_depth
from dgs_core.camera import normalised_intrinsics
from dgs_core.infer import encode_image, query_grid
from dgs_core.object_data import is_object_manifest
from pipeline.frame_sample import FrameSample
from pipeline.manifest import read_manifest
from pipeline.shards import ShardReader


def val_frames(manifest, count: int) -> list[FrameSample]:
    """``count`` evenly spaced usable frames of a manifest (all of them when it has fewer)."""
    table = read_manifest(manifest)
    table = table[table["status"] == "ok"].reset_index(drop=True)
    picks = np.unique(np.linspace(0, len(table) - 1, min(count, len(table))).round().astype(int))
    frames = []
    for i in picks:
        with ShardReader(manifest.parent / table.loc[i, "shard"]) as reader:
            frames.append(reader[int(table.loc[i, "row"])])
    return frames


def colourise(values: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> np.ndarray:
    """(H, W) values → (3, H, W) float32 RGB in [0, 1] through ``cmap``; NaN → black."""
    from matplotlib import colormaps

    scaled = np.clip((values - vmin) / max(vmax - vmin, 1e-9), 0.0, 1.0)
    rgb = colormaps[cmap](np.nan_to_num(scaled))[..., :3].astype(np.float32)
    rgb[~np.isfinite(values)] = 0.0
    return np.moveaxis(rgb, -1, 0)


def frame_views(net: torch.nn.Module, frame: FrameSample, resolution: int, device: torch.device) -> dict:
    """The pictures of one frame (module docstring): ``depth``, ``occupancy_slice``, ``mesh_view``
    ((3, H, W) float32 RGB in [0, 1]) and ``mesh`` ((V, 3) float vertices, (F, 3) int faces)."""
    near = frame.near_surface_points[frame.near_surface_valid]
    _, h, w = frame.image.shape
    fx, fy, cx, cy = (float(v) for v in frame.intrinsics)
    norm = normalised_intrinsics(fx, fy, cx, cy, w, h)
    encoded = encode_image(net, frame.image, norm, device=device)  # one encoding: the grid and the depth head
    occupancy, origin, cell = query_grid(net, encoded.features, norm,
                                         near.min(axis=0), near.max(axis=0), resolution, device=device,
                                         grid="dense")
    vertices, faces = extract_mesh(occupancy, origin, cell)
    predicted = (encoded.depth[0, 0].float().cpu().numpy() if encoded.depth is not None
                 else np.full((h, w), np.nan, np.float32))
    rendered = render_depth(vertices, faces, fx, fy, cx, cy, w, h)
    top = float(np.nanpercentile(frame.depth, 99)) if np.isfinite(frame.depth).any() else 5.0
    depth = np.concatenate([colourise(d, 0.0, top) for d in (predicted, frame.depth, rendered)], axis=2)
    row = int(np.clip(np.rint(-origin[1] / cell[1]), 0, resolution - 1))  # the cell row nearest y = 0
    top_down = occupancy[:, row, :].T[::-1]  # (Z, X): depth upward, x to the right
    scale = max(1, 128 // resolution)  # whole pixels per cell, so a 32³ grid is not a thumbnail
    top_down = np.repeat(np.repeat(top_down, scale, axis=0), scale, axis=1)
    target = 0.5 * (near.min(axis=0) + near.max(axis=0))
    rays = view_rays(orbit_eye(target, 25.0, 20.0), target, fx, w, h)
    shaded = render_flags(vertices, faces, vertices, np.ones(len(vertices), bool), rays)
    return {"depth": depth, "occupancy_slice": colourise(top_down, 0.0, 1.0, "magma"),
            "mesh_view": np.moveaxis(shaded.astype(np.float32), -1, 0), "mesh": (vertices, faces)}


class ValidationViews:
    """The ``view(writer, step, trainer)`` hook of :func:`dgs_core.train.train` that draws
    ``trainer.exp.log.images`` val frames (module docstring); the frames are read on the first call."""

    def __init__(self) -> None:
        self.frames: list[FrameSample] | None = None

    def __call__(self, writer, step: int, trainer) -> None:
        log = trainer.exp.log
        if log.images == 0:
            return
        if self.frames is None:  # object manifests (the object protocol) have no scene frames to draw
            self.frames = [] if is_object_manifest(trainer.val_manifest) else val_frames(trainer.val_manifest,
                                                                                         log.images)
        net = trainer.net
        was_training = net.training
        net.eval()
        try:
            for i, frame in enumerate(self.frames):
                views = frame_views(net, frame, log.image_grid, trainer.device)
                for name in ("depth", "occupancy_slice", "mesh_view"):
                    writer.add_image(f"val_views/{i}/{name}", views[name], step)
                vertices, faces = views["mesh"]
                if len(faces):
                    writer.add_mesh(f"val_views/{i}/mesh", vertices=torch.as_tensor(vertices[None], dtype=torch.float32),
                                    faces=torch.as_tensor(faces[None], dtype=torch.int32), global_step=step)
        finally:
            net.train(was_training)
