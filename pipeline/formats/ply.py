"""Triangle-mesh PLY reader and writer (ScanNet `_vh_clean_2[.labels].ply`, Matterport houses).

Reading uses the `plyfile` package (memory-mapped, with the face list length fixed at 3 for speed).
Binary writing is done here directly with numpy structured arrays, which is ~100x faster than
plyfile's per-face object arrays and produces the same standard header
(`property list uchar int vertex_indices`); ASCII writing goes through plyfile. Coordinates are
stored as given (world frame, metres for both datasets).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import plyfile

from pipeline.atomic import atomic_open

from .errors import FormatError

_PLY_TYPES = {np.dtype(k): v for k, v in (
    ("i1", "char"), ("u1", "uchar"), ("<i2", "short"), ("<u2", "ushort"), ("<i4", "int"),
    ("<u4", "uint"), ("<f4", "float"), ("<f8", "double"))}
_FACE_LIST_NAMES = ("vertex_indices", "vertex_index")


@dataclass
class PlyMesh:
    """A triangle mesh with optional per-vertex and per-face properties.

    vertices: (V, 3) float32; faces: (F, 3) int32 vertex indices;
    vertex_data / face_data: name -> (V,) / (F,) arrays with the stored dtype
    (e.g. red/green/blue/alpha uint8, label uint16; category_id int32).
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_data: dict[str, np.ndarray] = field(default_factory=dict)
    face_data: dict[str, np.ndarray] = field(default_factory=dict)


def read_ply(path: str | os.PathLike) -> PlyMesh:
    """Read a triangle mesh PLY (binary or ASCII). Faces must be triangles.

    Raises:
        FormatError: missing file, unparsable PLY, no vertex/face element, non-triangle faces or
            out-of-range vertex indices.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FormatError(path, "expected a PLY mesh, found nothing at this path.",
                          hint="check the dataset root and id (see docs/formats.md).")
    data = _parse(path)
    names = [e.name for e in data.elements]
    if "vertex" not in names or "face" not in names:
        raise FormatError(path, f"expected 'vertex' and 'face' elements, found {names}.",
                          field="element", hint="this is not a triangle mesh PLY.")
    vert = data["vertex"].data
    missing = [c for c in "xyz" if c not in vert.dtype.names]
    if missing:
        raise FormatError(path, f"vertex element lacks {missing}.", field="vertex",
                          hint="the mesh must store x, y, z per vertex.")
    vertices = np.stack([vert[c] for c in "xyz"], axis=1).astype(np.float32)
    face = data["face"].data
    list_name = next((n for n in _FACE_LIST_NAMES if n in face.dtype.names), None)
    if list_name is None:
        raise FormatError(path, f"face element has no vertex_indices list (has "
                          f"{face.dtype.names}).", field="face", hint="not a triangle mesh PLY.")
    faces = _triangles(path, face[list_name])
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise FormatError(path, f"face vertex indices span [{faces.min()}, {faces.max()}] but "
                          f"there are {len(vertices)} vertices.", field=list_name,
                          hint="the mesh is corrupt; re-export it.")
    return PlyMesh(
        vertices=vertices, faces=faces,
        vertex_data={n: np.array(vert[n]) for n in vert.dtype.names if n not in "xyz"},
        face_data={n: np.array(face[n]) for n in face.dtype.names if n != list_name})


def _parse(path: str) -> plyfile.PlyData:
    known = {"face": {n: 3 for n in _FACE_LIST_NAMES}}
    try:
        try:
            return plyfile.PlyData.read(path, known_list_len=known)
        except (plyfile.PlyElementParseError, ValueError, IndexError):
            # not all faces are triangles, or ASCII / no mmap: parse generically, check below
            return plyfile.PlyData.read(path)
    except (plyfile.PlyHeaderParseError, plyfile.PlyElementParseError, ValueError, EOFError,
            UnicodeDecodeError, IndexError) as exc:
        raise FormatError(path, f"not a readable PLY file ({exc}).",
                          hint="the file is corrupt or truncated; download it again.") from exc


def _triangles(path: str, column: np.ndarray) -> np.ndarray:
    if column.dtype != object:
        return np.array(column, dtype=np.int32).reshape(-1, 3)  # copy: detach from the mmap
    lengths = np.fromiter((len(f) for f in column), np.int64, len(column))
    bad = np.flatnonzero(lengths != 3)
    if bad.size:
        raise FormatError(path, f"expected triangles, face {bad[0]} has {lengths[bad[0]]} "
                          f"vertices ({bad.size} non-triangle faces).", field="vertex_indices",
                          hint="triangulate the mesh first.")
    return np.stack(column).astype(np.int32).reshape(-1, 3)


def _columns(n: int, data: dict[str, np.ndarray] | None, what: str) -> list[tuple[str, np.ndarray]]:
    out = []
    for name, values in (data or {}).items():
        values = np.asarray(values)
        if values.shape != (n,):
            raise ValueError(f"write_ply: {what} property {name!r} must have shape ({n},), got "
                             f"{values.shape}")
        dtype = values.dtype.newbyteorder("<") if values.dtype.itemsize > 1 else values.dtype
        if np.dtype(dtype) not in _PLY_TYPES:
            raise ValueError(f"write_ply: {what} property {name!r} has unsupported dtype "
                             f"{values.dtype}; use (u)int8/16/32 or float32/64")
        out.append((name, values.astype(dtype, copy=False)))
    return out


def write_ply(path: str | os.PathLike, vertices: np.ndarray, faces: np.ndarray, *,
              vertex_data: dict[str, np.ndarray] | None = None,
              face_data: dict[str, np.ndarray] | None = None, binary: bool = True) -> None:
    """Write a triangle mesh atomically (``pipeline.atomic``: temporary sibling, then rename).

    Args:
        vertices: (V, 3), stored as float32 x, y, z.
        faces: (F, 3) vertex indices, stored as `list uchar int vertex_indices`.
        vertex_data, face_data: extra (V,) / (F,) properties, stored with their numpy dtype.
        binary: binary little endian (default) or ASCII.
    """
    path = os.fspath(path)
    vertices = np.asarray(vertices, dtype=np.float32)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"write_ply: expected (V, 3) vertices and (F, 3) faces, got "
                         f"{vertices.shape} and {faces.shape}")
    vcols = [(c, vertices[:, k]) for k, c in enumerate("xyz")] + _columns(len(vertices),
                                                                        vertex_data, "vertex")
    fcols = _columns(len(faces), face_data, "face")
    vert = np.empty(len(vertices), [(n, a.dtype) for n, a in vcols])
    for n, a in vcols:
        vert[n] = a
    fdt = [("count", "u1"), ("vertex_indices", "<i4", (3,))] + [(n, a.dtype) for n, a in fcols]
    face = np.empty(len(faces), fdt)
    face["count"] = 3
    face["vertex_indices"] = faces
    for n, a in fcols:
        face[n] = a
    with atomic_open(path, "wb") as f:
        if binary:
            f.write(_header(vert.dtype, fcols, len(vert), len(face)).encode("ascii"))
            f.write(vert.tobytes())
            f.write(face.tobytes())
        else:
            face_obj = np.empty(len(faces), [("vertex_indices", "O")] +
                                [(n, a.dtype) for n, a in fcols])
            face_obj["vertex_indices"] = list(faces.astype(np.int32))
            for n, a in fcols:
                face_obj[n] = a
            plyfile.PlyData([plyfile.PlyElement.describe(vert, "vertex"),
                             plyfile.PlyElement.describe(
                                 face_obj, "face", len_types={"vertex_indices": "u1"},
                                 val_types={"vertex_indices": "i4"})],
                            text=True).write(f)


def _header(vdtype: np.dtype, fcols, n_vert: int, n_face: int) -> str:
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {n_vert}"]
    lines += [f"property {_PLY_TYPES[vdtype[n]]} {n}" for n in vdtype.names]
    lines += [f"element face {n_face}", "property list uchar int vertex_indices"]
    lines += [f"property {_PLY_TYPES[a.dtype]} {n}" for n, a in fcols]
    return "\n".join(lines + ["end_header"]) + "\n"
