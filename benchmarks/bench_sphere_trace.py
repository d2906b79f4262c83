"""Depth of a signed distance field: naive parallel tracing vs coarse to fine vs dense grid + marching cubes.

One run, the same field and camera for every method, on two analytic scenes whose exact depth is
known: ``room`` (the camera inside a 4 × 2.5 × 5 m room with a sphere and a box on the floor: every
ray hits a surface, as in the evaluation) and ``object`` (DIST's setting: one object, a sphere and
a box, 2.5 m in front of the camera, most rays miss it). Methods:

- ``naive``: :func:`naive_parallel_trace`, plain sphere tracing of every pixel ray in parallel, each
  ray stopping when it converges (the same footprint ε and step limit as the others);
- ``c2f``: :func:`dgs_core.sphere_trace.trace` with its defaults (start at ¼ resolution, two 2×2
  splits, safe cone steps); ``c2f α=1.3``: the same with over-relaxed steps; ``c2f from ⅛``: starting
  at an eighth of the resolution (three splits);
- ``grid dense`` / ``grid c2f``: the field on a 128³ grid over the scene box (in-frustum cells only;
  dense, or coarse to fine as ``predict`` does), marching cubes at 0 and the mesh ray-cast
  (:func:`grid_and_marching_cubes`), i.e. today's mesh path of the evaluation.

Per method: field queries (deterministic), seconds (noisy on a shared machine), and the accuracy
against the exact depth: pixels whose hit/miss differs from it, and on pixels both call a hit the
median absolute depth error and the pixels off by > 5 cm (silhouettes). By default each query also
runs a small MLP (``--cost-width``, 0 = off) so that the seconds reflect a query's cost in a network
rather than in an analytic formula; the MLP's output is multiplied by 0 and cannot change any depth.

    python benchmarks/bench_sphere_trace.py [--sizes 256x192 512x512] [--scenes room object] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

Field = Callable[[torch.Tensor], torch.Tensor]


def _box_sdf(p: torch.Tensor, centre: tuple, half: tuple) -> torch.Tensor:
    q = (p - torch.tensor(centre, dtype=p.dtype)).abs() - torch.tensor(half, dtype=p.dtype)
    return torch.linalg.vector_norm(q.clamp_min(0), dim=-1) + q.max(dim=-1).values.clamp_max(0)


def _sphere_sdf(p: torch.Tensor, centre: tuple, radius: float) -> torch.Tensor:
    return torch.linalg.vector_norm(p - torch.tensor(centre, dtype=p.dtype), dim=-1) - radius


def _slab(d: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit depth of rays t·d (..., 3) through the box [lo, hi]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = lo / d, hi / d
    return np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)


def _sphere_hit(d: np.ndarray, centre: tuple, radius: float) -> np.ndarray:
    c = np.asarray(centre, dtype=np.float64)
    a, b, k = (d * d).sum(-1), -2 * d @ c, c @ c - radius ** 2
    disc = b * b - 4 * a * k
    with np.errstate(invalid="ignore"):
        return np.where(disc >= 0, (-b - np.sqrt(disc)) / (2 * a), np.inf)


@dataclass(frozen=True)
class Scene:
    """An analytic scene in the camera frame (metres): its SDF, exact first-hit depth, grid box, far plane."""

    name: str
    sphere: tuple[tuple, float]
    furniture: tuple[tuple, tuple]
    room: tuple[tuple, tuple] | None   # (lo, hi) of a room the camera stands in, or None
    box: tuple[tuple, tuple]           # the grid's box (a frame's GT visible-mesh box, widened so the
                                       # room's walls lie between cell centres, not on the box faces)
    z_far: float

    def sdf(self, p: torch.Tensor) -> torch.Tensor:
        f = torch.minimum(_sphere_sdf(p, *self.sphere), _box_sdf(p, *self.furniture))
        if self.room is not None:
            lo, hi = (torch.tensor(v, dtype=p.dtype) for v in self.room)
            f = torch.minimum(f, torch.minimum(p - lo, hi - p).min(dim=-1).values)
        return f

    def exact_depth(self, d: np.ndarray) -> np.ndarray:
        """(H, W) z-depth of the first surface along rays t·d (z = 1), NaN where none before z_far."""
        c, half = (np.asarray(v, dtype=np.float64) for v in self.furniture)
        enter, leave = _slab(d, c - half, c + half)
        t = np.minimum(_sphere_hit(d, *self.sphere), np.where((enter <= leave) & (enter > 0), enter, np.inf))
        if self.room is not None:
            t = np.minimum(t, _slab(d, *(np.asarray(v, dtype=np.float64) for v in self.room))[1])
        return np.where(t <= self.z_far, t, np.nan)


SCENES = {
    "room": Scene("room", ((0.6, 0.5, 2.5), 0.5), ((-0.9, 0.9, 3.0), (0.5, 0.4, 0.5)),
                  ((-2.0, -1.2, -0.5), (2.0, 1.3, 4.5)), ((-2.1, -1.3, 0.05), (2.1, 1.4, 4.6)), 10.0),
    "object": Scene("object", ((0.0, 0.0, 2.5), 0.45), ((0.0, 0.25, 2.5), (0.8, 0.2, 0.4)), None,
                    ((-0.8, -0.45, 2.05), (0.8, 0.45, 2.95)), 6.0),
}


def naive_parallel_trace(field: Field, width: int, height: int, intrinsics: tuple, *, eps_pixels: float = 0.5,
                         max_steps: int = 96, z_near: float = 0.05, z_far: float = 10.0,
                         dtype: torch.dtype = torch.float32) -> tuple[np.ndarray, int]:
    """Plain sphere tracing of every pixel ray at once (the reference): t ← t + f/‖d‖ from z_near
    until f < eps_pixels·t/max(fx, fy) (hit), t > z_far or max_steps steps (miss); converged rays
    stop being queried. Returns the (H, W) z-depth (NaN = miss) and the number of field queries."""
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=dtype) + 0.5, torch.arange(width, dtype=dtype) + 0.5,
                            indexing="ij")
    d = torch.stack(((xs - cx) / fx, (ys - cy) / fy, torch.ones_like(xs)), -1).reshape(-1, 3)
    norm = torch.linalg.vector_norm(d, dim=-1)
    t = torch.full((len(d),), z_near, dtype=dtype)
    depth = torch.full((len(d),), float("nan"), dtype=dtype)
    active, queries = torch.arange(len(d)), 0
    for step in range(max_steps + 1):
        f = field(t[active, None] * d[active])
        queries += len(active)
        hit = f < (eps_pixels / max(fx, fy)) * t[active]
        depth[active[hit]] = t[active[hit]]
        go = ~hit & (t[active] <= z_far)
        if step == max_steps:
            break
        active = active[go]
        t[active] = t[active] + f[go] / norm[active]
        active = active[t[active] <= z_far]
    return depth.reshape(height, width).numpy(), queries


def grid_and_marching_cubes(field: Field, width: int, height: int, intrinsics: tuple, box: tuple,
                            resolution: int = 128, grid: str = "dense") -> tuple[np.ndarray, int]:
    """Today's mesh path: the field on the ``resolution``³ grid tiling ``box`` (cell centres,
    in-frustum cells only, dense or coarse to fine as ``dgs_core.infer``), marching cubes at level 0,
    and the mesh ray-cast at the camera. Returns the (H, W) z-depth (NaN = miss) and the queries."""
    from benchmark.render import render_depth
    from dgs_core.camera import normalised_intrinsics
    from dgs_core.grid_refine import RefineStats, refine, start_stride
    from dgs_core.infer import frustum_mask, grid_geometry
    from pipeline.geometry.isosurface import FREE, extract_mesh

    origin, cell = grid_geometry(*box, resolution)
    inside = frustum_mask(origin, cell, resolution, normalised_intrinsics(*intrinsics, width, height))

    def at(ijk: np.ndarray) -> np.ndarray:
        return field(torch.from_numpy(origin + ijk * cell).float()).numpy()

    if grid == "dense":
        values = np.full(inside.shape, FREE["sdf"], dtype=np.float32)
        values[inside] = at(np.argwhere(inside))
        stats = RefineStats(queries=int(inside.sum()))
    else:
        band = start_stride(resolution) * float(np.linalg.norm(cell))
        values, stats = refine(at, inside, level=0.0, band=band, free=FREE["sdf"])
    vertices, faces = extract_mesh(values, origin, cell, field="sdf")
    return render_depth(vertices, faces, *intrinsics, width, height), stats.queries


def with_cost(field: Field, width: int) -> Field:
    """``field`` plus a random MLP (positional encoding → 5 × ``width`` → 1) run on every query and
    multiplied by 0, so a query costs about what a small decoder costs; ``width`` 0 = ``field``."""
    if width == 0:
        return field
    from dgs_core.model.decoder import PositionalEncoding

    torch.manual_seed(0)
    pe = PositionalEncoding(6)
    layers: list[torch.nn.Module] = [torch.nn.Linear(pe.d_out, width), torch.nn.ReLU()]
    for _ in range(4):
        layers += [torch.nn.Linear(width, width), torch.nn.ReLU()]
    mlp = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1))

    def costly(p: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return field(p) + 0.0 * mlp(pe(p.float()))[:, 0].to(p.dtype)
    return costly


def accuracy(depth: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Against the exact depth: pixels whose hit/miss differs; on pixels both hit, the median |error|
    (mm) and the pixels off by more than 5 cm (silhouettes: a ray passing an object closer than the
    footprint ε stops there, while the exact depth is the surface behind)."""
    both = np.isfinite(depth) & np.isfinite(exact)
    err = np.abs(depth[both] - exact[both]) * 1000
    return {"hit_mismatch": int((np.isfinite(depth) != np.isfinite(exact)).sum()),
            "err_median_mm": float(np.median(err)) if err.size else math.nan,
            "off_5cm": int((err > 50).sum())}


def run(scene: Scene, width: int, height: int, cost_width: int) -> list[dict]:
    """Every method on one scene at one size, in one process, one after the other."""
    from dgs_core.sphere_trace import TraceConfig, pixel_rays, trace

    focal = 0.9 * width  # the virtual camera's field of view (230.4 px at 256 wide)
    k = (focal, focal, width / 2, height / 2)
    field = with_cost(scene.sdf, cost_width)
    exact = scene.exact_depth(pixel_rays(width, height, k).numpy())
    methods = {
        "naive": lambda: naive_parallel_trace(field, width, height, k, z_far=scene.z_far),
        "c2f": lambda: _traced(trace(field, width, height, k, TraceConfig(z_far=scene.z_far))),
        "c2f α=1.3": lambda: _traced(trace(field, width, height, k, TraceConfig(z_far=scene.z_far, alpha=1.3))),
        "c2f from ⅛": lambda: _traced(trace(field, width, height, k, TraceConfig(z_far=scene.z_far, start_level=3))),
        "grid dense": lambda: grid_and_marching_cubes(field, width, height, k, scene.box),
        "grid c2f": lambda: grid_and_marching_cubes(field, width, height, k, scene.box, grid="coarse_to_fine"),
    }
    rows = []
    for name, method in methods.items():
        start = time.perf_counter()
        depth, queries = method()
        rows.append({"scene": scene.name, "size": f"{width}x{height}", "method": name, "queries": queries,
                     "seconds": time.perf_counter() - start, **accuracy(np.asarray(depth, np.float64), exact)})
    naive = rows[0]["queries"]
    for row in rows:
        row["fewer_than_naive"] = naive / row["queries"]
    return rows


def _traced(result) -> tuple[np.ndarray, int]:
    return result.depth.numpy(), result.queries


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/bench_sphere_trace.py", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["256x192", "512x512"], help="image sizes WxH")
    p.add_argument("--scenes", nargs="+", default=list(SCENES), choices=list(SCENES))
    p.add_argument("--cost-width", type=int, default=64, help="hidden width of the per-query MLP (0 = none)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        for name in args.scenes:
            rows += run(SCENES[name], width, height, args.cost_width)
    print(f"{'scene':7} {'size':8} {'method':11} {'queries':>9} {'÷ naive':>8} {'seconds':>8} "
          f"{'hit≠exact':>9} {'err med mm':>10} {'off>5cm':>8}")
    for r in rows:
        print(f"{r['scene']:7} {r['size']:8} {r['method']:11} {r['queries']:>9} {r['fewer_than_naive']:>8.2f} "
              f"{r['seconds']:>8.2f} {r['hit_mismatch']:>9} {r['err_median_mm']:>10.2f} {r['off_5cm']:>8}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
