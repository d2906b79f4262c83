"""PLY reader/writer: round trips, plyfile as independent reader of our binary output, bad input."""
from __future__ import annotations

import numpy as np
import plyfile
import pytest

from pipeline.formats.errors import FormatError
from pipeline.formats.ply import read_ply, write_ply


def mesh(seed=0, v=50, f=80):
    rng = np.random.default_rng(seed)
    verts = rng.normal(size=(v, 3)).astype(np.float32)
    faces = rng.integers(0, v, (f, 3)).astype(np.int32)
    vdata = {"red": rng.integers(0, 256, v).astype(np.uint8),
             "label": rng.integers(0, 41, v).astype(np.uint16),
             "quality": rng.normal(size=v)}
    fdata = {"category_id": rng.integers(-1, 30, f).astype(np.int32)}
    return verts, faces, vdata, fdata


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip_bit_exact(tmp_path, binary):
    verts, faces, vdata, fdata = mesh()
    p = tmp_path / "m.ply"
    write_ply(p, verts, faces, vertex_data=vdata, face_data=fdata, binary=binary)
    m = read_ply(p)
    np.testing.assert_array_equal(m.vertices, verts)
    np.testing.assert_array_equal(m.faces, faces)
    assert m.faces.dtype == np.int32 and m.vertices.dtype == np.float32
    for k, v in vdata.items():
        np.testing.assert_array_equal(m.vertex_data[k], v)
        assert m.vertex_data[k].dtype == v.dtype
    np.testing.assert_array_equal(m.face_data["category_id"], fdata["category_id"])
    assert sorted(p.parent.iterdir()) == [p]  # no temporary file left behind


def test_binary_output_read_by_plyfile(tmp_path):
    verts, faces, vdata, fdata = mesh(1)
    p = tmp_path / "m.ply"
    write_ply(p, verts, faces, vertex_data=vdata, face_data=fdata)
    data = plyfile.PlyData.read(str(p))  # generic object-array path, independent of our reader
    assert data.text is False and data.byte_order == "<"
    np.testing.assert_array_equal(data["vertex"]["x"], verts[:, 0])
    np.testing.assert_array_equal(data["vertex"]["label"], vdata["label"])
    np.testing.assert_array_equal(np.stack(data["face"]["vertex_indices"]), faces)
    np.testing.assert_array_equal(data["face"]["category_id"], fdata["category_id"])
    header = p.read_bytes().split(b"end_header")[0].decode()
    assert "property list uchar int vertex_indices" in header
    assert "property ushort label" in header and "property uchar red" in header


def test_reads_quads_as_error_and_plyfile_written_triangles(tmp_path):
    verts = np.zeros(4, [("x", "f4"), ("y", "f4"), ("z", "f4")])
    tri = np.array([([0, 1, 2],), ([1, 2, 3],)], [("vertex_indices", "O")])
    p = tmp_path / "tri.ply"
    plyfile.PlyData([plyfile.PlyElement.describe(verts, "vertex"),
                     plyfile.PlyElement.describe(tri, "face")]).write(str(p))
    np.testing.assert_array_equal(read_ply(p).faces, [[0, 1, 2], [1, 2, 3]])
    quad = np.array([([0, 1, 2],), ([0, 1, 2, 3],)], [("vertex_indices", "O")])
    plyfile.PlyData([plyfile.PlyElement.describe(verts, "vertex"),
                     plyfile.PlyElement.describe(quad, "face")]).write(str(p))
    with pytest.raises(FormatError, match="expected triangles, face 1 has 4 vertices"):
        read_ply(p)


def test_bad_inputs(tmp_path):
    with pytest.raises(FormatError, match="found nothing"):
        read_ply(tmp_path / "missing.ply")
    verts, faces, _, _ = mesh()
    p = tmp_path / "t.ply"
    write_ply(p, verts, faces)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 100])
    with pytest.raises(FormatError, match="not a readable PLY") as e:
        read_ply(p)
    assert str(p) in str(e.value)
    p.write_bytes(b"not a ply at all\n")
    with pytest.raises(FormatError, match="not a readable PLY"):
        read_ply(p)
    write_ply(p, verts[:10], faces)  # indices up to 49 with 10 vertices
    with pytest.raises(FormatError, match="there are 10 vertices"):
        read_ply(p)
    with pytest.raises(ValueError, match="must have shape"):
        write_ply(p, verts, faces, vertex_data={"label": np.zeros(3)})
