"""ShapeNetCore v2 layout: Wavefront OBJ meshes, split lists and rendered views (SPEC §6.6).

On disk (``root`` = a ShapeNetCore v2 folder, or the synthetic objects written in its layout)::

    <root>/<synset>/<model>/models/model_normalized.obj    the mesh (ShapeNet's own file; read here)
    <root>/<synset>/{train,val,test}.lst                    model ids, one per line (Occupancy Networks' lists)
    <root>/<synset>/<model>/views/NNN.jpg                   rendered colour (this toolkit's renders)
    <root>/<synset>/<model>/views/NNN_depth.png             16-bit z-depth, DEPTH_SCALE units per cube unit, 0 = none
    <root>/<synset>/<model>/views/cameras.npz               world_mat_N (3, 4) [R|t] object → OpenCV camera,
                                                            camera_mat_N (3, 3) pixel K (OpenCV)
    <root>/metadata.yaml                                    optional {synset: {id, name}} (Occupancy Networks)

What real ShapeNetCore v2 provides is the first line (plus ``.mtl``, ``.json`` and binvox files this
reader ignores): synsets are 8-digit WordNet offsets, one folder per model. Splits and views are not
part of ShapeNet; the ``.lst`` split files follow Occupancy Networks' data layout, and the key names
of ``cameras.npz`` follow its ``img_choy2016/cameras.npz`` (their meaning here is stated above).
A real root needs those lists and views rendered for it (:mod:`pipeline.synthetic.objects` renders
any mesh of this layout) and, for occupancy labels, watertight meshes (SPEC §6.6).

The OBJ reader takes ``v`` and ``f`` records (``f`` with ``v``, ``v/vt``, ``v//vn`` or ``v/vt/vn``
corners, negative indices relative to the vertices so far, polygons fan-triangulated) and ignores
every other record (``vt``, ``vn``, ``mtllib``, ``usemtl``, ``o``, ``g``, ``s``, ``l``, comments). The
writer writes a material-free OBJ: a comment line, ``v x y z`` and ``f i j k`` (1-based).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from pipeline.atomic import atomic_open, atomic_path, write_text_atomic

from .errors import FormatError, require_file
from .images import decode_color, decode_png16, encode_jpeg, encode_png16

SYNSET_PATTERN = r"\d{8}"
"""A ShapeNet synset id: the WordNet 3.0 noun offset, zero-padded to 8 digits."""
MODEL_PATTERN = r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}"
"""A model id (ShapeNet's are hexadecimal strings): letters, digits, ``_`` and ``-`` only."""
SPLITS = ("train", "val", "test")
DEPTH_SCALE = 10000.0
"""Stored depth units per cube unit in ``NNN_depth.png`` (0.1 mm for a 1 m cube; ≤ 6.5 units deep)."""
_IGNORED = {"vt", "vn", "vp", "mtllib", "usemtl", "o", "g", "s", "l", "p", "cstype", "deg", "curv", "surf"}


def check_id(value: str, pattern: str, what: str, where: str | os.PathLike) -> str:
    """``value`` if it matches ``pattern`` in full, else FormatError naming ``where`` (ids become paths)."""
    if re.fullmatch(pattern, value) is None:
        raise FormatError(where, f"{value!r} is not a valid {what} (expected the pattern {pattern}).",
                          hint="fix or remove that entry.")
    return value


def model_dir(root: str | os.PathLike, synset: str, model: str) -> Path:
    """``<root>/<synset>/<model>`` after checking both ids."""
    return Path(root) / check_id(synset, SYNSET_PATTERN, "synset id", root) / check_id(
        model, MODEL_PATTERN, "model id", Path(root) / synset)


def mesh_path(root: str | os.PathLike, synset: str, model: str) -> Path:
    """``<root>/<synset>/<model>/models/model_normalized.obj``."""
    return model_dir(root, synset, model) / "models" / "model_normalized.obj"


def read_obj(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 and triangles (F, 3) int64 (0-based) of a Wavefront OBJ (module docstring)."""
    require_file(path, "a Wavefront OBJ mesh", "check the ShapeNet root and the model id")
    vertices: list[list[float]] = []
    faces: list[list[int]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            words = line.split()
            if not words or words[0].startswith("#") or words[0] in _IGNORED:
                continue
            if words[0] == "v" and len(words) >= 4:
                vertices.append(_floats(words[1:4], path, number))
            elif words[0] == "f" and len(words) >= 4:
                corners = [_index(w, len(vertices), path, number) for w in words[1:]]
                faces += [[corners[0], corners[k], corners[k + 1]] for k in range(1, len(corners) - 1)]
            else:
                raise FormatError(path, f"line {number}: unexpected OBJ record {line.strip()[:60]!r}.",
                                  hint="expected v/f records (vt, vn, o, g, s, usemtl, mtllib are ignored).")
    if not faces:
        raise FormatError(path, "no face records (f) found.", hint="the OBJ holds no mesh; re-export it.")
    return np.asarray(vertices, dtype=np.float64).reshape(-1, 3), np.asarray(faces, dtype=np.int64)


def _floats(words: list[str], path, number: int) -> list[float]:
    try:
        values = [float(w) for w in words]
    except ValueError:
        raise FormatError(path, f"line {number}: vertex coordinates {words} are not numbers.") from None
    if not np.all(np.isfinite(values)):
        raise FormatError(path, f"line {number}: non-finite vertex coordinates {words}.")
    return values


def _index(word: str, n_vertices: int, path, number: int) -> int:
    """0-based vertex index of one face corner ``v[/vt[/vn]]`` (negative = relative to the end)."""
    try:
        i = int(word.split("/")[0])
    except ValueError:
        raise FormatError(path, f"line {number}: face corner {word!r} has no vertex index.") from None
    k = i - 1 if i > 0 else n_vertices + i
    if i == 0 or not 0 <= k < n_vertices:
        raise FormatError(path, f"line {number}: face corner {word!r} refers to vertex {i}, but only "
                          f"{n_vertices} vertices precede it.", hint="the OBJ is truncated or corrupt.")
    return k


def write_obj(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, comment: str = "") -> Path:
    """Write a material-free OBJ atomically (module docstring); coordinates with 7 decimals."""
    v = np.asarray(vertices, dtype=np.float64)
    fc = np.asarray(faces, dtype=np.int64) + 1
    lines = [f"# {comment}\n" if comment else ""]
    lines += [f"v {x:.7f} {y:.7f} {z:.7f}\n" for x, y, z in v]
    lines += [f"f {a} {b} {c}\n" for a, b, c in fc]
    with atomic_open(path, "w") as f:
        f.write("".join(lines))
    return Path(path)


def normalise_to_unit_cube(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Move and scale uniformly so that the bounding box is centred on the origin and its longest edge
    is 1: the normalised cube [−½, ½]³ of the object protocol (SPEC §5.13).

    Returns the new vertices (V, 3) and the (3,) centre and scale s of the map ``p ↦ (p − centre)/s``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    centre, scale = (lo + hi) / 2, float((hi - lo).max())
    return (v - centre) / scale, centre, scale


def list_synsets(root: str | os.PathLike) -> list[str]:
    """Synset folders of a root (sorted); folders whose names are not synset ids are ignored."""
    root = Path(root)
    if not root.is_dir():
        raise FormatError(root, "expected a ShapeNet-layout folder, found nothing.", hint="check the objects root")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and re.fullmatch(SYNSET_PATTERN, p.name))


def read_split(root: str | os.PathLike, synset: str, split: str) -> list[str]:
    """Model ids of ``<root>/<synset>/<split>.lst`` (one per line, blank lines skipped), ids checked."""
    if split not in SPLITS:
        raise ValueError(f"ShapeNet split must be one of {SPLITS}, found {split!r}")
    path = Path(root) / check_id(synset, SYNSET_PATTERN, "synset id", root) / f"{split}.lst"
    require_file(path, f"the {split} list of synset {synset}", "write the split lists (one model id per line)")
    return [check_id(w, MODEL_PATTERN, "model id", path) for w in path.read_text().split()]


def write_split(root: str | os.PathLike, synset: str, split: str, models: list[str]) -> Path:
    path = Path(root) / synset / f"{split}.lst"
    write_text_atomic(path, "".join(f"{m}\n" for m in models))
    return path


def read_metadata(root: str | os.PathLike) -> dict[str, str]:
    """Synset → category name from ``<root>/metadata.yaml`` ({} when absent)."""
    path = Path(root) / "metadata.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise FormatError(path, "expected a mapping synset → {id, name}.")
    return {str(k): str(v.get("name", "n/a")) for k, v in data.items() if isinstance(v, dict)}


def write_metadata(root: str | os.PathLike, names: dict[str, str]) -> Path:
    """Write ``<root>/metadata.yaml`` as Occupancy Networks' file has it: JSON (valid YAML) with quoted ids."""
    path = Path(root) / "metadata.yaml"
    write_text_atomic(path, json.dumps({s: {"id": s, "name": n} for s, n in sorted(names.items())}, indent=4) + "\n")
    return path


@dataclass
class View:
    """One rendered view: colour (H, W, 3) uint8; depth (H, W) float32 z, cube units, NaN = background;
    world_to_camera (4, 4) float64 object → OpenCV camera; intrinsics (4,) float64 fx, fy, cx, cy pixels."""

    color: np.ndarray
    depth: np.ndarray
    world_to_camera: np.ndarray
    intrinsics: np.ndarray


def views_dir(root: str | os.PathLike, synset: str, model: str) -> Path:
    return model_dir(root, synset, model) / "views"


def write_views(root: str | os.PathLike, synset: str, model: str, views: list[View], quality: int = 95) -> None:
    """Write ``views`` (NNN.jpg, NNN_depth.png, cameras.npz) into the model's ``views`` folder."""
    folder = views_dir(root, synset, model)
    folder.mkdir(parents=True, exist_ok=True)
    cameras = {}
    for i, view in enumerate(views):
        with atomic_open(folder / f"{i:03d}.jpg", "wb") as f:
            f.write(encode_jpeg(view.color, quality))
        stored = np.where(np.isfinite(view.depth), np.round(view.depth * DEPTH_SCALE), 0)
        with atomic_open(folder / f"{i:03d}_depth.png", "wb") as f:
            f.write(encode_png16(np.clip(stored, 0, 65535).astype(np.uint16)))
        fx, fy, cx, cy = view.intrinsics
        cameras[f"world_mat_{i}"] = np.asarray(view.world_to_camera, dtype=np.float64)[:3]
        cameras[f"camera_mat_{i}"] = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)
    with atomic_path(folder / "cameras.npz", suffix=".npz") as tmp:
        np.savez(tmp, **cameras)


def read_views(root: str | os.PathLike, synset: str, model: str) -> list[View]:
    """Every view of a model, in index order (FormatError naming the file for a missing or bad one)."""
    folder = views_dir(root, synset, model)
    cameras_file = folder / "cameras.npz"
    require_file(cameras_file, "the cameras of the model's views", "render the views (pipeline.synthetic.objects)")
    with np.load(cameras_file) as cams:
        n = sum(1 for k in cams.files if k.startswith("world_mat_"))
        views = []
        for i in range(n):
            if f"camera_mat_{i}" not in cams.files or f"world_mat_{i}" not in cams.files:
                raise FormatError(cameras_file, f"view {i} lacks world_mat_{i} or camera_mat_{i}.")
            k, rt = cams[f"camera_mat_{i}"], cams[f"world_mat_{i}"]
            if k.shape != (3, 3) or rt.shape != (3, 4):
                raise FormatError(cameras_file, f"view {i}: expected a (3, 3) camera_mat and a (3, 4) world_mat, "
                                  f"found {k.shape} and {rt.shape}.")
            color_file, depth_file = folder / f"{i:03d}.jpg", folder / f"{i:03d}_depth.png"
            require_file(color_file, f"the colour of view {i}", "re-render the views")
            require_file(depth_file, f"the depth of view {i}", "re-render the views")
            color = decode_color(color_file.read_bytes(), path=color_file)
            raw = decode_png16(depth_file.read_bytes(), path=depth_file).astype(np.float32)
            depth = np.where(raw > 0, raw / np.float32(DEPTH_SCALE), np.float32(np.nan))
            if depth.shape != color.shape[:2]:
                raise FormatError(depth_file, f"depth is {depth.shape}, colour {color.shape[:2]}; they must match.")
            world_to_camera = np.vstack([rt, [0.0, 0.0, 0.0, 1.0]])
            views.append(View(color, depth, world_to_camera, np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]])))
    if not views:
        raise FormatError(cameras_file, "holds no view (no world_mat_N key).", hint="re-render the views")
    return views
