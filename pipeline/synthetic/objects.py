"""Synthetic single objects in the ShapeNetCore v2 layout, with rendered views (SPEC §6.6).

Each model is a composite of closed boxes and vertical cylinders (:mod:`.primitives`) shaped like a
ShapeNet category — chair, table, lamp, bench, cabinet, with those categories' real synset ids — so
the mesh is watertight part by part (parts may touch or overlap; the generalised winding number of
:mod:`pipeline.geometry.winding` decides inside/outside). Written per :mod:`pipeline.formats.shapenet`:
``<synset>/<model>/models/model_normalized.obj`` (material-free, already in the normalised cube,
ShapeNetCore v2 axes: up = +Y, front = −Z), ``views/`` (colour, depth, cameras) and the
``{train,val,test}.lst`` split lists and ``metadata.yaml``. Views look at the origin from a random
azimuth, an elevation and a distance in the configured ranges; they are rendered by
:class:`.render.SceneRenderer` (Embree, one point light), black where nothing is hit.

    python -m pipeline.synthetic.objects --root data/synthetic/shapenet --preset tiny

Same config and seed, same bytes; ``<root>.complete`` (JSON of the config) is written last.
"""
from __future__ import annotations

import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from pipeline.atomic import write_text_atomic
from pipeline.cli import command_parser
from pipeline.errors import run_main
from pipeline.formats import shapenet as sn

from .config import PlainConfig
from .primitives import Mesh, box, cylinder, merge
from .render import PinholeCamera, SceneRenderer

CATEGORIES = {"chair": "03001627", "table": "04379243", "lamp": "03636649", "bench": "02828884",
              "cabinet": "02933112"}
"""Category → ShapeNet synset id (as listed in Occupancy Networks' ``data/metadata.yaml``)."""
Z_UP_TO_SHAPENET = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
"""Builder frame (z up, front −y) → ShapeNetCore v2 axes (y up, front −z); a proper rotation."""


@dataclass(frozen=True)
class ObjectGeneratorConfig(PlainConfig):
    """Size and content of the synthetic object set (units: metres before normalisation, pixels, degrees).

    categories: keys of :data:`CATEGORIES`. train, val, test: models per category and split.
    views: rendered views per model; image_size: their width = height; focal_ratio: fx = fy = ratio·width.
    distance, elevation_deg: ranges of the camera distance (normalised-cube units) and elevation.
    edge_length: subdivision of the primitives (coarse: the objects are few hundred faces).
    """

    seed: int = 0
    categories: tuple[str, ...] = ("chair", "table", "lamp")
    train: int = 3
    val: int = 1
    test: int = 2
    views: int = 3
    image_size: int = 48
    focal_ratio: float = 1.5
    distance: tuple[float, float] = (1.9, 2.3)
    elevation_deg: tuple[float, float] = (15.0, 40.0)
    edge_length: float = 0.5
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        unknown = sorted(set(self.categories) - set(CATEGORIES))
        if unknown or min(self.train, self.val, self.test) < 1 or self.views < 1 or self.image_size < 8:
            raise ValueError(f"ObjectGeneratorConfig: categories must be among {sorted(CATEGORIES)} (unknown "
                             f"{unknown}), at least one model per split and one view of ≥ 8 pixels, found "
                             f"{self.train}/{self.val}/{self.test} models, {self.views} views, {self.image_size} px")



PRESETS: dict[str, ObjectGeneratorConfig] = {
    # Tests and CI: 3 categories × 6 models, 3 views of 48×48, seconds to generate.
    "tiny": ObjectGeneratorConfig(),
    # Demo: more models and views at 96×96.
    "demo": ObjectGeneratorConfig(categories=("chair", "table", "lamp", "bench", "cabinet"), train=16, val=2,
                                  test=4, views=8, image_size=96),
    # Paired with the scene ablation preset: a larger object set of the same size class as demo.
    "ablation": ObjectGeneratorConfig(categories=("chair", "table", "lamp", "bench", "cabinet"), train=40, val=4,
                                      test=8, views=12, image_size=96),
}
"""The same preset names as the scene generator's (``synthetic.preset`` selects both)."""


Part = tuple[str, tuple[float, float, float], tuple[float, float, float]]
"""(``"box"`` | ``"cylinder"``, size (x, y, z) — a cylinder's x is its diameter —, centre), metres, z up."""


def _legs(width: float, depth: float, height: float, inset: float, thickness: float) -> list[Part]:
    """Four square legs of ``height`` under the corners of a width × depth top, ``inset`` from its edges."""
    return [("box", (thickness, thickness, height), (sx * (width / 2 - inset), sy * (depth / 2 - inset), height / 2))
            for sx in (-1, 1) for sy in (-1, 1)]


def _chair(rng) -> list[Part]:
    w, d, h, t = rng.uniform(0.4, 0.55), rng.uniform(0.4, 0.55), rng.uniform(0.4, 0.5), 0.05
    back = rng.uniform(0.35, 0.55)
    return (_legs(w, d, h - t, 0.03, 0.04) + [("box", (w, d, t), (0, 0, h - t / 2)),
                                                  ("box", (w, t, back), (0, d / 2 - t / 2, h + back / 2))])


def _table(rng) -> list[Part]:
    w, d, h, t = rng.uniform(0.8, 1.4), rng.uniform(0.6, 0.9), rng.uniform(0.7, 0.76), 0.04
    top: list[Part] = [("box", (w, d, t), (0, 0, h - t / 2))]
    if rng.random() < 0.5:  # pedestal: a column on a disc
        return top + [("cylinder", (0.1, 0.1, h - t), (0, 0, (h - t) / 2)),
                      ("cylinder", (0.5, 0.5, 0.03), (0, 0, 0.015))]
    return top + _legs(w, d, h - t, 0.06, 0.05)


def _lamp(rng) -> list[Part]:
    base, pole, shade = rng.uniform(0.2, 0.3), rng.uniform(0.4, 0.6), rng.uniform(0.2, 0.3)
    width = rng.uniform(0.25, 0.4)
    return [("cylinder", (base, base, 0.03), (0, 0, 0.015)), ("cylinder", (0.03, 0.03, pole), (0, 0, pole / 2)),
            ("cylinder", (width, width, shade), (0, 0, pole + shade / 2 - 0.02))]


def _bench(rng) -> list[Part]:
    w, d, h, t = rng.uniform(1.0, 1.6), rng.uniform(0.35, 0.45), rng.uniform(0.4, 0.48), 0.05
    parts: list[Part] = [("box", (w, d, t), (0, 0, h - t / 2))]
    parts += [("box", (0.05, d, h - t), (sx * (w / 2 - 0.1), 0, (h - t) / 2)) for sx in (-1, 1)]
    if rng.random() < 0.5:
        parts.append(("box", (w, 0.04, 0.3), (0, d / 2 - 0.02, h + 0.15)))
    return parts


def _cabinet(rng) -> list[Part]:
    w, d, h = rng.uniform(0.5, 1.0), rng.uniform(0.4, 0.6), rng.uniform(0.8, 1.6)
    return (_legs(w, d, 0.06, 0.04, 0.05) + [("box", (w, d, h), (0, 0, 0.06 + h / 2)),
                                                  ("box", (w + 0.04, d + 0.02, 0.03), (0, 0, 0.06 + h + 0.015))])


BUILDERS: dict[str, Callable[[np.random.Generator], list[Part]]] = {
    "chair": _chair, "table": _table, "lamp": _lamp, "bench": _bench, "cabinet": _cabinet}


def object_mesh(category: str, rng: np.random.Generator, edge: float) -> tuple[Mesh, np.ndarray]:
    """One model of ``category``: (vertices (V, 3) in the normalised cube, ShapeNet axes; faces (F, 3),
    outward, every part closed) and per-vertex sRGB colours (V, 3) uint8 for rendering."""
    parts, colours = [], []
    base = rng.uniform(0.25, 0.85, 3)
    for kind, size, centre in BUILDERS[category](rng):
        if kind == "box":
            v, f = box(np.array(size), edge)
        else:
            v, f = cylinder(size[0] / 2, size[2], edge)
        parts.append((v + np.asarray(centre), f))
        shade = np.clip(base * rng.uniform(0.8, 1.2), 0, 1)
        colours.append(np.tile(np.round(shade * 255), (len(v), 1)))
    vertices, faces = merge(parts)
    vertices, _, _ = sn.normalise_to_unit_cube(vertices @ Z_UP_TO_SHAPENET.T)
    return (vertices, faces), np.concatenate(colours).astype(np.uint8)


def look_at(centre: np.ndarray) -> np.ndarray:
    """(4, 4) camera-to-world of an OpenCV camera at ``centre`` looking at the origin, +Y up."""
    forward = -centre / np.linalg.norm(centre)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, np.cross(forward, right), forward], axis=1)
    pose[:3, 3] = centre
    return pose


@dataclass
class _RenderMesh:
    """What :class:`SceneRenderer` reads of a mesh."""

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray


def render_views(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray, config: ObjectGeneratorConfig,
                 rng: np.random.Generator) -> list[sn.View]:
    """``config.views`` views of a mesh in the normalised cube (see the module docstring)."""
    renderer = SceneRenderer(_RenderMesh(vertices.astype(np.float32), faces.astype(np.int32), colors),
                             light=np.array([1.5, 2.5, 2.0]), threads=1)
    size = config.image_size
    f = config.focal_ratio * size
    camera = PinholeCamera(size, size, f, f, size / 2, size / 2)
    views = []
    for i in range(config.views):
        azimuth = 2 * math.pi * (i + rng.random()) / config.views
        elevation = math.radians(rng.uniform(*config.elevation_deg))
        distance = rng.uniform(*config.distance)
        centre = distance * np.array([math.cos(elevation) * math.sin(azimuth), math.sin(elevation),
                                      math.cos(elevation) * math.cos(azimuth)])
        pose = look_at(centre)
        hits = renderer.cast(camera, pose)
        views.append(sn.View(renderer.shade(hits, pose), hits.depth.astype(np.float32), np.linalg.inv(pose),
                             np.array([f, f, size / 2, size / 2])))
    return views


def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    words = [w for k in keys for w in (k.encode() if isinstance(k, str) else [k])]
    return np.random.default_rng(np.random.SeedSequence([seed, *words]))


def model_ids(config: ObjectGeneratorConfig, category: str) -> dict[str, list[str]]:
    """Split → model ids (32 hexadecimal digits, like ShapeNet's) of one category, from the seed."""
    counts = {"train": config.train, "val": config.val, "test": config.test}
    return {split: [_rng(config.seed, "id", category, split, i).bytes(16).hex() for i in range(n)]
            for split, n in counts.items()}


def generate_objects(root: str | Path, config: ObjectGeneratorConfig, *, progress: bool = True) -> Path:
    """Write the object set into ``root`` (replaced as a whole) and mark it with ``<root>.complete``."""
    root = Path(root)
    marker = root.parent / f"{root.name}.complete"
    partial = root.parent / f"{root.name}.partial"
    marker.unlink(missing_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    jobs = [(c, s, m) for c in config.categories for s, ids in model_ids(config, c).items() for m in ids]
    for category, split, model in tqdm(jobs, desc="synthetic objects", unit="model", disable=not progress):
        rng = _rng(config.seed, "model", model)
        (vertices, faces), colors = object_mesh(category, rng, config.edge_length)
        sn.write_obj(sn.mesh_path(partial, CATEGORIES[category], model), vertices, faces,
                     comment=f"synthetic {category} (dgs toolkit), normalised cube, y up")
        sn.write_views(partial, CATEGORIES[category], model, render_views(vertices, faces, colors, config, rng),
                       config.jpeg_quality)
    for category in config.categories:
        for split, ids in model_ids(config, category).items():
            sn.write_split(partial, CATEGORIES[category], split, ids)
    sn.write_metadata(partial, {CATEGORIES[c]: c for c in config.categories})
    shutil.rmtree(root, ignore_errors=True)
    partial.rename(root)
    write_text_atomic(marker, json.dumps({"config": config.to_dict()}, indent=1, sort_keys=True) + "\n")
    return root


def is_complete(root: str | Path, config: ObjectGeneratorConfig) -> bool:
    """True when ``root`` was completely generated with exactly ``config``."""
    root = Path(root)
    marker = root.parent / f"{root.name}.complete"
    try:
        return root.is_dir() and json.loads(marker.read_text())["config"] == config.to_dict()
    except (OSError, ValueError, KeyError):
        return False


def main(argv: list[str] | None = None) -> int:
    """CLI (module docstring); exit status 2 on a bad option."""
    ap = command_parser("python -m pipeline.synthetic.objects", __doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, required=True, help="output folder (ShapeNet layout)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="how many objects per synset and view size")
    ap.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same bytes)")
    ap.add_argument("--force", action="store_true", help="regenerate even if complete")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    a = ap.parse_args(argv)
    try:
        config = PRESETS[a.preset].with_overrides(seed=a.seed)
    except ValueError as err:
        print(f"pipeline.synthetic.objects: {err}", file=sys.stderr)
        return 2
    if not a.force and is_complete(a.root, config):
        print(f"{a.root}: already complete for this config (use --force to rebuild)")
        return 0
    generate_objects(a.root, config, progress=not a.quiet)
    print(f"{a.root}: written")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main, prog="python -m pipeline.synthetic.objects"))
