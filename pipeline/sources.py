"""Scene sources for the prepare runner: a checked mesh, the frames to consider, and their raw data.

``scannet_scene`` / ``matterport_scene`` return a :class:`SceneSource`: the mesh (validated, with
degenerate faces dropped and counted), the frame indices chosen by :mod:`pipeline.select`, and an
iterator over :class:`pipeline.frames.RawFrame` (or :class:`SkippedFrame` for frames that cannot be
used without computing anything: invalid pose, corrupt payload). Colour JPEGs are decoded with
libjpeg's draft mode at the smallest scale that still covers the virtual camera's field of view at
full virtual resolution; intrinsics are scaled to the decoded size.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from pipeline.formats import matterport as mp
from pipeline.formats import scannet as sn
from pipeline.formats.errors import FormatError, require_file
from pipeline.formats.images import decode_color, image_size
from pipeline.formats.sens import SensReader
from pipeline.frames import RawFrame, SkippedFrame
from pipeline.geometry.camera import pose_problem, scale_intrinsics
from pipeline.select import select_matterport_cameras, select_scannet_frames, valid_pose_mask


@dataclass
class SceneSource:
    """One scene to prepare.

    vertices (V, 3) float32 world metres; faces (F', 3) int32 after dropping degenerate faces;
    face_labels (F',) NYU40 ids or None; face_ids (F',) int64 original face index of each kept face
    (visible-face sets are stored in ORIGINAL mesh face ids); dropped_faces: how many were dropped.
    frames: the frame indices considered, in order; read_frames(): RawFrame | SkippedFrame per index.
    vertex_colors: (V, 3) uint8 RGB of the mesh file, or None when it stores none.
    """

    dataset: str
    scene_id: str
    split: str
    mesh_file: str
    vertices: np.ndarray
    faces: np.ndarray
    face_labels: np.ndarray | None
    face_ids: np.ndarray
    dropped_faces: int
    frames: np.ndarray
    read_frames: Callable[[], Iterator[RawFrame | SkippedFrame]] = field(repr=False)
    vertex_colors: np.ndarray | None = field(default=None, repr=False)


def check_mesh(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray,
               face_labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Refuse NaN/inf vertices (FormatError naming ``path``); drop degenerate faces.

    A face is degenerate when two of its vertex indices repeat or its area is 0 (collinear). Returns
    (faces kept (F', 3) int32, their labels or None, original indices (F',) int64).
    """
    v = np.asarray(vertices, dtype=np.float64)
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        raise FormatError(path, f"{int(bad.sum())} of {len(v)} vertices are NaN/inf (first at vertex "
                          f"{int(np.flatnonzero(bad)[0])}).", field="vertex",
                          hint="repair the mesh (or exclude this scene from the split list).")
    f = np.asarray(faces, dtype=np.int64)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise FormatError(path, f"face vertex indices must lie in [0, {len(v)}), found "
                          f"[{f.min()}, {f.max()}].", field="face", hint="the mesh file is corrupt; re-download it.")
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area2 = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2]) & (area2 > 0)
    ids = np.flatnonzero(keep).astype(np.int64)
    if ids.size == 0:  # nothing to render or sample: every frame would be skipped as empty_view
        raise FormatError(path, f"the mesh has no face of positive area ({len(f)} faces, all "
                          "degenerate or none).", field="face",
                          hint="the mesh file is corrupt or empty; re-download it.")
    labels = None if face_labels is None else np.asarray(face_labels)[keep]
    return f[keep].astype(np.int32), labels, ids


def color_draft(color_size: tuple[int, int], k: np.ndarray, width: int, height: int,
                focal: float) -> tuple[int, int]:
    """(W, H) to ask libjpeg for so the virtual crop keeps ≥ the virtual resolution.

    The virtual view covers width·fx/focal source pixels; decoding at scale s leaves s times that,
    so s ≥ focal/fx, i.e. a decoded width ≥ W_src·focal/fx (likewise for y).
    """
    w, h = color_size
    return (min(w, math.ceil(w * focal / float(k[0, 0]))), min(h, math.ceil(h * focal / float(k[1, 1]))))


def scannet_scene(root: str | os.PathLike, scene_id: str, split: str, *, stride: int = 1,
                  test_frames: int = 10, width: int = 256, height: int = 192,
                  focal: float = 230.4) -> SceneSource:
    """Mesh + considered frames of a ScanNet scene (labels required unless ``split == "test"``)."""
    root = Path(root)
    paths = sn.scene_paths(root, scene_id)
    mesh = sn.read_scene_mesh(paths, with_labels=split != "test")
    if split != "test" and mesh.face_labels is None:
        raise FormatError(paths.labels_mesh, f"a {split} scene needs per-vertex labels (amodal depth "
                          f"uses the structure classes), found none.", hint="download the labels ply.")
    faces, labels, ids = check_mesh(paths.mesh, mesh.vertices, mesh.faces, mesh.face_labels)
    with SensReader(paths.sens) as r:
        valid = valid_pose_mask(r.poses)
    if valid.size == 0 or (split == "test" and not valid.any()):
        raise FormatError(paths.sens, f"no frame to prepare: the file holds {valid.size} frames, "
                          f"{int(valid.sum())} with a valid pose.", field="num_frames",
                          hint="the scan is empty or its tracking failed throughout; re-export it "
                          "or remove the scene from the split list.")
    frames = select_scannet_frames(valid, split, stride=stride, test_frames=test_frames)
    rel = os.path.relpath(paths.sens, root)

    def read() -> Iterator[RawFrame | SkippedFrame]:
        with SensReader(paths.sens) as r:
            hdr = r.header
            k_c, k_d = hdr.color_intrinsics[:3, :3], hdr.depth_intrinsics[:3, :3]
            draft = color_draft(hdr.color_size, k_c, width, height, focal)
            for i in frames:
                i = int(i)
                if not valid[i]:  # no need to decode a frame that cannot be used
                    yield SkippedFrame(i, rel, "invalid_pose", pose_problem(r.poses[i]) or "")
                    continue
                try:
                    fr = r.read_frame(i, color_draft=draft)
                except FormatError as exc:
                    yield SkippedFrame(i, rel, "corrupt_payload", exc.detail)
                    continue
                yield RawFrame(i, rel, fr.camera_to_world, fr.color,
                               scale_intrinsics(k_c, hdr.color_size, fr.color.shape), fr.depth,
                               scale_intrinsics(k_d, hdr.depth_size, fr.depth.shape))

    return SceneSource("scannet", scene_id, split, str(paths.mesh), mesh.vertices, faces, labels,
                       ids, len(mesh.faces) - len(faces), frames, read, mesh.vertex_colors)


def _matterport_images(color_path: Path, depth_path: Path, k: np.ndarray,
                       camera: tuple[int, int, float]) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
    """(colour at its draft scale, the JPEG's full (W, H), depth metres) of one Matterport camera.

    FormatError naming the missing or bad file; the depth PNG must have the colour image's full
    size, since both use the scan's one intrinsics matrix.
    """
    require_file(color_path, "a Matterport colour JPEG", "download the house's undistorted_color_images again.")
    data = color_path.read_bytes()
    size = image_size(data, path=color_path)  # header only, to pick the draft scale
    color = decode_color(data, path=color_path, draft=color_draft(size, k, *camera), expected="JPEG")
    depth = mp.read_depth_png(depth_path)
    if depth.shape[::-1] != size:
        raise FormatError(depth_path, f"depth image is {depth.shape[1]}x{depth.shape[0]}, its colour "
                          f"image {color_path.name} is {size[0]}x{size[1]}; both use one intrinsics "
                          "matrix.", field="size", hint="the house's images are mixed up; unzip them again.")
    return color, size, depth


def matterport_scene(root: str | os.PathLike, house_id: str, split: str = "test", *,
                     n_frames: int = 10, max_pitch_deg: float = 15.0, width: int = 256,
                     height: int = 192, focal: float = 230.4) -> SceneSource:
    """Mesh + the first ``n_frames`` non-upward cameras of a Matterport house (SPEC §5)."""
    root = Path(root)
    house = mp.read_house(root, house_id)
    faces, labels, ids = check_mesh(house.paths.mesh, house.mesh.vertices, house.mesh.faces,
                                    house.mesh.face_labels)
    cams = house.cameras
    chosen = select_matterport_cameras([c.camera_to_world for c in cams], n_frames,
                                       max_pitch_deg=max_pitch_deg)
    if chosen.size == 0:
        raise FormatError(house.paths.conf, f"no camera to prepare: none of its {len(cams)} cameras "
                          f"has a valid pose pitched at most {max_pitch_deg:g} degrees up.",
                          field="scan", hint="the camera file is empty or corrupt; download the house again.")

    def read() -> Iterator[RawFrame | SkippedFrame]:
        for pos in chosen:
            cam = cams[int(pos)]
            color_path, depth_path = house.paths.color_path(cam), house.paths.depth_path(cam)
            rel = os.path.relpath(color_path, root)
            k = np.asarray(cam.intrinsics, dtype=np.float64)
            try:
                color, size, depth = _matterport_images(color_path, depth_path, k, (width, height, focal))
            except FormatError as exc:  # names the file that is missing or bad, colour or depth
                yield SkippedFrame(cam.index, rel, "corrupt_payload",
                                   f"{os.path.relpath(exc.path, root)}: {exc.detail}")
                continue
            yield RawFrame(cam.index, rel, cam.camera_to_world, color, scale_intrinsics(k, size, color.shape),
                           depth, k.copy())  # Matterport depth and colour share intrinsics and size

    frames = np.asarray([cams[int(p)].index for p in chosen], dtype=np.int64)
    return SceneSource("matterport", house_id, split, str(house.paths.mesh), house.mesh.vertices,
                       faces, labels, ids, len(house.mesh.faces) - len(faces), frames, read,
                       house.mesh.vertex_colors)
