"""ScanNet v2 dataset layout: scene paths, split lists, the label table, and labelled meshes.

Layout under a ScanNet root (as the official download script creates it)::

    <root>/scans/<scene>/<scene>.sens
    <root>/scans/<scene>/<scene>_vh_clean_2.ply          binary PLY, x y z + red green blue alpha
    <root>/scans/<scene>/<scene>_vh_clean_2.labels.ply   same geometry + per-vertex NYU40 `label`
    <root>/scans_test/<scene>/...                         test scenes: no labels ply
    <root>/scannetv2-labels.combined.tsv
    <root>/scannetv2_{train,val,test}.txt

Mesh coordinates are world metres (the frame of the `.sens` camera-to-world poses).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.atomic import atomic_path, write_text_atomic
from pipeline.errors import name_problem

from .errors import FormatError
from .ply import read_ply

NYU40_NAMES: dict[int, str] = dict(enumerate((
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "refrigerator", "television", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag", "otherstructure", "otherfurniture", "otherprop"), start=1))

LABEL_TABLE_COLUMNS: list[str] = [
    "id", "raw_category", "category", "count", "nyu40id", "eigen13id", "nyuClass", "nyu40class",
    "eigen13class", "ModelNet40", "ModelNet10", "ShapeNetCore55", "synsetoffset", "wnsynsetid",
    "wnsynsetkey", "mpcat40", "mpcat40index"]
_LABEL_TABLE_REQUIRED = ("id", "raw_category", "category", "nyu40id")
SPLITS = ("train", "val", "test")
SCENE_ID_PATTERN = r"scene\d{4}_\d{2}"
"""A ScanNet scene id, e.g. ``scene0000_00`` (scan 0000, its first rescan); ids become folder names."""
_HINT_DOWNLOAD = ("download it with ScanNet's download-scannet.py into the dataset root, or "
                  "generate a synthetic root with `dgs-synth` (see docs/formats.md).")


@dataclass(frozen=True)
class ScanNetScenePaths:
    """Where one scene's files live. `labels_mesh` does not exist for test scenes."""

    scene_id: str
    directory: Path
    sens: Path
    mesh: Path
    labels_mesh: Path
    is_test: bool


@dataclass
class LabelledMesh:
    """A scene mesh in world metres.

    vertices: (V, 3) float32; faces: (F, 3) int32; vertex_colors: (V, 3) uint8 RGB or None;
    face_labels: (F,) uint8 NYU40 id (0 = unlabelled) or None when the scene has no labels.
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray | None
    face_labels: np.ndarray | None


def _paths_in(root: Path, scene_id: str, test: bool) -> ScanNetScenePaths:
    d = root / ("scans_test" if test else "scans") / scene_id
    return ScanNetScenePaths(scene_id, d, d / f"{scene_id}.sens", d / f"{scene_id}_vh_clean_2.ply",
                             d / f"{scene_id}_vh_clean_2.labels.ply", test)


def scene_paths(root: str | os.PathLike, scene_id: str, *,
                test: bool | None = None) -> ScanNetScenePaths:
    """Paths of `scene_id` under `root`; test=None looks in scans/ then scans_test/.

    The paths are not checked when `test` is given (writers use this to know where to write).
    Raises FormatError when test=None and the scene is in neither folder.
    """
    root = Path(root)
    if test is not None:
        return _paths_in(root, scene_id, test)
    for is_test in (False, True):
        p = _paths_in(root, scene_id, is_test)
        if p.directory.is_dir():
            return p
    raise FormatError(root, f"scene {scene_id!r} not found; looked in {root / 'scans' / scene_id} "
                      f"and {root / 'scans_test' / scene_id}.", field="scene_id",
                      hint="check the scene id and the dataset root; " + _HINT_DOWNLOAD)


def label_table_path(root: str | os.PathLike) -> Path:
    """`<root>/scannetv2-labels.combined.tsv`."""
    return Path(root) / "scannetv2-labels.combined.tsv"


def split_path(root: str | os.PathLike, split: str) -> Path:
    """`<root>/scannetv2_<split>.txt` for split in train, val, test."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return Path(root) / f"scannetv2_{split}.txt"


def read_split(root: str | os.PathLike, split: str) -> list[str]:
    """Scene ids of a split list, in file order (blank lines ignored).

    Every id must match :data:`SCENE_ID_PATTERN` (ids become folder names and command-line
    arguments); FormatError naming the file and line otherwise.
    """
    p = split_path(root, split)
    if not p.is_file():
        raise FormatError(p, f"expected the ScanNet {split} split list, found nothing.",
                          hint=_HINT_DOWNLOAD)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise FormatError(p, f"not a UTF-8 text file ({exc}).", offset=exc.start,
                          hint="use the split list from ScanNet's Tasks/Benchmark folder.") from exc
    ids = []
    for lineno, line in enumerate(lines, 1):
        scene = line.strip()
        problem = name_problem(scene, SCENE_ID_PATTERN) if scene else None
        if problem:
            raise FormatError(p, f"expected one ScanNet scene id per line, found {problem}.",
                              field=f"line {lineno}", hint="fix or remove that line (ids look like "
                              "scene0000_00).")
        if scene:
            ids.append(scene)
    return ids


def write_split(root: str | os.PathLike, split: str, scene_ids: list[str]) -> None:
    """Write a split list: one scene id per line, '\\n' line endings."""
    write_text_atomic(split_path(root, split), "".join(f"{s}\n" for s in scene_ids))


def read_label_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read `scannetv2-labels.combined.tsv` (tab separated, header row). `id`, `count`, `nyu40id`
    are integers; other columns stay as read (strings or numbers, empty = NaN)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "expected the ScanNet label table, found nothing.",
                          hint=_HINT_DOWNLOAD)
    try:
        table = pd.read_csv(path, sep="\t", keep_default_na=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"not a readable tab-separated table ({exc}).",
                          hint="the file is corrupt; download it again.") from exc
    missing = [c for c in _LABEL_TABLE_REQUIRED if c not in table.columns]
    if missing:
        raise FormatError(path, f"expected columns {list(_LABEL_TABLE_REQUIRED)}, missing "
                          f"{missing} (found {list(table.columns)}).", field="header",
                          hint="this is not scannetv2-labels.combined.tsv (tab separated).")
    ids = pd.to_numeric(table["nyu40id"], errors="coerce")
    bad = ids.isna() | ~ids.between(0, 40) | (ids != ids.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise FormatError(path, f"nyu40id must be an integer in 0..40, found "
                          f"'{table['nyu40id'].iloc[row]}' in data row {row + 1}.",
                          field="nyu40id", hint="the table is corrupt; download it again.")
    return table.astype({"nyu40id": np.int64})


def write_label_table(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write the label table with the real header (`LABEL_TABLE_COLUMNS`); missing keys are
    written empty, unknown keys are an error."""
    for r in rows:
        unknown = set(r) - set(LABEL_TABLE_COLUMNS)
        if unknown:
            raise ValueError(f"write_label_table: unknown columns {sorted(unknown)}; allowed "
                             f"{LABEL_TABLE_COLUMNS}")
    with atomic_path(path) as tmp:
        pd.DataFrame(rows, columns=LABEL_TABLE_COLUMNS).to_csv(tmp, sep="\t", index=False,
                                                               lineterminator="\n")


def face_labels_from_vertex_labels(faces: np.ndarray, vertex_labels: np.ndarray) -> np.ndarray:
    """Per-face label = majority of its 3 vertex labels; when all three differ, the smallest.

    faces: (F, 3) int; vertex_labels: (V,) int. Returns (F,) with vertex_labels' dtype.
    """
    a, b, c = (vertex_labels[faces[:, k]] for k in range(3))
    return np.where((a == b) | (a == c), a, np.where(b == c, b, np.minimum(np.minimum(a, b), c)))


def read_scene_mesh(paths: ScanNetScenePaths, *, with_labels: bool = True) -> LabelledMesh:
    """Read `<scene>_vh_clean_2.ply` and, for labelled scenes, the labels ply.

    Raises FormatError when a file is missing, when the labels ply's geometry differs from the
    mesh (naming both files and what differs) or when a label is not an NYU40 id (0..40).
    """
    mesh = read_ply(paths.mesh)
    colors = None
    if all(c in mesh.vertex_data for c in ("red", "green", "blue")):
        colors = np.stack([mesh.vertex_data[c] for c in ("red", "green", "blue")], 1)
        colors = colors.astype(np.uint8)
    labels = None
    if with_labels and not paths.is_test:
        lab = read_ply(paths.labels_mesh)
        _check_same_geometry(paths, mesh.vertices, mesh.faces, lab.vertices, lab.faces)
        if "label" not in lab.vertex_data:
            raise FormatError(paths.labels_mesh, "expected a per-vertex 'label' property, found "
                              f"{sorted(lab.vertex_data)}.", field="label",
                              hint="use the official <scene>_vh_clean_2.labels.ply.")
        vl = lab.vertex_data["label"].astype(np.int64)
        if vl.size and (vl.min() < 0 or vl.max() > 40):
            raise FormatError(paths.labels_mesh, f"labels must be NYU40 ids 0..40, found "
                              f"[{vl.min()}, {vl.max()}].", field="label",
                              hint="use the official labels ply (NYU40 ids).")
        labels = face_labels_from_vertex_labels(mesh.faces, vl).astype(np.uint8)
    return LabelledMesh(mesh.vertices, mesh.faces, colors, labels)


def _check_same_geometry(paths, v0, f0, v1, f1) -> None:
    """FormatError unless both files hold the same finite vertices and the same faces.

    Non-finite vertices are reported first, naming the file that has them: NaN ≠ NaN would
    otherwise read as "geometry differs" between two files that agree.
    """
    for path, v in ((paths.mesh, v0), (paths.labels_mesh, v1)):
        bad = ~np.isfinite(v).all(axis=1)
        if bad.any():
            raise FormatError(path, f"{int(bad.sum())} of {len(v)} vertices are NaN/inf (first at "
                              f"vertex {int(np.flatnonzero(bad)[0])}).", field="vertex",
                              hint="the mesh is corrupt; download the scene again (or remove it "
                              "from the split list).")
    problem = None
    if v0.shape != v1.shape:
        problem = f"{len(v0)} vertices in the mesh, {len(v1)} in the labels ply"
    elif f0.shape != f1.shape:
        problem = f"{len(f0)} faces in the mesh, {len(f1)} in the labels ply"
    elif not np.array_equal(v0, v1):  # both finite here, so != is exact
        i = int(np.flatnonzero((v0 != v1).any(1))[0])
        problem = f"vertex {i} differs: {v0[i].tolist()} vs {v1[i].tolist()}"
    elif not np.array_equal(f0, f1):
        i = int(np.flatnonzero((f0 != f1).any(1))[0])
        problem = f"face {i} differs: {f0[i].tolist()} vs {f1[i].tolist()}"
    if problem:
        raise FormatError(paths.labels_mesh, f"geometry differs from {paths.mesh}: {problem}.",
                          field="vertex/face", hint="both files must come from the same ScanNet "
                          "release; download the scene again.")


def check_layout(root: str | os.PathLike) -> list[str]:
    """Human-readable problems with a ScanNet root, [] when every file the pipeline reads exists.

    Checks the label table, the three split lists, and for every scene listed in them its
    folder (scans/ for train+val, scans_test/ for test) and files.
    """
    root = Path(root)
    if not root.is_dir():
        return [f"{root}: dataset root does not exist; {_HINT_DOWNLOAD}"]
    problems = []
    if not label_table_path(root).is_file():
        problems.append(f"missing {label_table_path(root)}; {_HINT_DOWNLOAD}")
    for split in SPLITS:
        if not split_path(root, split).is_file():
            problems.append(f"missing split list {split_path(root, split)}; {_HINT_DOWNLOAD}")
            continue
        try:
            scenes = read_split(root, split)
        except FormatError as exc:  # a line that is not a scene id
            problems.append(str(exc))
            continue
        for scene in scenes:
            p = scene_paths(root, scene, test=(split == "test"))
            if not p.directory.is_dir():
                problems.append(f"{split} scene {scene}: missing folder {p.directory}")
                continue
            wanted = [p.sens, p.mesh] + ([] if p.is_test else [p.labels_mesh])
            problems += [f"{split} scene {scene}: missing {f}" for f in wanted if not f.is_file()]
    return problems
