"""The per-frame training/test record that `prepare_*` computes and the HDF5 shards store.

One place defines what a frame *is*; `pipeline.frames` fills it and `pipeline.shards` writes and
reads it. Arrays are in the frame's **camera coordinates** (OpenCV: x right, y down, z forward,
metres) unless a field says otherwise. Occupancy labels follow SPEC §1: 1 = inward/occupied,
0 = outward/free (the side that faces this camera).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FrameSample:
    """Everything stored for one frame resampled to the virtual camera (H×W pixels).

    Provenance:
        dataset: "scannet" or "matterport".
        scene_id: ScanNet scene (``scene0000_00``) or Matterport house id.
        frame_index: index of the frame in its source (``.sens`` frame or ``.conf`` scan line).
        source_file: path of the file the image came from, relative to the dataset root.
        split: "train", "val" or "test".
    Images:
        image: (3, H, W) uint8 RGB.
        depth: (H, W) float32 metres, sensor depth, NaN where the sensor has no reading.
        rendered_depth: (H, W) float32 metres, z of the first mesh hit, NaN where no hit.
        amodal_depth: (H, W) float32 metres, SPEC §4, NaN where no hit.
        intrinsics: (4,) float32 fx, fy, cx, cy in pixels of the virtual image.
        world_to_camera: (4, 4) float32, maps world points to this camera frame.
    Point sets (camera frame, metres):
        near_surface_points: (K, 3) float32; near_surface_labels: (K,) uint8, 1 = inward.
        near_surface_valid: (K,) bool, False for padding when the frame could not fill its quota.
        non_surface_points: (M, 3) float32; non_surface_valid: (M,) bool, likewise.
    Visibility:
        visible_faces: (n,) int32 sorted indices of the mesh faces visible in this frame (SPEC §4).
    Provenance of the amodal depth:
        structure_source: "labels" or "inferred", where the structure faces bounding ``amodal_depth``
            came from (SPEC §4.9); "unknown" for frames read from schema-1 shards.
    On-surface samples (SPEC §4.7; None in rows of shards older than these fields, see
    ``pipeline.shards.SURFACE_SAMPLES``):
        near_surface_offsets: (K,) float32 metres, the offset d of each near-surface point along its
            camera-facing normal (point = surface + d·n; d ≥ 0 free, d < 0 occupied).
        surface_points: (S, 3) float32 points on visible faces, camera frame, metres.
        surface_normals: (S, 3) float32 unit normals there, turned toward the camera.
        surface_colors: (S, 3) uint8 RGB, the mesh's vertex colours interpolated at the sample.
        surface_colored: False when the mesh has no vertex colours (``surface_colors`` are then 0).
    """

    dataset: str
    scene_id: str
    frame_index: int
    source_file: str
    split: str
    image: np.ndarray
    depth: np.ndarray
    rendered_depth: np.ndarray
    amodal_depth: np.ndarray
    intrinsics: np.ndarray
    world_to_camera: np.ndarray
    near_surface_points: np.ndarray
    near_surface_labels: np.ndarray
    near_surface_valid: np.ndarray
    non_surface_points: np.ndarray
    non_surface_valid: np.ndarray
    visible_faces: np.ndarray
    structure_source: str = "unknown"
    near_surface_offsets: np.ndarray | None = None
    surface_points: np.ndarray | None = None
    surface_normals: np.ndarray | None = None
    surface_colors: np.ndarray | None = None
    surface_colored: bool | None = None

    @property
    def visible_face_count(self) -> int:
        """Number of mesh faces visible in this frame."""
        return int(self.visible_faces.shape[0])
