"""Vertex colours of predicted meshes from a model with a colour head (``model.color: true``).

The colour head (SPEC §3.10) predicts RGB in [0, 1] per camera-frame point; a mesh extracted from the
model's field is coloured by querying the head at its vertices. ``predict`` writes such meshes next to
the grids of a method folder, in ``<out>/colored_meshes/<dataset>/<scene_id>/<frame:06d>.ply``
(outside the ``<out>/<dataset>/`` tree the benchmark reads, so a frame keeps exactly one prediction
file, docs/benchmark.md); tools that mesh a photo call :func:`vertex_colors` themselves.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from pipeline.formats.ply import write_ply

COLORED_MESHES = "colored_meshes"
"""Sub-folder of a method folder holding the vertex-coloured meshes (not predictions)."""


def vertex_colors(net: torch.nn.Module, features: list[torch.Tensor], vertices: np.ndarray,
                  intrinsics: Sequence[float] | torch.Tensor, batch_points: int = 1 << 15) -> np.ndarray:
    """RGB of the colour head at mesh vertices.

    Args:
        net: a DGSNet with a colour head (``model.color: true``), in eval mode.
        features: ``net.encode(images, intrinsics).features`` of ONE image (``dgs_core.infer.encode_image``).
        vertices: (V, 3) camera frame (OpenCV), metres.
        intrinsics: normalised ``(a_u, a_v, c_u, c_v)`` (4,) or (1, 4) (``dgs_core.camera``).
        batch_points: vertices per network call.
    Returns:
        (V, 3) uint8 RGB (the head's [0, 1] output × 255, rounded).
    """
    if getattr(net, "color_head", None) is None:
        raise ValueError("vertex_colors: the model has no colour head; train it with model.color: true")
    device = next(net.parameters()).device
    k = torch.as_tensor(intrinsics, dtype=torch.float32, device=device).reshape(1, 4)
    vertices = np.asarray(vertices, dtype=np.float32).reshape(-1, 3)
    out = np.zeros((len(vertices), 3), dtype=np.uint8)
    with torch.inference_mode():
        for start in range(0, len(vertices), batch_points):
            points = torch.from_numpy(vertices[start:start + batch_points])[None].to(device)
            _, rgb = net.query_color(features, points, k)
            out[start:start + len(points[0])] = (rgb[0].float().clamp(0, 1) * 255).round().byte().cpu().numpy()
    return out


def colored_mesh_path(out_dir: str | os.PathLike, dataset: str, scene_id: str, frame_index: int) -> Path:
    """``<out_dir>/colored_meshes/<dataset>/<scene_id>/<frame_index:06d>.ply``."""
    return Path(out_dir) / COLORED_MESHES / dataset / scene_id / f"{int(frame_index):06d}.ply"


def write_colored_mesh(path: Path, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> Path:
    """Binary PLY (atomic) with uchar ``red``, ``green``, ``blue`` per vertex; camera frame, metres."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_ply(path, vertices, faces, vertex_data={"red": colors[:, 0], "green": colors[:, 1], "blue": colors[:, 2]})
    return path
