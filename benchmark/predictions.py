"""Read one frame's prediction from a method folder and turn it into a camera-frame mesh.

A method folder holds ``<dataset>/<scene_id>/<frame_index:06d>.<ext>`` per test frame, in exactly
one of these forms (docs/benchmark.md):

- ``.npz`` — a field grid written by ``dgs_core.infer``: ``field`` ("occupancy" or "sdf"; absent =
  occupancy), ``level`` (absent = the field's default, 0.5 or 0), the values under the field's name
  (X, Y, Z; ``occupancy`` in [0, 1], 1 = occupied, or ``sdf`` in metres, > 0 free; SPEC §1; axis 0 =
  camera x), ``origin`` (3,) metres = centre of cell (0, 0, 0), ``cell`` (3,) metres; meshed by
  marching cubes at the level (:func:`pipeline.geometry.isosurface.extract_mesh`). An SDF grid
  may also hold ``trace_depth`` (H, W), the sphere-traced z-depth (:func:`traced_depth`).
- ``.ply`` — a triangle mesh, camera frame (OpenCV), metres.
- ``.npy`` — (H, W) float z-depth in metres at the virtual camera (0 / NaN = no prediction), or
- ``.png`` — the same as a 16-bit PNG in millimetres (0 = none); both meshed by
  :func:`benchmark.depth_mesh.mesh_from_depth` (SPEC §5, depth-only methods).

An optional ``method.json`` {"name", "kind", "source"} describes the folder; it is informational.

Prediction files are untrusted input: ``.npy``/``.npz`` are loaded with ``allow_pickle=False``, and a
file that exists but cannot be read as its kind (random bytes, a pickled object, a corrupt PLY, a
wrong shape) raises :class:`UnreadablePrediction` naming the file, which the evaluate stage scores
as a NaN row with reason ``unreadable_prediction`` while the run goes on. Non-finite vertices of a
mesh are dropped with their faces and counted (:func:`drop_nonfinite`). Sub-folders other than
``<dataset>`` (e.g. ``colored_meshes/`` of a colour model) are not predictions.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from benchmark.depth_mesh import mesh_from_depth
from pipeline.errors import InputError, UserError
from pipeline.geometry.isosurface import FIELDS, extract_mesh
from pipeline.formats.images import decode_png16
from pipeline.formats.ply import read_ply
from pipeline.testset import EvalFrame

#: file extension -> kind reported by :func:`load_prediction`
KINDS = {".npz": "grid", ".ply": "mesh", ".npy": "depth", ".png": "depth"}
MM_PER_M = 1000.0


UNREADABLE = "unreadable_prediction"
"""Reason of the NaN rows of a frame whose prediction file cannot be read."""


class MissingPrediction(FileNotFoundError):
    """The method folder has no prediction file for a frame (scored as a NaN row, not a crash)."""


class UnreadablePrediction(UserError, ValueError):
    """A prediction file exists but is not a readable prediction of its kind; names the file."""


# what a failed read of an untrusted file raises: numpy (ValueError, EOFError, zipfile), PLY/PNG
# readers (FormatError, a ValueError), the OS
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)


def prediction_stem(method_dir: str | os.PathLike, dataset: str, scene_id: str,
                    frame_index: int) -> Path:
    """``<method_dir>/<dataset>/<scene_id>/<frame_index:06d>`` (no extension)."""
    return Path(method_dir) / dataset / scene_id / f"{int(frame_index):06d}"


def find_prediction(method_dir: str | os.PathLike, dataset: str, scene_id: str,
                    frame_index: int) -> Path:
    """The single prediction file of a frame.

    Raises:
        MissingPrediction: no file with a known extension exists.
        ValueError: more than one exists (the folder is ambiguous).
    """
    stem = prediction_stem(method_dir, dataset, scene_id, frame_index)
    found = [stem.with_suffix(ext) for ext in KINDS if stem.with_suffix(ext).is_file()]
    if not found:
        raise MissingPrediction(f"no prediction for {dataset}/{scene_id} frame {frame_index}: "
                                f"expected {stem}.{{{','.join(e[1:] for e in KINDS)}}}")
    if len(found) > 1:
        raise InputError(f"{stem}: several predictions for one frame ({[p.name for p in found]}); "
                         f"keep exactly one of {list(KINDS)} per frame.")
    return found[0]


def load_prediction(method_dir: str | os.PathLike, frame: EvalFrame) -> tuple[np.ndarray, np.ndarray, str]:
    """The predicted mesh of one test frame.

    Args:
        method_dir: the method folder (see the module docstring).
        frame: the test frame (:mod:`pipeline.testset`); its identity names the file, and for depth
            maps its ``intrinsics`` and image size are the camera the map is meshed with.
    Returns:
        vertices: (V, 3) float64 metres, camera frame (OpenCV); faces: (F, 3) int64;
        kind: "grid", "mesh" or "depth". The mesh may be empty (no surface predicted).
    Raises:
        MissingPrediction: the frame has no prediction file.
        UnreadablePrediction: the file cannot be read as its kind (names the file, what was
            expected and found).
    """
    ref = frame.ref
    path = find_prediction(method_dir, ref.dataset, ref.scene_id, ref.frame_index)
    kind = KINDS[path.suffix]
    try:
        if kind == "grid":
            vertices, faces = _grid_mesh(path)
        elif kind == "mesh":
            mesh = read_ply(path)
            vertices, faces = mesh.vertices, mesh.faces
        else:
            vertices, faces = _depth_mesh(path, frame)
    except UnreadablePrediction:
        raise
    except _READ_ERRORS as exc:
        raise UnreadablePrediction(f"{path}: not a readable {kind} prediction ({type(exc).__name__}: "
                                   f"{exc}); expected the format of docs/benchmark.md.") from exc
    return np.asarray(vertices, np.float64), np.asarray(faces, np.int64), kind


def _numeric(path: Path, name: str, value: np.ndarray, ndim: int) -> np.ndarray:
    """``value`` if it is a real-valued array of ``ndim`` dimensions, else UnreadablePrediction."""
    if not (isinstance(value, np.ndarray) and value.ndim == ndim
            and (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer))):
        raise UnreadablePrediction(f"{path}: {name} must be a {ndim}-D real array, found "
                                   f"{type(value).__name__} {getattr(value, 'dtype', '')} shape "
                                   f"{np.shape(value)}.")
    return value


def _depth_mesh(path: Path, frame: EvalFrame) -> tuple[np.ndarray, np.ndarray]:
    depth = np.load(path, allow_pickle=False) if path.suffix == ".npy" else _png_depth(path)
    depth = _numeric(path, "depth map", depth, 2)
    want = frame.image_size
    if np.shape(depth) != want:
        raise UnreadablePrediction(f"{path}: depth map has shape {np.shape(depth)}, the frame's virtual "
                                   f"camera is {want} (H, W); resample it to the test resolution.")
    fx, fy, cx, cy = (float(v) for v in np.asarray(frame.intrinsics).ravel()[:4])
    return compact(*mesh_from_depth(depth, fx, fy, cx, cy))


def read_grid(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str, float]:
    """A grid file's values (X, Y, Z) float32, origin (3,), cell (3,) float64 metres, field and level
    (module docstring). Raises UnreadablePrediction naming the file when it is not such a grid."""
    with np.load(path, allow_pickle=False) as data:
        field = str(data["field"]) if "field" in data.files else "occupancy"
        if field not in FIELDS:
            raise UnreadablePrediction(f"{path}: field {field!r} is unknown; expected one of {list(FIELDS)}.")
        missing = [k for k in (field, "origin", "cell") if k not in data.files]
        if missing:
            raise UnreadablePrediction(f"{path}: {field} grid lacks {missing} (found {data.files}); "
                                       f"expected {field} (X, Y, Z), origin (3,), cell (3,).")
        values = _numeric(path, field, data[field], 3).astype(np.float32)
        level = float(data["level"]) if "level" in data.files else FIELDS[field]
        origin, cell = (_numeric(path, k, data[k], 1).astype(np.float64) for k in ("origin", "cell"))
    if origin.shape != (3,) or cell.shape != (3,) or not (np.isfinite(origin).all() and np.isfinite(cell).all()):
        raise UnreadablePrediction(f"{path}: origin and cell must be 3 finite numbers each, found "
                                   f"{origin.tolist()} and {cell.tolist()}.")
    if not np.isfinite(level):
        raise UnreadablePrediction(f"{path}: level must be a finite number, found {level}.")
    return values, origin, cell, field, level


def traced_depth(method_dir: str | os.PathLike, frame: EvalFrame) -> np.ndarray | None:
    """The sphere-traced (H, W) z-depth in metres (NaN = miss) stored in the frame's grid file, or
    None when the prediction is not a grid or holds none (then the mesh's depth is rendered).

    Raises MissingPrediction (no file) or UnreadablePrediction (names the file) like
    :func:`load_prediction`."""
    ref = frame.ref
    path = find_prediction(method_dir, ref.dataset, ref.scene_id, ref.frame_index)
    if KINDS[path.suffix] != "grid":
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if "trace_depth" not in data.files:
                return None
            depth = _numeric(path, "trace_depth", data["trace_depth"], 2).astype(np.float64)
    except UnreadablePrediction:
        raise
    except _READ_ERRORS as exc:
        raise UnreadablePrediction(f"{path}: not a readable grid prediction ({type(exc).__name__}: {exc}).") from exc
    if depth.shape != frame.image_size:
        raise UnreadablePrediction(f"{path}: trace_depth has shape {depth.shape}, the frame's virtual camera is "
                                   f"{frame.image_size} (H, W); predict it again at the test resolution.")
    return depth


def _grid_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    values, origin, cell, field, level = read_grid(path)
    return extract_mesh(values, origin, cell, level=level, field=field)


def drop_nonfinite(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Drop non-finite (NaN/inf) vertices and every face that uses one.

    Args:
        vertices: (V, 3) float, camera frame, metres; faces: (F, 3) int indexing them.
    Returns:
        (V', 3) float64 vertices used by the remaining faces, (F', 3) int64 renumbered faces, and the
        number of non-finite vertices that were found (0 = nothing dropped).
    """
    vertices = np.asarray(vertices, np.float64)
    bad = ~np.isfinite(vertices).all(axis=1)
    if not bad.any():
        return vertices, np.asarray(faces, np.int64), 0
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    return (*compact(vertices, faces[~bad[faces].any(axis=1)]), int(bad.sum()))


def _png_depth(path: Path) -> np.ndarray:
    """(H, W) float32 metres from a 16-bit millimetre PNG; 0 stays 0 (= no prediction)."""
    return decode_png16(path.read_bytes(), path=path).astype(np.float32) / MM_PER_M


def compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop vertices no face uses (e.g. the NaN vertices of depth holes) and renumber the faces.

    Args:
        vertices: (V, 3) float; faces: (F, 3) int.
    Returns:
        (V', 3) float64 used vertices in their original order, (F, 3) int64 renumbered faces.
    """
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    used, inverse = np.unique(faces, return_inverse=True)
    return np.asarray(vertices, np.float64)[used], inverse.reshape(-1, 3).astype(np.int64)
