"""Synthetic room layout and mesh: analytic consistency, labels, determinism."""
import math

import numpy as np
import pytest

from pipeline.synthetic.categories import STRUCTURE_IDS
from pipeline.synthetic.primitives import box, cylinder, rectangle
from pipeline.synthetic.scene import SceneLayout, make_scene


def _areas_normals(vertices, faces):
    cross = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    return 0.5 * np.linalg.norm(cross, axis=1), cross


@pytest.mark.parametrize("edge", [0.3, 0.07])
def test_primitive_areas_and_outward_normals(edge):
    v, f = box([1.0, 2.0, 0.5], edge)
    area, n = _areas_normals(v, f)
    assert area.sum() == pytest.approx(2 * (1 * 2 + 1 * 0.5 + 2 * 0.5))
    assert np.all(np.sum(n * v[f].mean(1), 1) > 0)  # every normal points away from the centre
    v, f = box([1.0, 2.0, 0.5], edge, bottom=False)
    assert _areas_normals(v, f)[0].sum() == pytest.approx(7.0 - 1.0 * 2.0)  # minus the bottom
    r, h = 0.3, 0.8
    v, f = cylinder(r, h, edge)
    area, n = _areas_normals(v, f)
    segments = max(12, math.ceil(2 * math.pi * r / edge))
    polygon = 0.5 * segments * r * r * math.sin(2 * math.pi / segments)  # inscribed polygon area
    side = segments * 2 * r * math.sin(math.pi / segments) * h
    assert area.sum() == pytest.approx(side + 2 * polygon)
    centroid = v[f].mean(1)
    radial = np.column_stack([centroid[:, :2], np.where(np.abs(centroid[:, 2]) > h / 2 - 1e-9, centroid[:, 2], 0)])
    assert np.all(np.sum(n * radial, 1) > 0)
    v, f = rectangle([0, 0, 0], [2.0, 0, 0], [0, 1.0, 0], edge)
    lengths = np.linalg.norm(v[f] - v[np.roll(f, 1, axis=1)], axis=2)
    assert lengths.max() <= edge * math.sqrt(2) + 1e-9  # grid cells no larger than edge x edge
    assert len(f) == 2 * math.ceil(2.0 / edge) * math.ceil(1.0 / edge)


def _parts(layout):
    return list(layout.surfaces) + list(layout.objects)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_layout_matches_mesh(seed):
    layout, mesh = make_scene(f"scene{seed:04d}_00", seed, edge_length=0.3)
    assert len(mesh.faces) == layout.n_faces and len(mesh.vertices) == layout.n_vertices
    size = np.array(layout.room_size)
    assert np.all(mesh.vertices >= -1e-5) and np.all(mesh.vertices <= size + 1e-5)
    for index, part in enumerate(_parts(layout)):
        start, stop = part.face_range
        assert np.all(mesh.face_parts[start:stop] == index)
        assert np.all(mesh.face_labels[start:stop] == part.label)
        points = mesh.vertices[mesh.faces[start:stop]].reshape(-1, 3).astype(np.float64)
        if hasattr(part, "primitive"):  # furniture: every vertex inside its oriented box
            c, s = math.cos(part.yaw), math.sin(part.yaw)
            local = (points - part.center) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
            assert np.all(np.abs(local) <= np.array(part.size) / 2 + 1e-5), part.name
            assert part.center[2] == pytest.approx(part.size[2] / 2)  # stands on the floor
        else:  # structure: every vertex on its rectangle's plane
            normal = np.cross(part.axis_u, part.axis_v)
            assert np.allclose((points - part.origin) @ normal, 0, atol=1e-4)
    assert np.all(np.diff(mesh.face_parts) >= 0)
    assert len(layout.objects) >= 1


@pytest.mark.parametrize("seed", [0, 5])
def test_furniture_disjoint_and_outside_camera_zone(seed):
    layout, _ = make_scene("scene0000_00", seed, edge_length=0.5)
    feet = []
    for o in layout.objects:
        corners = np.array([[sx, sy] for sx in (-0.5, 0.5) for sy in (-0.5, 0.5)]) * o.size[:2]
        c, s = math.cos(o.yaw), math.sin(o.yaw)
        world = corners @ np.array([[c, s], [-s, c]]) + o.center[:2]
        feet.append(np.concatenate([world.min(0), world.max(0)]))
    zone = np.array(layout.camera_zone)
    for i, a in enumerate(feet):
        assert not (a[0] < zone[2] and zone[0] < a[2] and a[1] < zone[3] and zone[1] < a[3])
        for b in feet[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def test_structure_labels_and_no_shared_vertices():
    layout, mesh = make_scene("scene0000_00", 0, edge_length=0.3)
    assert set(STRUCTURE_IDS) <= set(np.unique(mesh.face_labels).tolist())
    # Every vertex is used only by faces of its own label (objects do not share vertices).
    per_vertex = np.zeros(len(mesh.vertices), np.int64) - 1
    for k in range(3):
        per_vertex[mesh.faces[:, k]] = mesh.face_labels
    assert np.array_equal(per_vertex, mesh.vertex_labels.astype(np.int64))
    for k in range(3):
        assert np.array_equal(mesh.vertex_labels[mesh.faces[:, k]], mesh.face_labels)
    # Door and window panels float 1 cm in front of a wall, facing into the room.
    size = np.array(layout.room_size)
    for name in ("door", "window"):
        panel = next(s for s in layout.surfaces if s.name == name)
        normal = np.cross(panel.axis_u, panel.axis_v)
        normal /= np.linalg.norm(normal)
        origin = np.array(panel.origin)
        wall_distance = np.min(np.concatenate([origin[:2], size[:2] - origin[:2]]))
        assert wall_distance == pytest.approx(0.01, abs=1e-9)
        assert np.dot(size / 2 - origin, normal) > 0


def test_colors_vary_and_layout_json_round_trip():
    layout, mesh = make_scene("scene0001_00", 3, edge_length=0.3)
    floor = mesh.vertex_colors[mesh.vertex_labels == 2].astype(float)
    assert floor.std(0).max() > 5  # textured, not flat
    assert SceneLayout.from_json(layout.to_json()) == layout


def test_deterministic_and_seed_dependent():
    a_layout, a = make_scene("scene0000_00", 7, edge_length=0.3)
    b_layout, b = make_scene("scene0000_00", 7, edge_length=0.3)
    c_layout, c = make_scene("scene0000_00", 8, edge_length=0.3)
    assert a_layout.to_json() == b_layout.to_json()
    for name in ("vertices", "faces", "vertex_colors", "vertex_labels"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a_layout.room_size != c_layout.room_size


def test_density_knob_scales_face_count():
    coarse, m1 = make_scene("scene0000_00", 0, edge_length=0.2)
    fine, m2 = make_scene("scene0000_00", 0, edge_length=0.1)
    assert 3.0 < len(m2.faces) / len(m1.faces) < 4.5
