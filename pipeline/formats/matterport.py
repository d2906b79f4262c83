"""Matterport3D (v1) house layout: mesh with per-face categories, cameras (.conf), depth PNGs.

Layout under a Matterport root (unzip each house's `<type>.zip` inside the root)::

    <root>/metadata/category_mapping.tsv                         (from the Matterport repository)
    <root>/<house>/house_segmentations/<house>.ply               faces carry category_id
    <root>/<house>/undistorted_camera_parameters/<house>.conf
    <root>/<house>/undistorted_color_images/<pano>_i<cam>_<yaw>.jpg
    <root>/<house>/undistorted_depth_images/<pano>_d<cam>_<yaw>.png   uint16, 0.25 mm per unit

Matterport cameras look down -z with +y up; poses returned here are converted to OpenCV
(x right, y down, z forward) by right-multiplying with diag(1, -1, -1, 1). World frame: the
house's own (z up), metres.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.atomic import atomic_path, write_bytes_atomic, write_text_atomic
from pipeline.errors import name_problem

from .errors import FormatError, require_file
from .images import decode_png16, encode_png16
from .ply import read_ply, write_ply
from .scannet import LabelledMesh

CATEGORY_MAPPING_COLUMNS: list[str] = [
    "index", "raw_category", "category", "count", "nyuId", "nyu40id", "eigen13id", "nyuClass",
    "nyu40class", "eigen13class", "ModelNet40", "ModelNet10", "ShapeNetCore55", "synsetoffset",
    "wnsynsetid", "wnsynsetkey", "mpcat40index", "mpcat40"]
DEPTH_SCALE = 4000.0  # PNG units per metre (0.25 mm per unit)
_MP_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])  # self-inverse
_COLOR_NAME = re.compile(r"^(?P<pano>.+)_i(?P<cam>\d+)_(?P<yaw>\d+)\.jpg$")
_HOUSE_PARTS = ("house_segmentations", "undistorted_camera_parameters")
HOUSE_ID_PATTERN = r"[A-Za-z0-9]{11}"
"""A Matterport3D house id: 11 letters and digits, e.g. ``17DRP5sb8fy``; ids become folder names."""
_HINT_DOWNLOAD = ("download the house with Matterport's download_mp.py and unzip its "
                  "house_segmentations and undistorted_* zips inside the root, or generate a "
                  "synthetic root with `dgs-synth` (see docs/formats.md).")


@dataclass(frozen=True)
class MatterportHousePaths:
    """Where one house's files live (nothing is checked here)."""

    house_id: str
    directory: Path
    mesh: Path
    conf: Path
    color_dir: Path
    depth_dir: Path

    def color_path(self, camera: MatterportCamera) -> Path:
        return self.color_dir / camera.color_file

    def depth_path(self, camera: MatterportCamera) -> Path:
        return self.depth_dir / camera.depth_file


@dataclass(frozen=True)
class MatterportCamera:
    """One `scan` line of a .conf file. `index` is its 0-based order in the file.

    intrinsics: (3, 3) float64 pixels; camera_to_world: (4, 4) float64, OpenCV camera axes.
    """

    index: int
    panorama: str
    camera: int
    yaw: int
    depth_file: str
    color_file: str
    intrinsics: np.ndarray
    camera_to_world: np.ndarray


@dataclass
class MatterportHouse:
    house_id: str
    mesh: LabelledMesh
    cameras: list[MatterportCamera]
    paths: MatterportHousePaths


def house_paths(root: str | os.PathLike, house_id: str) -> MatterportHousePaths:
    d = Path(root) / house_id
    return MatterportHousePaths(
        house_id, d, d / "house_segmentations" / f"{house_id}.ply",
        d / "undistorted_camera_parameters" / f"{house_id}.conf",
        d / "undistorted_color_images", d / "undistorted_depth_images")


def category_mapping_path(root: str | os.PathLike) -> Path:
    """`<root>/metadata/category_mapping.tsv` (where the Matterport repository keeps it)."""
    return Path(root) / "metadata" / "category_mapping.tsv"


def list_houses(root: str | os.PathLike) -> list[str]:
    """Sorted ids of the folders in `root` that hold a house (a house_segmentations or
    undistorted_camera_parameters folder).

    A house folder whose name is not a house id (:data:`HOUSE_ID_PATTERN`) is a FormatError naming
    it: house ids become folder names and command-line arguments downstream.
    """
    root = Path(root)
    if not root.is_dir():
        raise FormatError(root, "expected a Matterport3D root folder, found nothing.",
                          hint=_HINT_DOWNLOAD)
    houses = sorted(p.name for p in root.iterdir()
                    if p.is_dir() and any((p / part).is_dir() for part in _HOUSE_PARTS))
    for name in houses:
        problem = name_problem(name, HOUSE_ID_PATTERN)
        if problem:
            raise FormatError(root / name, f"a house folder must be named by its house id, found "
                              f"{problem}.", field="house_id", hint="rename the folder to its "
                              "11-character house id, or move it out of the dataset root.")
    return houses


# -- cameras ----------------------------------------------------------------------------------------
def read_conf(path: str | os.PathLike) -> list[MatterportCamera]:
    """Parse an `undistorted_camera_parameters/<house>.conf` file (format in SPEC §6)."""
    require_file(path, "a Matterport .conf camera file", _HINT_DOWNLOAD)
    cameras: list[MatterportCamera] = []
    intrinsics, n_images = None, None
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        words = line.split()
        if not words:
            continue
        cmd, args = words[0], words[1:]

        def fail(problem: str) -> FormatError:
            return FormatError(path, problem, field=f"line {lineno} ({cmd})",
                               hint="the file is corrupt; download the house again.")
        try:
            if cmd == "n_images":
                n_images = int(args[0])
            elif cmd == "intrinsics_matrix":
                if len(args) != 9:
                    raise fail(f"expected 9 numbers, found {len(args)}.")
                intrinsics = np.array([float(a) for a in args]).reshape(3, 3)
            elif cmd == "scan":
                if len(args) != 18:
                    raise fail(f"expected 2 file names and 16 numbers, found {len(args)} values.")
                if intrinsics is None:
                    raise fail("scan line before any intrinsics_matrix line.")
                m = _COLOR_NAME.match(args[1])
                if m is None:
                    raise fail(f"color file {args[1]!r} is not named <pano>_i<cam>_<yaw>.jpg.")
                bad = [p for p in map(name_problem, args[:2]) if p]
                if bad:  # the names are joined to the image folders: no path may escape them
                    raise fail(f"image file names must be plain names, found {bad[0]}.")
                pose = np.array([float(a) for a in args[2:]]).reshape(4, 4) @ _MP_TO_OPENCV
                cameras.append(MatterportCamera(
                    len(cameras), m["pano"], int(m["cam"]), int(m["yaw"]), args[0], args[1],
                    intrinsics.copy(), pose))
            elif cmd not in ("dataset", "depth_directory", "color_directory"):
                raise fail(f"unknown command {cmd!r} (expected dataset, n_images, "
                           "depth_directory, color_directory, intrinsics_matrix or scan).")
        except (ValueError, IndexError) as exc:
            if isinstance(exc, FormatError):
                raise
            raise fail(f"could not parse {line.strip()!r} ({exc}).") from exc
    if n_images is not None and n_images != len(cameras):
        raise FormatError(path, f"n_images says {n_images} but {len(cameras)} scan lines follow.",
                          field="n_images", hint="the file is truncated; download it again.")
    return cameras


def _fmt(values) -> str:
    return " ".join(repr(float(v)) for v in np.asarray(values).reshape(-1))


def write_conf(path: str | os.PathLike, cameras: list[MatterportCamera]) -> None:
    """Write cameras in Matterport's convention (poses converted back with diag(1, -1, -1, 1));
    an intrinsics_matrix line precedes each run of scans sharing intrinsics. Floats use the
    shortest exact repr, so `read_conf(write_conf(c)) == c` bit for bit."""
    lines = ["dataset matterport", f"n_images {len(cameras)}",
             "depth_directory undistorted_depth_images", "color_directory undistorted_color_images"]
    last = None
    for cam in cameras:
        if last is None or not np.array_equal(cam.intrinsics, last):
            lines.append(f"intrinsics_matrix {_fmt(cam.intrinsics)}")
            last = cam.intrinsics
        lines.append(f"scan {cam.depth_file} {cam.color_file} "
                     f"{_fmt(np.asarray(cam.camera_to_world, np.float64) @ _MP_TO_OPENCV)}")
    write_text_atomic(path, "\n".join(lines) + "\n")


# -- category mapping and mesh ----------------------------------------------------------------------
def read_category_mapping(path: str | os.PathLike) -> pd.DataFrame:
    """Read `category_mapping.tsv` (tab separated, CRLF). Needs `index` and `nyu40id` columns."""
    require_file(path, "Matterport's metadata/category_mapping.tsv", _HINT_DOWNLOAD)
    try:
        table = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"not a readable tab-separated table ({exc}).",
                          hint="download metadata/category_mapping.tsv again.") from exc
    missing = [c for c in ("index", "nyu40id") if c not in table.columns]
    if missing:
        raise FormatError(path, f"expected columns index and nyu40id, missing {missing} (found "
                          f"{list(table.columns)}).", field="header",
                          hint="use Matterport's metadata/category_mapping.tsv.")
    _mapping_columns(table, path)
    return table


def _mapping_columns(mapping: pd.DataFrame, path) -> tuple[np.ndarray, np.ndarray]:
    """(index, nyu40id) of a category mapping as int64, range-checked: index an integer >= 0,
    nyu40id an integer in 0..40 or empty (-> 0). FormatError naming ``path`` and the data row."""
    index = pd.to_numeric(mapping["index"], errors="coerce")
    nyu = pd.to_numeric(mapping["nyu40id"], errors="coerce")
    for name, col, bad in (("index", index, index.isna() | (index < 0) | (index != index.round())),
                           ("nyu40id", nyu, nyu.notna() & (~nyu.between(0, 40) | (nyu != nyu.round())))):
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            allowed = "an integer >= 0" if name == "index" else "an integer in 0..40 (or empty)"
            raise FormatError(path, f"{name} must be {allowed}, found '{mapping[name].iloc[row]}' in "
                              f"data row {row + 1}.", field=name,
                              hint="the table is corrupt; download metadata/category_mapping.tsv again.")
    return index.to_numpy(np.int64), nyu.fillna(0).to_numpy(np.int64)


def write_category_mapping(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write the mapping with `CATEGORY_MAPPING_COLUMNS` and CRLF line endings (as the real file)."""
    for r in rows:
        unknown = set(r) - set(CATEGORY_MAPPING_COLUMNS)
        if unknown:
            raise ValueError(f"write_category_mapping: unknown columns {sorted(unknown)}")
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=CATEGORY_MAPPING_COLUMNS).to_csv(
            tmp, sep="\t", index=False, lineterminator="\r\n")


def category_to_nyu40(category_ids: np.ndarray, mapping: pd.DataFrame, *, path="") -> np.ndarray:
    """(F,) category ids (mapping's `index`) -> (F,) uint8 NYU40 ids; ids <= 0 and rows whose
    nyu40id is empty -> 0 (unlabelled). FormatError for ids missing from the mapping and for a
    mapping whose nyu40id lies outside 0..40 (it would wrap around in uint8)."""
    index, nyu = _mapping_columns(mapping, path)
    lut = np.full(int(index.max(initial=0)) + 1, -1, np.int64)
    lut[index] = nyu
    lut[0] = 0 if lut[0] < 0 else lut[0]
    ids = np.where(category_ids < 0, 0, category_ids)
    out = np.where(ids < lut.size, lut[np.minimum(ids, lut.size - 1)], -1)
    if (out < 0).any():
        bad = int(ids[out < 0][0])
        raise FormatError(path, f"face category_id {bad} is not an index of the category "
                          "mapping.", field="category_id",
                          hint="use the category_mapping.tsv of the same Matterport release.")
    return out.astype(np.uint8)


def read_house_mesh(path: str | os.PathLike, mapping: pd.DataFrame) -> LabelledMesh:
    """Read `house_segmentations/<house>.ply`; face labels = NYU40 of each face's category_id
    (or face_category); vertex colors from red/green/blue when present."""
    mesh = read_ply(path)
    name = next((n for n in ("category_id", "face_category") if n in mesh.face_data), None)
    if name is None:
        raise FormatError(path, f"faces carry no category_id/face_category (found "
                          f"{sorted(mesh.face_data)}).", field="face",
                          hint="use the house_segmentations ply, not another mesh.")
    colors = None
    if all(c in mesh.vertex_data for c in ("red", "green", "blue")):
        colors = np.stack([mesh.vertex_data[c] for c in ("red", "green", "blue")], 1)
        colors = colors.astype(np.uint8)
    labels = category_to_nyu40(mesh.face_data[name].astype(np.int64), mapping, path=path)
    return LabelledMesh(mesh.vertices, mesh.faces, colors, labels)


def write_house_mesh(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray,
                     face_category_ids: np.ndarray, *, vertex_colors: np.ndarray | None = None,
                     face_segment_ids: np.ndarray | None = None,
                     face_material_ids: np.ndarray | None = None) -> None:
    """Write a house mesh as Matterport does: faces carry int material_id, segment_id and
    category_id (missing ids are written as 0); vertex colors as uchar red/green/blue."""
    n = len(faces)

    def ids(a):
        return np.zeros(n, np.int32) if a is None else np.asarray(a).astype(np.int32)
    vdata = None
    if vertex_colors is not None:
        vc = np.asarray(vertex_colors, np.uint8)
        vdata = {"red": vc[:, 0], "green": vc[:, 1], "blue": vc[:, 2]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_ply(path, vertices, faces, vertex_data=vdata,
              face_data={"material_id": ids(face_material_ids),
                         "segment_id": ids(face_segment_ids),
                         "category_id": ids(face_category_ids)})


# -- depth images and the whole house ---------------------------------------------------------------
def read_depth_png(path: str | os.PathLike) -> np.ndarray:
    """(H, W) float32 metres z-depth = uint16 / 4000; 0 -> NaN."""
    require_file(path, "a Matterport 16-bit depth PNG", _HINT_DOWNLOAD)
    raw = decode_png16(Path(path).read_bytes(), path=path)
    depth = raw.astype(np.float32) / np.float32(DEPTH_SCALE)
    depth[raw == 0] = np.nan
    return depth


def write_depth_png(path: str | os.PathLike, depth_m: np.ndarray) -> None:
    """(H, W) metres (NaN/<=0 = hole) -> uint16 round(depth * 4000) PNG; ValueError if > 16.38 m."""
    d = np.asarray(depth_m, np.float64)
    valid = np.isfinite(d) & (d > 0)
    scaled = np.rint(np.where(valid, d, 0.0) * DEPTH_SCALE)
    if scaled.max(initial=0) > 65535:
        raise ValueError(f"write_depth_png: depth {d[valid].max():.3f} m exceeds the 16-bit range "
                         f"({65535 / DEPTH_SCALE:.3f} m); clip it or mark it NaN")
    write_bytes_atomic(path, encode_png16(scaled.astype(np.uint16)))


def read_house(root: str | os.PathLike, house_id: str) -> MatterportHouse:
    """Mesh (NYU40 face labels), cameras and paths of one house."""
    paths = house_paths(root, house_id)
    if not paths.directory.is_dir():
        raise FormatError(paths.directory, f"house {house_id!r} not found.", field="house_id",
                          hint=f"houses present: {list_houses(root)[:10]}; " + _HINT_DOWNLOAD)
    mapping = read_category_mapping(category_mapping_path(root))
    return MatterportHouse(house_id, read_house_mesh(paths.mesh, mapping),
                           read_conf(paths.conf), paths)


def check_layout(root: str | os.PathLike) -> list[str]:
    """Human-readable problems with a Matterport3D root, [] when every file the pipeline reads exists.

    Checks the category mapping, that at least one house folder exists (named by its house id), and
    for every house its mesh, camera file and colour and depth image folders (not each image: a
    missing image is named when the frame is read).
    """
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: dataset root does not exist; {_HINT_DOWNLOAD}"]
    problems = []
    if not category_mapping_path(root).is_file():
        problems.append(f"missing {category_mapping_path(root)} (metadata/category_mapping.tsv of the "
                        f"Matterport repository); copy it into the root")
    try:
        houses = list_houses(root)
    except FormatError as exc:  # a house folder that is not named by a house id
        return problems + [str(exc)]
    if not houses:
        problems.append(f"{root}: no house folder (one with house_segmentations/ or "
                        f"undistorted_camera_parameters/); {_HINT_DOWNLOAD}")
    for house in houses:
        p = house_paths(root, house)
        problems += [f"house {house}: missing {f}" for f in (p.mesh, p.conf) if not f.is_file()]
        problems += [f"house {house}: missing folder {d}" for d in (p.color_dir, p.depth_dir) if not d.is_dir()]
    return problems
