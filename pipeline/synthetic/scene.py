"""A synthetic room: analytic layout (`SceneLayout`) and its triangle mesh (`SceneMesh`).

World frame: z up, metres; the room spans [0, Lx] x [0, Ly] x [0, H]. Structure surfaces (floor,
ceiling, four walls, a door and a window set 1 cm in front of two walls) are single-sided open
sheets whose normals point into the room; furniture are boxes and vertical cylinders, closed or
open (no bottom face), with normals pointing out. Every surface and object has its own vertices, so
no vertex is shared between labels. The layout is the analytic truth for tests of later stages
(`<scene>_layout.json`); the pipeline itself never reads it.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipeline.atomic import write_text_atomic

from .categories import BY_NAME
from .primitives import box, cylinder, rectangle
from .texture import surface_colors

# Furniture catalogue: primitive, size ranges (x, y, z extents in metres; a cylinder's x is its
# diameter), how many per room at most.
FURNITURE = {
    "bed": ("box", ((1.4, 1.8), (1.9, 2.1), (0.45, 0.6)), 1),
    "sofa": ("box", ((1.5, 2.1), (0.8, 0.95), (0.75, 0.9)), 1),
    "chair": ("box", ((0.42, 0.5), (0.42, 0.5), (0.8, 0.95)), 3),
    "table": ("box", ((0.8, 1.4), (0.6, 0.9), (0.72, 0.76)), 1),
    "desk": ("box", ((1.0, 1.5), (0.6, 0.75), (0.72, 0.76)), 1),
    "cabinet": ("box", ((0.5, 1.0), (0.4, 0.6), (0.8, 1.9)), 2),
    "bookshelf": ("box", ((0.6, 1.1), (0.3, 0.4), (1.6, 2.0)), 2),
    "lamp": ("cylinder", ((0.2, 0.35), None, (1.2, 1.7)), 2),
    "ottoman": ("cylinder", ((0.4, 0.7), None, (0.4, 0.5)), 2),
}
WALL_GAP = 0.01  # door and window panels float this far in front of their wall (metres)


@dataclass
class Surface:
    """A structural rectangle `origin + s*axis_u + t*axis_v`, s, t in [0, 1] (world, metres).

    Its normal `cross(axis_u, axis_v)` points into the room. `face_range` = [start, stop) of its
    faces in the scene mesh.
    """

    name: str
    category: str
    label: int
    origin: list[float]
    axis_u: list[float]
    axis_v: list[float]
    face_range: list[int] = field(default_factory=list)


@dataclass
class Furniture:
    """A box or vertical cylinder: `center` (world, metres), `size` extents in its own frame
    (cylinder: diameter, diameter, height), rotated by `yaw` radians about +z. `closed` False means
    the bottom face is missing (an open scan mesh)."""

    name: str
    category: str
    label: int
    primitive: str
    center: list[float]
    size: list[float]
    yaw: float
    closed: bool
    face_range: list[int] = field(default_factory=list)


@dataclass
class SceneLayout:
    """Analytic description of one room; `camera_zone` [xmin, ymin, xmax, ymax] is kept free of
    furniture for the camera path."""

    scene_id: str
    seed: int
    room_size: list[float]
    edge_length: float
    camera_zone: list[float]
    surfaces: list[Surface]
    objects: list[Furniture]
    n_vertices: int = 0
    n_faces: int = 0

    def to_json(self) -> str:
        """Deterministic JSON text (sorted keys, fixed float formatting by `json`)."""
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> "SceneLayout":
        data = json.loads(text)
        data["surfaces"] = [Surface(**s) for s in data["surfaces"]]
        data["objects"] = [Furniture(**o) for o in data["objects"]]
        return SceneLayout(**data)

    def write(self, path: Path) -> None:
        write_text_atomic(path, self.to_json())


@dataclass
class SceneMesh:
    """The room as one triangle mesh (world frame, z up, metres).

    vertices (V, 3) float32; faces (F, 3) int32; vertex_colors (V, 3) uint8 albedo (sRGB);
    vertex_labels (V,) uint8 NYU40; face_labels (F,) uint8 NYU40; face_parts (F,) int32 index of the
    surface (0..S-1) or object (S..) of `layout` the face belongs to.
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray
    vertex_labels: np.ndarray
    face_labels: np.ndarray
    face_parts: np.ndarray


def _structure(size: np.ndarray, rng: np.random.Generator) -> list[Surface]:
    lx, ly, h = size
    ex, ey, ez = np.eye(3)
    rects = [
        ("floor", "floor", [0, 0, 0], lx * ex, ly * ey),
        ("ceiling", "ceiling", [0, 0, h], ly * ey, lx * ex),
        # Walls run clockwise seen from above so that cross(axis_u, +z) points into the room.
        ("wall_y0", "wall", [lx, 0, 0], -lx * ex, h * ez),
        ("wall_x1", "wall", [lx, ly, 0], -ly * ey, h * ez),
        ("wall_y1", "wall", [0, ly, 0], lx * ex, h * ez),
        ("wall_x0", "wall", [0, 0, 0], ly * ey, h * ez),
    ]
    out = [Surface(n, c, BY_NAME[c].nyu40id, list(map(float, o)), list(map(float, u)),
                   list(map(float, v))) for n, c, o, u, v in rects]
    door_wall, window_wall = rng.choice(4, size=2, replace=False)
    for name, wall_index, width, height, bottom in (
        ("door", door_wall, 0.9, 2.05, 0.0),
        ("window", window_wall, rng.uniform(1.0, 1.6), rng.uniform(1.0, 1.3), 0.9),
    ):
        wall = out[2 + wall_index]
        along = np.asarray(wall.axis_u)
        length = float(np.linalg.norm(along))
        start = rng.uniform(0.3, length - width - 0.3)
        inward = np.cross(along, ez) / length  # into the room (normal of the wall)
        origin = np.asarray(wall.origin) + along / length * start + bottom * ez + WALL_GAP * inward
        out.append(Surface(name, name, BY_NAME[name].nyu40id, list(map(float, origin)),
                           list(map(float, along / length * width)), list(map(float, height * ez))))
    return out


def _footprint(center: np.ndarray, size: np.ndarray, yaw: float, margin: float) -> np.ndarray:
    """Axis-aligned [xmin, ymin, xmax, ymax] of the rotated footprint, widened by `margin`."""
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    hx = 0.5 * (c * size[0] + s * size[1]) + margin
    hy = 0.5 * (s * size[0] + c * size[1]) + margin
    return np.array([center[0] - hx, center[1] - hy, center[0] + hx, center[1] + hy])


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def _keepouts(surfaces: list[Surface], zone: np.ndarray) -> list[np.ndarray]:
    """Camera zone plus 0.8 m in front of the door, as footprints that furniture must avoid."""
    boxes = [zone]
    door = next(s for s in surfaces if s.name == "door")
    o, u = np.asarray(door.origin), np.asarray(door.axis_u)
    front = np.cross(u, [0.0, 0.0, 1.0]) / np.linalg.norm(u) * 0.8
    pts = np.array([o, o + u, o + front, o + u + front])[:, :2]
    boxes.append(np.concatenate([pts.min(0), pts.max(0)]))
    return boxes


def _place_furniture(size: np.ndarray, blocked: list[np.ndarray], count: int, open_fraction: float,
                     rng: np.random.Generator) -> list[Furniture]:
    names = sorted(FURNITURE)
    used: dict[str, int] = {}
    objects: list[Furniture] = []
    for _ in range(count * 4):  # several candidates per slot: big pieces often do not fit
        if len(objects) == count:
            break
        name = names[rng.integers(len(names))]
        primitive, ranges, cap = FURNITURE[name]
        if used.get(name, 0) >= cap:
            continue
        dims = [rng.uniform(*r) if r is not None else None for r in ranges]
        dims[1] = dims[0] if dims[1] is None else dims[1]
        dims = np.array(dims)
        yaw = float(rng.integers(4) * math.pi / 2 + rng.uniform(-0.2, 0.2))
        for _attempt in range(40):
            center = np.array([rng.uniform(0, size[0]), rng.uniform(0, size[1]), dims[2] / 2])
            foot = _footprint(center, dims, yaw, 0.0)
            if rng.random() < 0.7:  # most furniture stands against a wall, a few cm from it
                axis, high = int(rng.integers(2)), bool(rng.integers(2))
                half = (foot[2 + axis] - foot[axis]) / 2
                gap = rng.uniform(0.04, 0.12) + half
                center[axis] = size[axis] - gap if high else gap
                foot = _footprint(center, dims, yaw, 0.0)
            inside = foot[0] > 0.03 and foot[1] > 0.03 and foot[2] < size[0] - 0.03 and foot[3] < size[1] - 0.03
            if inside and not any(_overlaps(_footprint(center, dims, yaw, 0.05), b) for b in blocked):
                break
        else:
            continue
        blocked.append(foot)
        index = used.get(name, 0)
        used[name] = index + 1
        objects.append(Furniture(f"{name}_{index}", name, BY_NAME[name].nyu40id, primitive,
                                 list(map(float, center)), list(map(float, dims)), yaw,
                                 bool(rng.random() >= open_fraction)))
    return objects


def make_layout(scene_id: str, seed: int, edge_length: float, furniture_range: tuple[int, int],
                open_fraction: float, rng: np.random.Generator) -> SceneLayout:
    """Draw a room layout: size, door, window and non-overlapping furniture outside the camera zone."""
    size = np.array([rng.uniform(4.5, 7.0), rng.uniform(4.0, 6.0), rng.uniform(2.5, 3.0)])
    zone = np.array([0.32 * size[0], 0.32 * size[1], 0.68 * size[0], 0.68 * size[1]])
    surfaces = _structure(size, rng)
    count = int(rng.integers(furniture_range[0], furniture_range[1] + 1))
    objects = _place_furniture(size, _keepouts(surfaces, zone), count, open_fraction, rng)
    return SceneLayout(scene_id, seed, list(map(float, size)), float(edge_length),
                       list(map(float, zone)), surfaces, objects)


def _part_mesh(part: Surface | Furniture, edge: float) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(part, Surface):
        return rectangle(np.asarray(part.origin), np.asarray(part.axis_u), np.asarray(part.axis_v), edge)
    size = np.asarray(part.size)
    if part.primitive == "box":
        v, f = box(size, edge, bottom=part.closed)
    else:
        v, f = cylinder(size[0] / 2, size[2], edge, bottom=part.closed)
    c, s = math.cos(part.yaw), math.sin(part.yaw)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return v @ rot.T + np.asarray(part.center), f


def build_mesh(layout: SceneLayout, rng: np.random.Generator) -> SceneMesh:
    """Triangulate every surface and object of `layout` and colour its vertices.

    Also fills `face_range`, `n_vertices` and `n_faces` of the layout. Colours come from
    `texture.surface_colors` with `rng` (per-object base colour and procedural pattern).
    """
    parts = list(layout.surfaces) + list(layout.objects)
    verts, faces, colors, vlabels, flabels, fparts = [], [], [], [], [], []
    nv = nf = 0
    for index, part in enumerate(parts):
        v, f = _part_mesh(part, layout.edge_length)
        part.face_range = [nf, nf + len(f)]
        verts.append(v)
        faces.append(f + nv)
        colors.append(surface_colors(part.category, part.name, v, rng))
        vlabels.append(np.full(len(v), part.label, np.uint8))
        flabels.append(np.full(len(f), part.label, np.uint8))
        fparts.append(np.full(len(f), index, np.int32))
        nv += len(v)
        nf += len(f)
    layout.n_vertices, layout.n_faces = nv, nf
    return SceneMesh(np.concatenate(verts).astype(np.float32), np.concatenate(faces).astype(np.int32),
                     np.concatenate(colors), np.concatenate(vlabels), np.concatenate(flabels),
                     np.concatenate(fparts))


def make_scene(scene_id: str, seed: int, edge_length: float = 0.25,
               furniture_range: tuple[int, int] = (4, 7),
               open_fraction: float = 0.5) -> tuple[SceneLayout, SceneMesh]:
    """Layout and mesh of one room, deterministic from (`seed`, `scene_id`).

    Example: ``layout, mesh = make_scene("scene0000_00", 0, edge_length=0.035)`` gives ~300k faces.
    """
    stream = np.random.SeedSequence([seed, *scene_id.encode()])
    layout_rng, color_rng = (np.random.default_rng(s) for s in stream.spawn(2))
    layout = make_layout(scene_id, seed, edge_length, furniture_range, open_fraction, layout_rng)
    return layout, build_mesh(layout, color_rng)
