"""Synthetic apartments: analytic layout against the mesh, composite furniture, occupancy, labels,
determinism."""
import math

import numpy as np
import pytest

from pipeline.synthetic.categories import BY_NAME, STRUCTURE_IDS
from pipeline.synthetic.furniture import CATALOGUE
from pipeline.synthetic.primitives import box, cylinder, rectangle
from pipeline.synthetic.scene import Furniture, SceneLayout, make_scene
from pipeline.synthetic.solids import Solid, union_mesh
from pipeline.synthetic.structure import ray_rectangles


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
    v, f = rectangle([0, 0, 0], [2.0, 0, 0], [0, 1.0, 0], edge, cuts_u=[0.123], cuts_v=[0.5, 2.0])
    assert np.isclose(v[:, 0], 0.246).any() and np.isclose(v[:, 1], 0.5).any()  # grid lines at the cuts


def test_union_of_two_boxes_is_its_boundary():
    """An L of two overlapping boxes standing on the floor: the mesh is exactly the union's surface
    (area by inclusion-exclusion, minus the floor contact), every normal points out of the union."""
    parts = [Solid("box", [0.0, 0.0, 0.5], [2.0, 1.0, 1.0]), Solid("box", [0.75, 1.0, 0.25], [0.5, 2.0, 0.5])]
    v, f = union_mesh(parts, 0.3, lambda p: p, lambda p: p[:, 2] < 0)
    area, n = _areas_normals(v, f)
    # the union is A (10 m²) plus B outside A, a 0.5×1.5×0.5 box (3.5 m²) touching A over 0.25 m²;
    # B's +x face is flush with A's over 0.25 m² (covered once); minus the bottoms on the floor
    assert area.sum() == pytest.approx(10.0 + 3.5 - 2 * 0.25 - (2.0 + 0.75))
    probe = v[f].mean(1) + 1e-4 * n / np.linalg.norm(n, axis=1, keepdims=True)
    inside = np.zeros(len(probe), bool)
    for p in parts:
        inside |= np.all(np.abs(probe - p.center) < np.array(p.size) / 2, axis=1)
    assert not inside.any()  # just outside every face is free: no hidden internal face is left


def _parts(layout):
    return list(layout.surfaces) + list(layout.objects)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_layout_matches_mesh(seed):
    layout, mesh = make_scene(f"scene{seed:04d}_00", seed, edge_length=0.3)
    assert len(mesh.faces) == layout.n_faces and len(mesh.vertices) == layout.n_vertices
    assert 2 <= len(layout.rooms) <= 4 and len(layout.objects) >= 2
    for index, part in enumerate(_parts(layout)):
        start, stop = part.face_range
        assert stop > start, part.name
        assert np.all(mesh.face_parts[start:stop] == index)
        assert np.all(mesh.face_labels[start:stop] == part.label)
        points = mesh.vertices[mesh.faces[start:stop]].reshape(-1, 3).astype(np.float64)
        if hasattr(part, "parts"):  # furniture: every vertex on the boundary of its union of solids
            local = part.to_local(points)
            near = np.zeros(len(local), bool)
            for s in part.parts:
                outside = np.abs(local - s.center) - np.array(s.size) / 2
                if s.primitive == "box":
                    near |= np.all(outside <= 1e-5, axis=1)
                else:
                    r = np.hypot(*(local[:, :2] - s.center[:2]).T)
                    near |= (r <= s.size[0] / 2 + 1e-5) & (outside[:, 2] <= 1e-5)
            assert near.all(), part.name
            assert local[:, 2].min() == pytest.approx(0.0, abs=1e-6)  # stands on the floor
        else:  # structure: every vertex on its rectangle's plane
            normal = np.cross(part.axis_u, part.axis_v)
            assert np.allclose((points - part.origin) @ normal, 0, atol=1e-4)
    assert np.all(np.diff(mesh.face_parts) >= 0)


@pytest.mark.parametrize("seed", [0, 5, 6])
def test_furniture_disjoint_inside_rooms_and_clear_of_camera_zones(seed):
    layout, _ = make_scene("scene0000_00", seed, edge_length=0.5)
    feet = [o.footprint() for o in layout.objects]
    zones = [np.array(r.camera_zone) for r in layout.rooms]
    for i, (o, a) in enumerate(zip(layout.objects, feet)):
        room = layout.rooms[int(layout.room_of(np.array([o.center]))[0])]
        assert room.box[0] < a[0] and a[2] < room.box[2] and room.box[1] < a[1] and a[3] < room.box[3]
        for zone in zones:
            assert not (a[0] < zone[2] and zone[0] < a[2] and a[1] < zone[3] and zone[1] < a[3])
        for b in feet[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def test_rooms_doorways_windows_and_facades():
    """Across seeds: doorways join rooms (both wall sheets cut, a passage through the wall), windows
    open outer walls onto a facade, some apartments have a corridor."""
    kinds = set()
    for seed in range(8):
        layout, _ = make_scene(f"scene{seed:04d}_00", seed, edge_length=0.5, rooms_range=(2, 4))
        kinds |= {r.kind for r in layout.rooms}
        doorways = [o for o in layout.openings if o.kind == "doorway"]
        assert len(doorways) >= len(layout.rooms) - 1
        for o in layout.openings:
            lo, hi = np.array(o.box[:3]), np.array(o.box[3:])
            centre = (lo + hi) / 2
            assert not layout.occupancy(centre[None])[0]  # the passage is free
            across = np.zeros(3)
            across[o.axis] = (hi - lo)[o.axis] / 2 + 0.02
            beside = centre.copy()
            beside[1 - o.axis] = hi[1 - o.axis] + 0.05  # next to the opening: inside the wall
            assert layout.occupancy(beside[None])[0]
            if o.kind == "doorway":
                assert sorted(layout.room_of(np.array([centre - across, centre + across])).tolist()) == sorted(o.rooms)
            else:  # looking out through the window hits a facade 2.5-5 m away
                out = np.zeros(3)
                out[o.axis] = o.side
                facades = [s for s in layout.surfaces if s.name.startswith("facade")]
                t = ray_rectangles(facades, centre, out[None]).min() - (hi - lo)[o.axis] / 2
                assert 2.5 < t < 5.0 + 0.02  # from the passage's outer end (outer wall face + 1 cm)
    assert kinds == {"room", "corridor"}


def test_occupancy_of_composite_furniture():
    """Points in a chair's leg, seat and back are inside; under the seat, between the legs, in front
    of the back and in a shelf's cavities are free."""
    rng = np.random.default_rng(0)
    for kind in ("chair", "bookshelf", "table", "l_sofa", "cabinet"):
        parts = CATALOGUE[kind][1](rng)
        layout = SceneLayout("s", 0, 2.6, 0.12, 0.3, [], [], [], [], [])
        layout.objects = [Furniture("x", kind, 1, kind, [1.0, 2.0, 0.0], 0.3, parts)]
        for p in parts:  # the centre of every part is inside
            world = layout.objects[0].to_world(np.array([p.center]))
            assert layout.objects[0].to_local(world) == pytest.approx(np.array([p.center]))
            assert layout.occupancy(world)[0]
        if kind in ("chair", "table"):
            under = layout.objects[0].to_world(np.array([[0.0, 0.0, 0.2]]))  # between the legs
            assert not layout.occupancy(under)[0]
        if kind in ("bookshelf", "cabinet"):  # between two boards, behind the open front
            boards = sorted(p.center[2] for p in parts if p.size[0] < 2 and p.size[2] < 0.05)
            z = (boards[0] + boards[1]) / 2
            assert not layout.occupancy(layout.objects[0].to_world(np.array([[0.0, 0.0, z]])))[0]


def test_structure_labels_and_no_shared_vertices():
    layout, mesh = make_scene("scene0000_00", 0, edge_length=0.3)
    assert set(STRUCTURE_IDS) <= set(np.unique(mesh.face_labels).tolist())
    per_vertex = np.zeros(len(mesh.vertices), np.int64) - 1
    for k in range(3):
        per_vertex[mesh.faces[:, k]] = mesh.face_labels
    assert np.array_equal(per_vertex, mesh.vertex_labels.astype(np.int64))
    # every structure surface faces free space: just in front of its centre is free, behind is matter
    for s in layout.surfaces:
        centre = np.asarray(s.origin) + (np.asarray(s.axis_u) + np.asarray(s.axis_v)) / 2
        normal = np.cross(s.axis_u, s.axis_v)
        normal /= np.linalg.norm(normal)
        front, back = layout.occupancy(np.array([centre + 0.02 * normal, centre - 0.02 * normal]))
        assert not front and back, s.name
        assert s.label == BY_NAME[s.category].nyu40id


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
    assert 2.5 < len(m2.faces) / len(m1.faces) < 4.5
