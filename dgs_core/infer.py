"""Inference: the trained field on the 128³ evaluation grid of every test frame (SPEC §5).

The grid spans the camera-space bounding box ``[box_min, box_max]`` of the frame's ground-truth
visible mesh, split into ``resolution`` cells per axis that tile the box exactly:

    cell   = (box_max − box_min) / resolution
    origin = box_min + cell / 2                     (the centre of cell (0, 0, 0))
    occupancy[i, j, k] = o(origin + (i, j, k) · cell)    axis 0 = camera x, 1 = y, 2 = z

which is the convention of :func:`pipeline.geometry.isosurface.extract_mesh` (value at the cell centre, vertex
= origin + fractional index · cell, no half-cell offset). Cells whose centre is outside the frustum
(``|u| > 1`` or ``|v| > 1`` or ``z ≤ z_near``) are free (0) and are never sent to the network.
Occupancy follows SPEC §1: 1 = occupied, 0 = free. A model trained with ``loss.kind: sdf`` gives an
``sdf`` grid instead (metres, > 0 free, cells outside the frustum 1 m: free), meshed at level 0.

Output of :func:`predict_manifest` (docs/inference.md): ``<out>/<dataset>/<scene_id>/<frame:06d>.npz``
with ``field`` ("occupancy" | "sdf"), ``level`` (0.5 | 0), the values under the field's name (X, Y, Z)
float16, ``origin`` (3,) float64 and ``cell`` (3,) float64 (camera frame, metres), for an SDF model
predicted with ``depth_source="trace"`` also ``trace_depth`` (H, W) float32 (sphere-traced z-depth,
NaN = miss, :mod:`dgs_core.sphere_trace`) and ``trace_queries``; ``<out>/method.json``, a
``<out>/<dataset>/done`` marker once every frame is there, and for a model with a colour head the
vertex-coloured meshes ``<out>/colored_meshes/...`` (:mod:`dgs_core.color`).

    python -m dgs_core.infer --checkpoint C --manifest M --root DATASET_ROOT --out DIR
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from dgs_core.camera import normalised_intrinsics
from dgs_core.color import colored_mesh_path, vertex_colors, write_colored_mesh
from dgs_core.grid_refine import RefineStats, refine, start_stride
from dgs_core.model import EncoderOutput
from dgs_core.model.inputs import image_to_tensor
from dgs_core.sphere_trace import TraceConfig, trace
from pipeline.atomic import atomic_open, write_text_atomic
from pipeline.cli import command_parser
from pipeline.errors import InputError, run_main
from pipeline.geometry.isosurface import DEPTH_SOURCES, FIELDS, FREE, extract_mesh
from pipeline.manifest import read_manifest
from pipeline.prepare_config import PrepareConfig
from pipeline.shards import ShardReader
from pipeline.testset import EvalFrame, list_test_frames, read_test_frame

RESOLUTION = 128
"""Cells per axis of the evaluation grid (SPEC §5)."""
BATCH_POINTS = 1 << 15
"""Query points per network call: ~0.4 GB of activations for the release model (1280 latent channels)."""
GRIDS = ("dense", "coarse_to_fine")
"""How the grid is evaluated (``evaluate.grid``): every in-frustum cell, or coarse to fine."""
DEFAULT_GRID = "coarse_to_fine"
"""The default of ``evaluate.grid``: same mesh as dense wherever the coarse lattice sees the surface
(checked per frame, see :mod:`dgs_core.grid_refine`), several times fewer network queries."""
Z_NEAR = PrepareConfig.z_near
"""Near plane (m) of the frustum: the prepare stage's default (``PrepareConfig.z_near``)."""


def grid_geometry(box_min: np.ndarray, box_max: np.ndarray, resolution: int = RESOLUTION
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Origin (centre of cell 0) and cell size of the grid tiling a box; (3,) float64 metres each.

    Raises ValueError when the box is empty or flat along an axis (no grid can span it).
    """
    lo = np.asarray(box_min, dtype=np.float64).reshape(3)
    hi = np.asarray(box_max, dtype=np.float64).reshape(3)
    if resolution < 2:
        raise ValueError(f"dgs_core.infer: resolution must be at least 2 cells per axis, got {resolution}")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi > lo)):
        raise ValueError(f"dgs_core.infer: the grid box must have box_max > box_min on every axis, found "
                         f"box_min {lo.tolist()} box_max {hi.tolist()}; a flat or empty visible mesh "
                         "cannot bound an evaluation grid")
    cell = (hi - lo) / resolution
    return lo + cell / 2, cell


def frustum_mask(origin: np.ndarray, cell: np.ndarray, resolution: int, intrinsics: Sequence[float],
                 z_near: float = Z_NEAR) -> np.ndarray:
    """(X, Y, Z) bool: the cell centre lies in the frustum ``|u| ≤ 1, |v| ≤ 1, z > z_near``.

    ``intrinsics`` are normalised ``(a_u, a_v, c_u, c_v)``. ``u`` depends on (x, z) only and ``v`` on
    (y, z), so the test is two 2-D tables broadcast to 3-D (no per-cell projection).
    """
    axes = [origin[d] + np.arange(resolution) * cell[d] for d in range(3)]
    x, y, z = axes
    front = z > z_near
    z_safe = np.where(front, z, 1.0)
    a_u, a_v, c_u, c_v = (float(t) for t in intrinsics)
    in_u = (np.abs(a_u * x[:, None] / z_safe[None, :] + c_u) <= 1.0) & front[None, :]  # (X, Z)
    in_v = np.abs(a_v * y[:, None] / z_safe[None, :] + c_v) <= 1.0                     # (Y, Z)
    return in_u[:, None, :] & in_v[None, :, :]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_field(config: dict) -> str:
    """The field a checkpoint's network predicts, from its stored experiment config: ``"sdf"`` for
    ``loss.kind: sdf``, else ``"occupancy"``."""
    return "sdf" if (config.get("loss") or {}).get("kind") == "sdf" else "occupancy"


def encode_image(net: torch.nn.Module, image: np.ndarray, intrinsics: Sequence[float] | None = None, *,
                 device: str | torch.device = "cpu", amp: bool = False) -> EncoderOutput:
    """The net's encoding (maps and depth, :class:`~dgs_core.model.EncoderOutput`) of one image.

    ``image``: (3, H, W) uint8 RGB, turned into the net's input by its ``config.input_norm``;
    ``intrinsics``: its normalised ``(a_u, a_v, c_u, c_v)``, needed by a model with voxel features
    (it back-projects its depth); ``net`` is on ``device`` in eval mode; ``amp``: bfloat16 autocast
    on CUDA (ignored on CPU).
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] != 3 or image.dtype != np.uint8:
        raise ValueError(f"dgs_core.infer: image must be (3, H, W) uint8 RGB, found {image.dtype} {image.shape}")
    device = resolve_device(device)
    k = None if intrinsics is None else torch.tensor([list(intrinsics)], dtype=torch.float32, device=device)
    with torch.inference_mode(), _autocast(amp, device):
        return net.encode(image_to_tensor(image, net.config.input_norm)[None].to(device), k)


def _autocast(amp: bool, device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else contextlib.nullcontext()


def query_grid(net: torch.nn.Module, features: list, intrinsics: Sequence[float], box_min: np.ndarray,
               box_max: np.ndarray, resolution: int = RESOLUTION, *, batch_points: int = BATCH_POINTS,
               device: str | torch.device = "cpu", amp: bool = False, z_near: float = Z_NEAR,
               grid: str = DEFAULT_GRID, stats: RefineStats | None = None,
               grid_to_camera: np.ndarray | None = None, field: str = "occupancy"
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The field on the grid tiling ``[box_min, box_max]`` from an already encoded image.

    ``features``: ``encode_image(...).features``; ``intrinsics``: normalised ``(a_u, a_v, c_u, c_v)``
    of the encoded image. Other arguments and the result as :func:`predict_grid`.
    """
    if grid not in GRIDS:
        raise ValueError(f"dgs_core.infer: grid must be one of {GRIDS}, found {grid!r}")
    if field not in FIELDS:
        raise ValueError(f"dgs_core.infer: field must be one of {list(FIELDS)}, found {field!r}")
    origin, cell = grid_geometry(box_min, box_max, resolution)
    if grid_to_camera is None:
        inside, to_camera = frustum_mask(origin, cell, resolution, intrinsics, z_near), np.eye(4)
    else:
        inside, to_camera = np.ones((resolution,) * 3, dtype=bool), np.asarray(grid_to_camera, dtype=np.float64)
    device = resolve_device(device)
    k = torch.tensor([list(intrinsics)], dtype=torch.float32, device=device)

    def field_at(ijk: np.ndarray) -> np.ndarray:
        """(N,) float32 field values at grid indices (N, 3), in network calls of batch_points."""
        out = np.empty(len(ijk), dtype=np.float32)
        with torch.inference_mode(), _autocast(amp, device):
            for start in range(0, len(ijk), batch_points):
                part = ijk[start:start + batch_points]
                xyz = (origin + part * cell) @ to_camera[:3, :3].T + to_camera[:3, 3]
                points = torch.from_numpy(xyz.astype(np.float32))[None].to(device)
                logits = net.query(features, points, k).float()
                value = torch.sigmoid(logits) if field == "occupancy" else logits
                out[start:start + len(part)] = value[0].cpu().numpy()
        return out

    if grid == "coarse_to_fine":
        # an SDF's band is a distance: the coarse cell's diagonal (exact for a true distance field)
        band = 0.25 if field == "occupancy" else start_stride(resolution) * float(np.linalg.norm(cell))
        values, found = refine(field_at, inside, level=FIELDS[field], band=band, free=FREE[field])
    else:
        values = np.full(inside.shape, FREE[field], dtype=np.float32)
        ijk = np.argwhere(inside)
        values[inside] = field_at(ijk)
        found = RefineStats(queries=len(ijk), dense=len(ijk))
    if stats is not None:
        stats.__dict__.update(found.__dict__)
    return values, origin, cell


def predict_grid(net: torch.nn.Module, image: np.ndarray, intrinsics_px: np.ndarray, box_min: np.ndarray,
                 box_max: np.ndarray, resolution: int = RESOLUTION, *, batch_points: int = BATCH_POINTS,
                 device: str | torch.device = "cpu", amp: bool = False, z_near: float = Z_NEAR,
                 grid: str = DEFAULT_GRID, stats: RefineStats | None = None,
                 grid_to_camera: np.ndarray | None = None, field: str = "occupancy"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The field of one frame on the evaluation grid (module docstring for the convention).

    Args:
        net: a DGSNet (anything with ``config.input_norm``, ``encode(images, intrinsics).features``
            and ``query(features, points, intrinsics) -> logits``), already on ``device`` and in eval mode.
        image: (3, H, W) uint8 RGB.
        intrinsics_px: (4,) fx, fy, cx, cy in pixels of that image (OpenCV).
        box_min, box_max: (3,) camera frame, metres: the box the grid tiles.
        resolution: cells per axis.
        batch_points: query points per network call.
        device: where the net lives ("auto" = CUDA when available).
        amp: on CUDA, run the network under bfloat16 autocast (ignored on CPU).
        z_near: near plane (m) of the frustum.
        grid: "dense" (every in-frustum cell) or "coarse_to_fine" (:mod:`dgs_core.grid_refine`:
            evaluate a coarse lattice, then only around the 0.5 level).
        stats: if given, filled with the query counts (and, coarse to fine, the verification).
        grid_to_camera: (4, 4) rigid map from the frame of ``box_min``/``box_max`` to the camera (the
            object protocol's normalised cube); every cell is then queried (no frustum mask).
        field: "occupancy" (sigmoid of the output) or "sdf" (the raw output, metres; :func:`model_field`).
    Returns:
        values (X, Y, Z) float32 (occupancy in [0, 1], 0 outside the frustum; or the SDF, 1 m
        outside), origin (3,) float64 and cell (3,) float64, in the box's frame (the camera frame
        unless ``grid_to_camera``), metres.
    """
    height, width = np.asarray(image).shape[1:]
    norm = normalised_intrinsics(*(float(t) for t in np.asarray(intrinsics_px).reshape(4)), width, height)
    features = encode_image(net, image, norm, device=device, amp=amp).features  # checks the image
    return query_grid(net, features, norm, box_min, box_max, resolution, batch_points=batch_points, device=device,
                      amp=amp, z_near=z_near, grid=grid, stats=stats, grid_to_camera=grid_to_camera, field=field)


def frame_path(out_dir: str | os.PathLike, dataset: str, scene_id: str, frame_index: int) -> Path:
    """``<out_dir>/<dataset>/<scene_id>/<frame_index:06d>.npz`` (the method-folder layout of docs/benchmark.md)."""
    return Path(out_dir) / dataset / scene_id / f"{int(frame_index):06d}.npz"


def write_grid(path: Path, values: np.ndarray, origin: np.ndarray, cell: np.ndarray,
               stats: RefineStats | None = None, field: str = "occupancy", extra: dict | None = None) -> Path:
    """Write one frame's grid atomically (:mod:`pipeline.atomic`): the values as float16 under the
    field's name, ``field`` and its ``level`` (:data:`pipeline.geometry.isosurface.FIELDS`).

    With ``stats`` the file also holds its query counts (``queries``, ``dense_queries``,
    ``verified``, ``mismatches``; int64 scalars), which readers of the grid ignore; ``extra``
    arrays (e.g. ``trace_depth``) are stored as given.
    """
    counts = {} if stats is None else {"queries": stats.queries, "dense_queries": stats.dense,
                                       "verified": stats.verified, "mismatches": stats.mismatches}
    with atomic_open(path, "wb") as f:
        np.savez_compressed(f, **{field: values.astype(np.float16)}, field=np.str_(field),
                            level=np.float64(FIELDS[field]), origin=np.asarray(origin, dtype=np.float64),
                            cell=np.asarray(cell, dtype=np.float64), **{k: np.int64(v) for k, v in counts.items()},
                            **(extra or {}))
    return path


def frame_extras(net: torch.nn.Module, frame: EvalFrame, features: list,
                 grid: tuple[np.ndarray, np.ndarray, np.ndarray], field: str, out_dir: str | os.PathLike, *,
                 trace_depth: bool = False, batch_points: int = BATCH_POINTS,
                 device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """What a frame gets besides its grid: the sphere-traced depth of an SDF model (returned, for the
    grid file: ``trace_depth`` (H, W) float32 metres, NaN = miss, rays from z_near to the grid box's
    far face; ``trace_queries``) and, for a model with a colour head, the vertex-coloured mesh of the
    grid (written to :func:`dgs_core.color.colored_mesh_path`). ``features``: the frame's
    ``encode_image(...).features``."""
    has_color = getattr(net, "color_head", None) is not None
    if not (has_color or trace_depth):
        return {}
    device = resolve_device(device)
    height, width = frame.image.shape[1:]
    k_px = tuple(float(v) for v in np.asarray(frame.intrinsics).reshape(4))
    norm = torch.tensor([normalised_intrinsics(*k_px, width, height)], dtype=torch.float32, device=device)
    out: dict[str, np.ndarray] = {}
    if trace_depth:
        def sdf(points: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return torch.cat([net.query(features, part[None].float(), norm)[0].to(points.dtype)
                                  for part in points.split(batch_points)])
        result = trace(sdf, width, height, k_px, TraceConfig(z_near=Z_NEAR, z_far=float(frame.gt_box()[1][2])),
                       device=device)
        out = {"trace_depth": result.depth.cpu().numpy(), "trace_queries": np.int64(result.queries)}
    if has_color:
        values, origin, cell = grid  # meshed as stored (float16), so it is the mesh the benchmark scores
        vertices, faces = extract_mesh(values.astype(np.float16), origin, cell, field=field)
        colors = vertex_colors(net, features, vertices, norm, batch_points)
        ref = frame.ref
        write_colored_mesh(colored_mesh_path(out_dir, ref.dataset, ref.scene_id, ref.frame_index), vertices, faces,
                           colors)
    return out


def keep_only_matching(folder: Path, provenance: dict) -> None:
    """Make ``folder`` (one dataset's frame files) hold only grids made with ``provenance``.

    ``folder/provenance.json`` records what the frame files there were made with (the model and the
    settings that change the numbers). When it is missing or differs, the frame files and the
    ``done`` marker are deleted first, so a retrained model or a new resolution never reuses stale
    grids, while a rerun of the same job keeps the frames it already wrote.
    """
    record = folder / "provenance.json"
    text = json.dumps(provenance, indent=1, sort_keys=True) + "\n"
    if record.exists() and record.read_text() == text:
        return
    (folder / "done").unlink(missing_ok=True)
    for stale in sorted(folder.glob("*/*.npz")):
        stale.unlink()
    write_text_atomic(record, text)


def predict_frames(net: torch.nn.Module, manifest: str | os.PathLike, dataset_root: str | os.PathLike,
                   out_dir: str | os.PathLike, *, resolution: int = RESOLUTION,
                   batch_points: int = BATCH_POINTS, device: str | torch.device = "cpu", amp: bool = False,
                   model_id: str = "", grid: str = DEFAULT_GRID, field: str = "occupancy",
                   trace_depth: bool = False) -> list[Path]:
    """Predict every ``ok`` frame of a test manifest into ``out_dir`` (resumable: existing files are kept
    when they were made by the same ``model_id``, resolution and ``amp``; see :func:`keep_only_matching`).

    Args:
        net: the model, on ``device``, in eval mode.
        manifest: a merged test manifest of ONE dataset (``shard`` paths relative to its folder).
        dataset_root: that dataset's root (the scene meshes bound each frame's grid).
        model_id: identifies ``net``'s weights (the CLI uses the checkpoint's SHA-256).
        field: what ``net`` predicts (:func:`model_field`); trace_depth: also sphere-trace each frame's
            depth (SDF models, :func:`frame_extras`). A colour head also gets coloured meshes.
    Returns:
        the frame files, in manifest order; ``<out_dir>/<dataset>/done`` is written after the last.
    """
    manifest = Path(manifest)
    datasets = read_manifest(manifest).query("status == 'ok'")["dataset"].unique().tolist()
    if len(datasets) != 1:
        raise InputError(f"dgs_core.infer: manifest {manifest} must hold the ok frames of exactly one dataset "
                         f"(one dataset root is given), found {datasets}; pass one dataset's test manifest")
    refs = list_test_frames(manifest, datasets[0], dataset_root)
    keep_only_matching(Path(out_dir) / datasets[0],
                       {"model": model_id, "resolution": resolution, "amp": amp, "grid": grid, "field": field,
                        "trace_depth": trace_depth})
    readers: dict[Path, ShardReader] = {}
    paths = []
    for ref in tqdm(refs, desc=f"predict {datasets[0]}", unit="frame"):
        path = frame_path(out_dir, ref.dataset, ref.scene_id, ref.frame_index)
        paths.append(path)
        if path.exists():
            continue
        frame = read_test_frame(ref, readers.setdefault(ref.shard, ShardReader(ref.shard)))
        stats = RefineStats()
        height, width = frame.image.shape[1:]
        norm = normalised_intrinsics(*(float(t) for t in np.asarray(frame.intrinsics).reshape(4)), width, height)
        features = encode_image(net, frame.image, norm, device=device, amp=amp).features
        result = query_grid(net, features, norm, *frame.gt_box(), resolution, batch_points=batch_points,
                            device=device, amp=amp, grid=grid, stats=stats, field=field)
        if stats.mismatches:
            warnings.warn(f"{ref.name}: {stats.mismatches} of {stats.verified} checked grid points differ "
                          f"from the coarse-to-fine fill: the field has features finer than the coarse "
                          f"lattice there; use --grid dense for this model", stacklevel=1)
        extra = frame_extras(net, frame, features, result, field, out_dir, trace_depth=trace_depth,
                             batch_points=batch_points, device=device)
        write_grid(path, *result, stats=stats, field=field, extra=extra)
    for reader in readers.values():
        reader.close()
    write_text_atomic(Path(out_dir) / datasets[0] / "done", f"{len(paths)} frames from {manifest}\n")
    return paths


def predict_manifest(checkpoint: str | os.PathLike, manifest: str | os.PathLike, dataset_root: str | os.PathLike,
                     out_dir: str | os.PathLike, *, name: str | None = None, resolution: int = RESOLUTION,
                     batch_points: int = BATCH_POINTS, device: str = "auto", amp: bool = False,
                     grid: str = DEFAULT_GRID, depth_source: str = "mesh") -> list[Path]:
    """Load a checkpoint and run :func:`predict_frames`; also writes ``<out_dir>/method.json``.

    ``name`` (the method's name in reports) defaults to the checkpoint's folder, i.e. the experiment
    of ``<work>/models/<experiment>/final.pt``. ``depth_source="trace"`` sphere-traces the depth of
    an SDF model (an occupancy model has no distance field to trace: its depth stays the mesh's).
    """
    from dgs_core.checkpoint import load_model  # the training stage's module; only needed here

    if depth_source not in DEPTH_SOURCES:
        raise ValueError(f"dgs_core.infer: depth_source must be one of {DEPTH_SOURCES}, found {depth_source!r}")
    dev = resolve_device(device)
    net, config = load_model(checkpoint, map_location=dev)
    net = net.to(dev).eval()
    field = model_field(config)
    trace_depth = depth_source == "trace" and field == "sdf"
    method = {"name": name or Path(checkpoint).resolve().parent.name, "kind": "grid",
              "checkpoint": str(checkpoint), "resolution": resolution, "field": field,
              "depth_source": "trace" if trace_depth else "mesh"}
    write_text_atomic(Path(out_dir) / "method.json", json.dumps(method, indent=2) + "\n")
    return predict_frames(net, manifest, dataset_root, out_dir, resolution=resolution,
                          batch_points=batch_points, device=dev, amp=amp, model_id=file_sha256(checkpoint),
                          grid=grid, field=field, trace_depth=trace_depth)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    p = command_parser("python -m dgs_core.infer", __doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="model checkpoint (dgs_core.checkpoint format)")
    p.add_argument("--manifest", required=True, help="merged test manifest of one dataset")
    p.add_argument("--root", required=True, help="that dataset's root folder (scene meshes)")
    p.add_argument("--out", required=True, help="method folder: <out>/<dataset>/<scene>/<frame>.npz")
    p.add_argument("--name", default=None, help="method name (default: the checkpoint's folder name)")
    p.add_argument("--resolution", type=int, default=RESOLUTION, help="grid cells per axis (the grid tiles the box of the frame's visible mesh)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available) | cpu | cuda[:N]")
    p.add_argument("--batch-points", type=int, default=BATCH_POINTS, help="query points per network call (bounds the memory)")
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast on CUDA")
    p.add_argument("--grid", default=DEFAULT_GRID, choices=GRIDS,
                   help="evaluate every in-frustum cell, or coarse to fine around the level")
    p.add_argument("--depth-source", default="mesh", choices=DEPTH_SOURCES,
                   help="trace: also sphere-trace each frame's depth (SDF models) for evaluate.depth_source trace")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    a = p.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    paths = predict_manifest(a.checkpoint, a.manifest, a.root, a.out, name=a.name, resolution=a.resolution,
                             batch_points=a.batch_points, device=a.device, amp=a.amp, grid=a.grid,
                             depth_source=a.depth_source)
    print(f"dgs_core.infer: {len(paths)} frames in {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main, prog="python -m dgs_core.infer"))
