"""Matterport3D house layout: .conf round trip and pose convention, mapping, mesh, depth PNG."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.formats.errors import FormatError
from pipeline.formats.matterport import (CATEGORY_MAPPING_COLUMNS, MatterportCamera,
                                         category_mapping_path, house_paths, list_houses,
                                         read_category_mapping, read_conf, read_depth_png,
                                         read_house, read_house_mesh, write_category_mapping,
                                         write_conf, write_depth_png, write_house_mesh)
from pipeline.formats.ply import read_ply

CONF = """dataset matterport
n_images 2
depth_directory undistorted_depth_images
color_directory undistorted_color_images

intrinsics_matrix 1076.5 0 629.6  0 1075.25 513.4  0 0 1
scan pano1_d1_0.png pano1_i1_0.jpg 1 0 0 2.5  0 1 0 -1  0 0 1 1.5  0 0 0 1
scan pano1_d1_1.png pano1_i1_1.jpg 0 0 1 0  1 0 0 0  0 1 0 0  0 0 0 1
"""


def test_read_conf_and_opencv_convention(tmp_path):
    p = tmp_path / "h.conf"
    p.write_text(CONF)
    cams = read_conf(p)
    assert [(c.index, c.panorama, c.camera, c.yaw) for c in cams] == [(0, "pano1", 1, 0),
                                                                       (1, "pano1", 1, 1)]
    np.testing.assert_array_equal(cams[0].intrinsics, [[1076.5, 0, 629.6], [0, 1075.25, 513.4],
                                                       [0, 0, 1]])
    # Matterport camera looks down its -z: a point 2 m in front is (0, 0, -2) there, and must be
    # (0, 0, +2) in the OpenCV frame; a point 1 m "up" in the image (+y there) is -y in OpenCV.
    mp_pose = np.array([[1, 0, 0, 2.5], [0, 1, 0, -1], [0, 0, 1, 1.5], [0, 0, 0, 1]], float)
    for cam_mp, cam_cv in (([0, 0, -2, 1], [0, 0, 2, 1]), ([0, 1, -2, 1], [0, -1, 2, 1])):
        np.testing.assert_allclose(cams[0].camera_to_world @ cam_cv, mp_pose @ cam_mp)
    assert cams[1].depth_file == "pano1_d1_1.png" and cams[1].color_file == "pano1_i1_1.jpg"


def test_conf_round_trip_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    cams = []
    for i in range(7):
        pose = np.eye(4)
        pose[:3, :3] = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        pose[:3, 3] = rng.normal(size=3) * 3
        k = np.array([[1000 + (i // 3), 0, 640.123456789], [0, 1001.5, 512.0], [0, 0, 1]])
        cams.append(MatterportCamera(i, f"p{i // 3}", i % 3, i % 6, f"p{i // 3}_d{i % 3}_{i % 6}.png",
                                     f"p{i // 3}_i{i % 3}_{i % 6}.jpg", k, pose))
    p = tmp_path / "h.conf"
    write_conf(p, cams)
    text = p.read_text()
    assert text.startswith("dataset matterport\nn_images 7\n")
    assert text.count("intrinsics_matrix") == 3  # one per run of equal intrinsics
    back = read_conf(p)
    for a, b in zip(cams, back):
        assert (a.index, a.panorama, a.camera, a.yaw, a.depth_file, a.color_file) == \
               (b.index, b.panorama, b.camera, b.yaw, b.depth_file, b.color_file)
        np.testing.assert_array_equal(a.intrinsics, b.intrinsics)
        np.testing.assert_array_equal(a.camera_to_world, b.camera_to_world)


@pytest.mark.parametrize("edit,match", [
    (lambda s: s.replace("n_images 2", "n_images 3"), "n_images says 3 but 2 scan lines"),
    (lambda s: s.replace(" 0 0 0 1\nscan pano1_d1_1", " 0 0 1\nscan pano1_d1_1"),
     "expected 2 file names and 16 numbers, found 17"),
    (lambda s: s.replace("1075.25", "abc"), "could not parse"),
    (lambda s: s.replace("dataset", "datasat"), "unknown command 'datasat'"),
    (lambda s: s.replace("pano1_i1_1.jpg", "pano1_1.jpg"), "is not named <pano>_i<cam>_<yaw>"),
    (lambda s: s.replace("intrinsics_matrix", "#"), "unknown command '#'"),
])
def test_conf_bad_inputs(tmp_path, edit, match):
    p = tmp_path / "h.conf"
    p.write_text(edit(CONF))
    with pytest.raises(FormatError, match=match) as e:
        read_conf(p)
    assert str(p) in str(e.value)


def test_conf_scan_before_intrinsics(tmp_path):
    p = tmp_path / "h.conf"
    p.write_text("\n".join(line for line in CONF.splitlines() if "intrinsics" not in line))
    with pytest.raises(FormatError, match="scan line before any intrinsics_matrix") as e:
        read_conf(p)
    assert e.value.field == "line 6 (scan)"  # 4 header lines, a blank line


def _mapping_rows():
    return [dict(index=1, raw_category="wall", category="wall", count=9, nyuId=21, nyu40id=1,
                 mpcat40index=1, mpcat40="wall"),
            dict(index=2, raw_category="door frame", category="door", count=3, nyu40id=8),
            dict(index=3, raw_category="junk", category="junk", count=1)]  # nyu40id empty


def test_category_mapping_crlf_round_trip(tmp_path):
    p = tmp_path / "metadata" / "category_mapping.tsv"
    write_category_mapping(p, _mapping_rows())
    raw = p.read_bytes()
    assert raw.count(b"\r\n") == 4 and raw.count(b"\n") == 4
    assert raw.split(b"\r\n")[0].decode().split("\t") == CATEGORY_MAPPING_COLUMNS
    t = read_category_mapping(p)
    assert t["index"].tolist() == [1, 2, 3] and t["raw_category"].tolist()[1] == "door frame"
    assert not any(str(c).endswith("\r") for c in t.columns)
    assert t["mpcat40"].tolist()[0] == "wall"


def _house(root, house="17DRP5sb8fy"):
    rng = np.random.default_rng(1)
    paths = house_paths(root, house)
    write_category_mapping(category_mapping_path(root), _mapping_rows())
    verts = rng.normal(size=(20, 3)).astype(np.float32)
    faces = rng.integers(0, 20, (12, 3))
    cats = np.array([1, 2, 3, -1, 0, 1, 2, 2, 1, 3, -1, 1])
    colors = rng.integers(0, 256, (20, 3)).astype(np.uint8)
    write_house_mesh(paths.mesh, verts, faces, cats, vertex_colors=colors,
                     face_segment_ids=np.arange(12))
    paths.conf.parent.mkdir(parents=True)
    paths.conf.write_text(CONF)
    return paths, verts, faces, cats, colors


def test_house_mesh_and_read_house(tmp_path):
    paths, verts, faces, cats, colors = _house(tmp_path)
    ply = read_ply(paths.mesh)
    assert list(ply.face_data) == ["material_id", "segment_id", "category_id"]
    np.testing.assert_array_equal(ply.face_data["segment_id"], np.arange(12))
    house = read_house(tmp_path, "17DRP5sb8fy")
    np.testing.assert_array_equal(house.mesh.vertices, verts)
    np.testing.assert_array_equal(house.mesh.faces, faces)
    np.testing.assert_array_equal(house.mesh.vertex_colors, colors)
    expected = np.array([{1: 1, 2: 8}.get(int(c), 0) for c in cats])  # brute-force mapping
    np.testing.assert_array_equal(house.mesh.face_labels, expected)
    assert len(house.cameras) == 2 and house.paths == paths
    assert house.paths.color_path(house.cameras[0]) == paths.color_dir / "pano1_i1_0.jpg"
    assert list_houses(tmp_path) == ["17DRP5sb8fy"]  # metadata/ is not a house


def test_house_bad_inputs(tmp_path):
    paths, verts, faces, cats, _ = _house(tmp_path)
    with pytest.raises(FormatError, match="house 'nope' not found") as e:
        read_house(tmp_path, "nope")
    assert "17DRP5sb8fy" in str(e.value)
    write_house_mesh(paths.mesh, verts, faces, np.where(cats == 3, 99, cats))
    with pytest.raises(FormatError, match="category_id 99 is not an index"):
        read_house(tmp_path, "17DRP5sb8fy")
    category_mapping_path(tmp_path).unlink()
    with pytest.raises(FormatError, match="category_mapping.tsv, found nothing") as e:
        read_house(tmp_path, "17DRP5sb8fy")
    assert "download_mp.py" in str(e.value)
    from pipeline.formats.ply import write_ply
    write_ply(paths.mesh, verts, faces)
    with pytest.raises(FormatError, match="faces carry no category_id"):
        read_house_mesh(paths.mesh, read_category_mapping_rows(tmp_path))


def read_category_mapping_rows(root):
    write_category_mapping(category_mapping_path(root), _mapping_rows())
    return read_category_mapping(category_mapping_path(root))


def test_depth_png_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    units = rng.integers(1, 65536, (30, 40))
    units[rng.random((30, 40)) < 0.2] = 0
    depth = np.where(units == 0, np.nan, units / 4000.0)
    p = tmp_path / "x_d0_0.png"
    write_depth_png(p, depth)
    back = read_depth_png(p)
    assert back.dtype == np.float32 and back.shape == (30, 40)
    np.testing.assert_array_equal(np.isnan(back), units == 0)
    np.testing.assert_array_equal(np.rint(back[units > 0].astype(np.float64) * 4000), units[units > 0])
    with pytest.raises(ValueError, match="exceeds the 16-bit range"):
        write_depth_png(p, np.full((2, 2), 17.0))
    p.write_bytes(b"\x89PNG garbage")
    with pytest.raises(FormatError, match="not a decodable PNG"):
        read_depth_png(p)
