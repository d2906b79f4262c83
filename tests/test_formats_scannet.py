"""ScanNet layout: splits, label table, vertex->face labels (brute force oracle), meshes, layout check."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.formats.errors import FormatError
from pipeline.formats.ply import write_ply
from pipeline.formats.scannet import (LABEL_TABLE_COLUMNS, NYU40_NAMES, check_layout,
                                      face_labels_from_vertex_labels, label_table_path,
                                      read_label_table, read_scene_mesh, read_split, scene_paths,
                                      split_path, write_label_table, write_split)


def test_nyu40_names():
    assert len(NYU40_NAMES) == 40 and sorted(NYU40_NAMES) == list(range(1, 41))
    assert (NYU40_NAMES[1], NYU40_NAMES[2], NYU40_NAMES[8], NYU40_NAMES[9], NYU40_NAMES[22],
            NYU40_NAMES[40]) == ("wall", "floor", "door", "window", "ceiling", "otherprop")


def test_face_labels_match_brute_force():
    rng = np.random.default_rng(0)
    vl = rng.integers(0, 6, 300)
    faces = rng.integers(0, 300, (2000, 3))
    got = face_labels_from_vertex_labels(faces, vl)
    for f, g in zip(faces, got):
        labels = [int(vl[k]) for k in f]
        counts = {c: labels.count(c) for c in labels}
        best = max(counts.values())
        assert g == min(c for c, n in counts.items() if n == best)


def test_split_and_label_table_round_trip(tmp_path):
    write_split(tmp_path, "val", ["scene0001_00", "scene0002_01"])
    assert split_path(tmp_path, "val").read_text() == "scene0001_00\nscene0002_01\n"
    assert read_split(tmp_path, "val") == ["scene0001_00", "scene0002_01"]
    rows = [dict(id=1, raw_category="wall", category="wall", count=8277, nyu40id=1,
                 nyu40class="wall", mpcat40="wall", mpcat40index=1),
            dict(id=2, raw_category="office chair", category="chair", count=4, nyu40id=5,
                 nyu40class="chair", eigen13id=11, ShapeNetCore55="chair")]
    write_label_table(label_table_path(tmp_path), rows)
    text = label_table_path(tmp_path).read_text()
    assert text.splitlines()[0].split("\t") == LABEL_TABLE_COLUMNS and "\r" not in text
    t = read_label_table(label_table_path(tmp_path))
    assert list(t.columns) == LABEL_TABLE_COLUMNS
    assert t["raw_category"].tolist() == ["wall", "office chair"]
    assert t["nyu40id"].tolist() == [1, 5] and t["count"].tolist() == [8277, 4]
    assert pd.isna(t["eigen13id"][0]) and t["eigen13id"][1] == 11
    with pytest.raises(ValueError, match="unknown columns"):
        write_label_table(tmp_path / "x.tsv", [{"nyu40": 3}])


def test_label_table_bad_inputs(tmp_path):
    p = tmp_path / "t.tsv"
    with pytest.raises(FormatError, match="found nothing"):
        read_label_table(p)
    p.write_text("id,raw_category,category,nyu40id\n1,wall,wall,1\n")  # commas, not tabs
    with pytest.raises(FormatError, match="missing") as e:
        read_label_table(p)
    assert e.value.field == "header"
    p.write_text("id\traw_category\tcategory\tnyu40id\n1\twall\twall\t41\n")
    with pytest.raises(FormatError, match="0..40, found '41' in data row 1"):
        read_label_table(p)
    p.write_text("id\traw_category\tcategory\tnyu40id\n1\twall\twall\t1\n2\tx\tx\twall\n")
    with pytest.raises(FormatError, match="found 'wall' in data row 2"):
        read_label_table(p)
    with pytest.raises(FormatError, match="scannetv2_train.txt"):
        read_split(tmp_path, "train")


def _write_scene(root, scene, *, test=False, seed=0):
    rng = np.random.default_rng(seed)
    p = scene_paths(root, scene, test=test)
    p.directory.mkdir(parents=True)
    verts = rng.normal(size=(40, 3)).astype(np.float32)
    faces = rng.integers(0, 40, (60, 3))
    colors = rng.integers(0, 256, (40, 4)).astype(np.uint8)
    cdata = {c: colors[:, k] for k, c in enumerate(("red", "green", "blue", "alpha"))}
    write_ply(p.mesh, verts, faces, vertex_data=cdata)
    labels = rng.integers(0, 41, 40).astype(np.uint16)
    if not test:
        write_ply(p.labels_mesh, verts, faces, vertex_data={**cdata, "label": labels})
    p.sens.write_bytes(b"")
    return p, verts, faces, colors, labels


def test_read_scene_mesh(tmp_path):
    p, verts, faces, colors, labels = _write_scene(tmp_path, "scene0000_00")
    m = read_scene_mesh(p)
    np.testing.assert_array_equal(m.vertices, verts)
    np.testing.assert_array_equal(m.faces, faces)
    np.testing.assert_array_equal(m.vertex_colors, colors[:, :3])
    assert m.face_labels.dtype == np.uint8
    np.testing.assert_array_equal(m.face_labels, face_labels_from_vertex_labels(faces, labels))
    assert read_scene_mesh(p, with_labels=False).face_labels is None
    t, *_ = _write_scene(tmp_path, "scene0707_00", test=True)
    assert scene_paths(tmp_path, "scene0707_00") == t and t.is_test
    assert read_scene_mesh(t).face_labels is None


def test_labels_geometry_mismatch_names_both_files(tmp_path):
    p, verts, faces, _, labels = _write_scene(tmp_path, "scene0000_00")
    moved = verts.copy()
    moved[7, 1] += 0.5
    write_ply(p.labels_mesh, moved, faces, vertex_data={"label": labels})
    with pytest.raises(FormatError) as e:
        read_scene_mesh(p)
    msg = str(e.value)
    assert str(p.labels_mesh) in msg and str(p.mesh) in msg and "vertex 7 differs" in msg
    write_ply(p.labels_mesh, verts[:30], faces[(faces < 30).all(1)],
              vertex_data={"label": labels[:30]})
    with pytest.raises(FormatError, match="40 vertices in the mesh, 30 in the labels ply"):
        read_scene_mesh(p)
    write_ply(p.labels_mesh, verts, faces, vertex_data={"label": labels + 50})
    with pytest.raises(FormatError, match="NYU40 ids 0..40"):
        read_scene_mesh(p)


def test_scene_paths_and_check_layout(tmp_path):
    with pytest.raises(FormatError) as e:
        scene_paths(tmp_path, "scene0999_00")
    assert "scans/scene0999_00" in str(e.value) and "scans_test/scene0999_00" in str(e.value)
    assert check_layout(tmp_path / "nope")[0].endswith(
        "dataset root does not exist; download it with ScanNet's download-scannet.py into the "
        "dataset root, or generate a synthetic root with `dgs-synth` (see docs/formats.md).")
    problems = check_layout(tmp_path)
    assert len(problems) == 4 and "scannetv2-labels.combined.tsv" in problems[0]
    _write_scene(tmp_path, "scene0000_00")
    p, *_ = _write_scene(tmp_path, "scene0707_00", test=True)
    write_split(tmp_path, "train", ["scene0000_00", "scene0001_00"])
    write_split(tmp_path, "val", [])
    write_split(tmp_path, "test", ["scene0707_00"])
    write_label_table(label_table_path(tmp_path), [])
    assert check_layout(tmp_path) == [
        f"train scene scene0001_00: missing folder {tmp_path / 'scans' / 'scene0001_00'}"]
    p.sens.unlink()
    assert check_layout(tmp_path)[1] == f"test scene scene0707_00: missing {p.sens}"
