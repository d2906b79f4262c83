"""The frames of a prepared test set: walk a test manifest and read what inference and scoring need.

One place for "which frames does a test manifest hold, and what is a test frame": ``list_test_frames``
lists the usable (``status == "ok"``) frames of a merged manifest as :class:`FrameRef`, in manifest
order; ``read_test_frame`` reads one frame's shard row and its ground-truth visible mesh (re-read
from the dataset root, :mod:`pipeline.ground_truth`) into a :class:`EvalFrame`. Inference
(``dgs_core.infer``), evaluation and figures (``benchmark``) and the speed benchmarks all use it.

Arrays are in the frame's camera (OpenCV: x right, y down, z forward, metres) unless a field says
otherwise; images are at the virtual camera of the prepare stage (SPEC §1).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.datasets import get_dataset
from pipeline.errors import InputError
from pipeline.ground_truth import visible_mesh
from pipeline.manifest import read_manifest
from pipeline.shards import ShardReader

SHARD_FIELDS = ("image", "depth", "rendered_depth", "amodal_depth", "intrinsics", "world_to_camera",
                "visible_faces", "structure_source")
"""The shard fields a :class:`EvalFrame` carries (``visible_faces`` selects the ground truth)."""


@dataclass(frozen=True)
class FrameRef:
    """Where a test frame lives: its identity, its shard (absolute path) and row, its dataset root."""

    dataset: str
    scene_id: str
    frame_index: int
    shard: Path
    row: int
    root: Path

    @property
    def name(self) -> str:
        """``<dataset>/<scene_id>/<frame_index:06d>``, the frame's name in logs and file names."""
        return f"{self.dataset}/{self.scene_id}/{self.frame_index:06d}"


@dataclass
class EvalFrame:
    """One test frame as inference and scoring see it.

    image: (3, H, W) uint8 RGB. depth: (H, W) float32 sensor depth, metres, NaN holes.
    rendered_depth: (H, W) float32 first mesh hit, metres (the depth reference), NaN = none.
    amodal_depth: (H, W) float32, metres (the paper protocol's scope, SPEC §4), NaN = none.
    intrinsics: (4,) float32 fx, fy, cx, cy in pixels of the image.
    world_to_camera, camera_to_world: (4, 4) float64.
    gt_vertices: (V, 3) float64 metres, camera frame, the ground-truth visible mesh's vertices;
    gt_faces: (F, 3) int64 indexing them.
    structure_source: "labels" | "inferred" (what bounds ``amodal_depth``, SPEC §4.9) or "unknown".
    """

    ref: FrameRef
    image: np.ndarray
    depth: np.ndarray
    rendered_depth: np.ndarray
    amodal_depth: np.ndarray
    intrinsics: np.ndarray
    world_to_camera: np.ndarray
    camera_to_world: np.ndarray
    gt_vertices: np.ndarray
    gt_faces: np.ndarray
    structure_source: str = "unknown"

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) pixels of the virtual camera."""
        return tuple(self.rendered_depth.shape)

    def gt_box(self) -> tuple[np.ndarray, np.ndarray]:
        """(3,) min and max, camera frame, metres, of the ground-truth visible mesh (the grid box)."""
        if len(self.gt_vertices) == 0:
            raise InputError(f"{self.ref.name} ({self.ref.shard} row {self.ref.row}) has no visible "
                             f"faces, so no evaluation box; re-prepare the scene")
        return self.gt_vertices.min(axis=0), self.gt_vertices.max(axis=0)


def list_test_frames(manifest: str | os.PathLike, dataset: str, root: str | os.PathLike) -> list[FrameRef]:
    """The ``ok`` frames of ``dataset`` in a merged test manifest, in manifest order.

    ``root`` is that dataset's root folder (the ground-truth meshes are read from it). Raises an
    InputError (a ValueError) naming the manifest when it holds no usable frame of ``dataset`` or a
    scene id that is not one of ``dataset``'s ids (ids become folder names of predictions).
    """
    path = Path(manifest)
    spec = get_dataset(dataset)
    table = read_manifest(path)
    table = table[(table["status"] == "ok") & (table["dataset"] == dataset)]
    for scene_id in table["scene_id"].unique():
        spec.check_id(scene_id, where=str(path))
    if table.empty:
        raise InputError(f"{path}: no frame of dataset {dataset!r} with status 'ok'; check that the "
                         f"manifest is {dataset}'s prepared test manifest (and the prepare logs for "
                         f"skip reasons)")
    base = path.parent
    return [FrameRef(dataset, r.scene_id, int(r.frame_index), (base / r.shard).resolve(), int(r.row),
                     Path(root)) for r in table.itertuples()]


def read_test_frame(ref: FrameRef, reader: ShardReader | None = None) -> EvalFrame:
    """Read ``ref``'s shard row and ground-truth visible mesh.

    ``reader``: an open reader of ``ref.shard`` to reuse (callers reading many rows of one shard);
    by default the shard is opened and closed here. Raises a ValueError when the shard row holds
    another frame than the manifest says (a stale merged manifest).
    """
    own = reader is None
    reader = ShardReader(ref.shard) if own else reader
    try:
        rec = reader.read(ref.row, fields=SHARD_FIELDS + ("scene_id", "frame_index"))
    finally:
        if own:
            reader.close()
    if (rec["scene_id"], rec["frame_index"]) != (ref.scene_id, ref.frame_index):
        raise InputError(f"the manifest says {ref.shard} row {ref.row} is {ref.scene_id} frame "
                         f"{ref.frame_index}, the shard holds {rec['scene_id']} frame "
                         f"{rec['frame_index']}; re-merge the manifest (python -m pipeline.manifest merge)")
    world_to_camera = rec["world_to_camera"].astype(np.float64)
    vertices, faces = visible_mesh(ref.dataset, ref.root, ref.scene_id, rec["visible_faces"],
                                   world_to_camera)
    return EvalFrame(ref, rec["image"], rec["depth"], rec["rendered_depth"], rec["amodal_depth"],
                     rec["intrinsics"], world_to_camera, np.linalg.inv(world_to_camera), vertices, faces,
                     rec["structure_source"])
