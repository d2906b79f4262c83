"""The ground-truth geometry of a prepared frame: its scene mesh and visible mesh (SPEC §4, §5).

Inference (the 128³ grid spans the camera-space box of the visible mesh) and evaluation (the
reference surface) both need the mesh a frame sees. A shard stores only the visible-face ids in the
*original* face order of the scene mesh file, so the mesh is re-read from the dataset root through
the same readers the prepare stage uses, and cached per scene: a test scene contributes ten frames.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from pipeline.datasets import get_dataset
from pipeline.errors import InputError
from pipeline.formats.ply import read_ply


@functools.lru_cache(maxsize=4)
def _cached_mesh(dataset: str, root: str, scene_id: str) -> tuple[np.ndarray, np.ndarray]:
    spec = get_dataset(dataset)
    mesh = read_ply(spec.mesh_path(Path(root), spec.check_id(scene_id)))  # geometry only: labels are not needed to score or bound a frame
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    vertices.flags.writeable = faces.flags.writeable = False  # shared by every caller of the cache
    return vertices, faces


def scene_mesh(dataset: str, root: str | os.PathLike, scene_id: str) -> tuple[np.ndarray, np.ndarray]:
    """The full mesh of a ScanNet scene (``_vh_clean_2.ply``) or Matterport house (segmentation ply).

    Returns (V, 3) float64 world metres and (F, 3) int64 vertex indices in the file's face order
    (the order visible-face ids refer to). Read-only arrays, cached for the last few scenes.
    """
    return _cached_mesh(dataset, str(Path(root)), scene_id)


def visible_mesh(dataset: str, root: str | os.PathLike, scene_id: str, visible_faces: np.ndarray,
                 world_to_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ground-truth visible mesh of one frame, in that frame's camera.

    Args:
        visible_faces: (n,) int face ids of the scene mesh (a shard's ``visible_faces`` row).
        world_to_camera: (4, 4) world → OpenCV camera.
    Returns:
        vertices (V', 3) float64 metres, camera frame, holding only the vertices the faces use, and
        faces (n, 3) int64 indexing them.
    Raises:
        ValueError naming the scene when a face id is outside the mesh (the shard was prepared from
        another version of the mesh).
    """
    vertices, faces = scene_mesh(dataset, root, scene_id)
    ids = np.asarray(visible_faces, dtype=np.int64).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= len(faces)):
        raise InputError(f"ground truth: {dataset} scene {scene_id} under {root} has {len(faces)} faces, "
                         f"but the frame lists face ids up to {int(ids.max())}; the shard was prepared "
                         f"from a different mesh — re-prepare it from this dataset root")
    used, compact = np.unique(faces[ids], return_inverse=True)
    t = np.asarray(world_to_camera, dtype=np.float64)
    cam = vertices[used] @ t[:3, :3].T + t[:3, 3]
    return cam, compact.reshape(-1, 3).astype(np.int64)
