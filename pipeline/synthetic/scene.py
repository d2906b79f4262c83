"""A synthetic apartment: analytic layout (`SceneLayout`) and its triangle mesh (`SceneMesh`).

World frame: z up, metres. 2–4 rooms joined by open doorways (a row, or rooms off a corridor),
windows opening onto a neighbouring facade, composite furniture (`furniture`), all analytic:
`SceneLayout.occupancy(points)` says for any world point whether it is inside matter (walls,
slabs, facade, furniture), which tests compare the pipeline's labels and amodal depth against.
Structure surfaces are open single-sided sheets facing free space; furniture is the boundary of a
union of solids. Every surface and object has its own vertices, so no vertex is shared between
labels. The layout is written next to each scene (`<scene>_layout.json`); the pipeline never reads it.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipeline.atomic import write_text_atomic

from .categories import BY_NAME
from .furniture import CATALOGUE, local_footprint
from .plan import DOOR_KEEPOUT, Opening, Room, Surface, draw_openings, draw_rooms
from .primitives import rectangle
from .solids import Solid, any_contains, union_mesh
from .structure import facades, room_surfaces, shell_contains, shell_solids
from .texture import surface_colors


@dataclass
class Furniture:
    """A composite piece: `parts` (solids in its own frame, see `furniture`) placed with its frame
    origin at `center` (world, metres, z = 0 on the floor) and turned by `yaw` radians about +z."""

    name: str
    category: str
    label: int
    kind: str
    center: list[float]
    yaw: float
    parts: list[Solid]
    face_range: list[int] | None = None

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> the object's frame."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        d = np.asarray(points, dtype=np.float64) - np.asarray(self.center)
        return np.column_stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]])

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) object-frame points -> world."""
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        p = np.asarray(points, dtype=np.float64)
        return np.column_stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1], p[:, 2]]) + np.asarray(self.center)

    def footprint(self, margin: float = 0.0) -> np.ndarray:
        """World axis-aligned [xmin, ymin, xmax, ymax] of the piece, widened by `margin`."""
        x0, y0, x1, y1 = local_footprint(self.parts)
        corners = self.to_world(np.array([[x, y, 0.0] for x in (x0, x1) for y in (y0, y1)]))
        return np.concatenate([corners[:, :2].min(0) - margin, corners[:, :2].max(0) + margin])


@dataclass
class SceneLayout:
    """Analytic description of one apartment (see the module docstring)."""

    scene_id: str
    seed: int
    height: float
    wall_thickness: float
    edge_length: float
    rooms: list[Room]
    openings: list[Opening]
    surfaces: list[Surface]
    objects: list[Furniture]
    outside: list[Solid] = field(default_factory=list)
    n_vertices: int = 0
    n_faces: int = 0

    @property
    def room_size(self) -> list[float]:
        """[x_max, y_max, height] of the rooms' free space (rooms start at x, y >= 0)."""
        boxes = np.array([r.box for r in self.rooms])
        return [float(boxes[:, 2].max()), float(boxes[:, 3].max()), float(self.height)]

    def shell(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: world points inside walls, floor or ceiling slabs."""
        return shell_contains(*shell_solids(self.rooms, self.openings, self.height), points)

    def occupancy(self, points: np.ndarray) -> np.ndarray:
        """(N,) bool: world `points` (N, 3, metres) inside matter: the shell, the facades outside or
        any piece of furniture. Boundaries count as free."""
        points = np.asarray(points, dtype=np.float64)
        inside = self.shell(points) | any_contains(self.outside, points)
        for obj in self.objects:
            inside |= any_contains(obj.parts, obj.to_local(points))
        return inside

    def room_of(self, points: np.ndarray) -> np.ndarray:
        """(N,) int: index of the room whose free box holds each (N, 2+) point's x, y, else -1."""
        p = np.asarray(points, dtype=np.float64)
        out = np.full(len(p), -1)
        for k, r in enumerate(self.rooms):
            out[(p[:, 0] > r.box[0]) & (p[:, 0] < r.box[2]) & (p[:, 1] > r.box[1]) & (p[:, 1] < r.box[3])] = k
        return out

    def to_json(self) -> str:
        """Deterministic JSON text (sorted keys)."""
        return json.dumps(asdict(self), indent=1, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> "SceneLayout":
        data = json.loads(text)
        data["rooms"] = [Room(**r) for r in data["rooms"]]
        data["openings"] = [Opening(**o) for o in data["openings"]]
        data["surfaces"] = [Surface(**s) for s in data["surfaces"]]
        data["outside"] = [Solid(**s) for s in data["outside"]]
        data["objects"] = [Furniture(**{**o, "parts": [Solid(**p) for p in o["parts"]]}) for o in data["objects"]]
        return SceneLayout(**data)

    def write(self, path: Path) -> None:
        write_text_atomic(path, self.to_json())


@dataclass
class SceneMesh:
    """The apartment as one triangle mesh (world frame, z up, metres).

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


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])


def _keepouts(rooms: list[Room], openings: list[Opening], k: int) -> list[np.ndarray]:
    """Room k's camera zone, and for each doorway of room k the floor from the doorway to the zone."""
    zone = np.asarray(rooms[k].camera_zone)
    boxes = [zone]
    for o in openings:
        if o.kind != "doorway" or k not in o.rooms:
            continue
        side = o.side if o.rooms[0] == k else -o.side
        lo, hi = np.array(o.box[:2]), np.array(o.box[3:5])
        inner = np.where(np.arange(2) == o.axis, lo if side > 0 else hi, (lo + hi) / 2)
        front = inner.copy()
        front[o.axis] -= side * DOOR_KEEPOUT
        target = np.clip(front, zone[:2], zone[2:])
        pts = np.array([lo, hi, front, target])
        pts[:2, o.axis] = inner[o.axis]
        boxes.append(np.concatenate([pts.min(0) - 0.4, pts.max(0) + 0.4]))
    return boxes


def _place(room: Room, kind: str, blocked: list[np.ndarray], name: str, rng: np.random.Generator) -> Furniture | None:
    """Try to stand one piece of `kind` in `room` clear of `blocked` (40 attempts), else None."""
    category, builder, _cap, back_to_wall = CATALOGUE[kind]
    parts = builder(rng)
    x0, y0, x1, y1 = room.box
    for _attempt in range(40):
        if back_to_wall or rng.random() < 0.5:  # against a wall, back (+y local) to it
            side = int(rng.integers(4))
            yaw = (0.0, -math.pi / 2, math.pi, math.pi / 2)[side] + rng.uniform(-0.04, 0.04)
        else:
            yaw = float(rng.integers(4) * math.pi / 2 + rng.uniform(-0.3, 0.3))
            side = -1
        obj = Furniture(name, category, BY_NAME[category].nyu40id, kind, [0.0, 0.0, 0.0], float(yaw), parts)
        foot = obj.footprint()
        centre = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        gap = rng.uniform(0.04, 0.12)
        if side == 0:
            centre[1] = y1 - gap - foot[3]
        elif side == 1:
            centre[0] = x1 - gap - foot[2]
        elif side == 2:
            centre[1] = y0 + gap - foot[1]
        elif side == 3:
            centre[0] = x0 + gap - foot[0]
        obj.center = [float(centre[0]), float(centre[1]), 0.0]
        foot = obj.footprint()
        inside = foot[0] > x0 + 0.03 and foot[1] > y0 + 0.03 and foot[2] < x1 - 0.03 and foot[3] < y1 - 0.03
        if inside and not any(_overlaps(obj.footprint(0.05), b) for b in blocked):
            return obj
    return None


def _furnish(rooms: list[Room], openings: list[Opening], furniture_range: tuple[int, int],
             rng: np.random.Generator) -> list[Furniture]:
    names = sorted(CATALOGUE)
    objects: list[Furniture] = []
    for k, room in enumerate(rooms):
        if room.kind != "room":
            continue
        blocked = _keepouts(rooms, openings, k)
        count = int(rng.integers(furniture_range[0], furniture_range[1] + 1))
        used: dict[str, int] = {}
        placed = 0
        for _ in range(count * 4):  # several candidates per slot: big pieces often do not fit
            if placed == count:
                break
            kind = names[int(rng.integers(len(names)))]
            category = CATALOGUE[kind][0]
            if used.get(category, 0) >= CATALOGUE[kind][2]:
                continue
            obj = _place(room, kind, blocked, f"{room.name}_{category}_{used.get(category, 0)}", rng)
            if obj is None:
                continue
            blocked.append(obj.footprint())
            used[category] = used.get(category, 0) + 1
            objects.append(obj)
            placed += 1
    return objects


def make_layout(scene_id: str, seed: int, edge_length: float, furniture_range: tuple[int, int],
                rooms_range: tuple[int, int], rng: np.random.Generator,
                wall_range: tuple[float, float] = (0.1, 0.15)) -> SceneLayout:
    """Draw an apartment: plan, openings, structure, facades and furniture outside the camera zones."""
    height = float(rng.uniform(2.5, 2.9))
    rooms, pairs, thickness = draw_rooms(int(rng.integers(rooms_range[0], rooms_range[1] + 1)), wall_range, rng)
    openings = draw_openings(rooms, pairs, height, rng)
    surfaces = room_surfaces(rooms, openings, height)
    outside_surfaces, outside = facades(rooms, openings, height, rng)
    objects = _furnish(rooms, openings, furniture_range, rng)
    return SceneLayout(scene_id, seed, height, thickness, float(edge_length), rooms, openings,
                       surfaces + outside_surfaces, objects, outside)


def _part_mesh(layout: SceneLayout, part: Surface | Furniture, blocked) -> tuple[np.ndarray, np.ndarray]:
    edge = layout.edge_length
    if isinstance(part, Surface):
        if part.name.startswith("facade"):  # large and far: a coarser grid keeps the face count down
            edge = max(4 * edge, 0.2)
        return rectangle(np.asarray(part.origin), np.asarray(part.axis_u), np.asarray(part.axis_v), edge)
    return union_mesh(part.parts, edge, part.to_world, blocked)


def build_mesh(layout: SceneLayout, rng: np.random.Generator) -> SceneMesh:
    """Triangulate every surface and object of `layout` and colour its vertices.

    Also fills `face_range`, `n_vertices` and `n_faces` of the layout. Colours come from
    `texture.surface_colors` with `rng` (per-object base colour and procedural pattern).
    """
    parts = list(layout.surfaces) + list(layout.objects)
    verts, faces, colors, vlabels, flabels, fparts = [], [], [], [], [], []
    nv = nf = 0
    for index, part in enumerate(parts):
        v, f = _part_mesh(layout, part, layout.shell)
        part.face_range = [nf, nf + len(f)]
        verts.append(v)
        faces.append(f + nv)
        colors.append(surface_colors(part.category, v, rng))
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
               rooms_range: tuple[int, int] = (2, 4),
               wall_range: tuple[float, float] = (0.1, 0.15)) -> tuple[SceneLayout, SceneMesh]:
    """Layout and mesh of one apartment, deterministic from (`seed`, `scene_id`); `wall_range`:
    thickness range of the walls between rooms (metres).

    Example: ``layout, mesh = make_scene("scene0000_00", 0, edge_length=0.05)``.
    """
    stream = np.random.SeedSequence([seed, *scene_id.encode()])
    layout_rng, color_rng = (np.random.default_rng(s) for s in stream.spawn(2))
    layout = make_layout(scene_id, seed, edge_length, furniture_range, rooms_range, layout_rng, wall_range)
    return layout, build_mesh(layout, color_rng)
