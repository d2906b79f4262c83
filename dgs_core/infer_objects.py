"""Inference for the object protocol: a trained field on a grid over the normalised cube (SPEC §5.13).

For every ``ok`` model of a prepared object test manifest, the network sees one view (``--view``,
default 0: Occupancy Networks also evaluates a fixed view) and is queried on ``resolution`` cells per
axis tiling the cube [−½, ½]³ of the object frame (cell centres mapped into that view's camera with
the stored ``world_to_camera``), densely or coarse to fine (:mod:`dgs_core.grid_refine`). Output, in
the grid convention of :mod:`dgs_core.infer` (origin = centre of cell 0, cube frame)::

    <out>/<dataset>/<synset>/<model>.npz    occupancy (R, R, R) float16, origin (3,), cell (3,)
    <out>/<dataset>/done                    once every model is there
    <out>/method.json

    python -m dgs_core.infer_objects --checkpoint C --manifest M --out DIR [--resolution 128]
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from dgs_core.infer import (
    DEFAULT_GRID,
    GRIDS,
    file_sha256,
    keep_only_matching,
    predict_grid,
    resolve_device,
    write_grid,
)
from pipeline.atomic import write_text_atomic
from pipeline.cli import command_parser
from pipeline.errors import run_main
from pipeline.object_shards import ObjectShardReader, read_object_manifest

RESOLUTION = 128
"""Cells per axis over the cube (Occupancy Networks extracts at 128³: 32³ refined twice)."""
CUBE = (-0.5, 0.5)


def model_path(out_dir: str | os.PathLike, dataset: str, synset: str, model: str) -> Path:
    """``<out_dir>/<dataset>/<synset>/<model>.npz``."""
    return Path(out_dir) / dataset / synset / f"{model}.npz"


def predict_objects(net: torch.nn.Module, manifest: str | os.PathLike, out_dir: str | os.PathLike, *,
                    resolution: int = RESOLUTION, view: int = 0, grid: str = DEFAULT_GRID,
                    device: str | torch.device = "cpu", model_id: str = "") -> list[Path]:
    """Predict every ``ok`` model of an object test manifest (resumable, as :func:`dgs_core.infer.predict_frames`)."""
    manifest = Path(manifest)
    table = read_object_manifest(manifest).query("status == 'ok'")
    datasets = table["dataset"].unique().tolist()
    if len(datasets) != 1:
        raise ValueError(f"dgs_core.infer_objects: {manifest} must hold the ok models of one dataset, found {datasets}")
    keep_only_matching(Path(out_dir) / datasets[0], {"model": model_id, "resolution": resolution, "view": view,
                                                     "grid": grid})
    readers: dict[Path, ObjectShardReader] = {}
    paths = []
    for row in tqdm(list(table.itertuples()), desc=f"predict {datasets[0]}", unit="model"):
        path = model_path(out_dir, row.dataset, row.synset, row.model_id)
        paths.append(path)
        if path.exists():
            continue
        shard = (manifest.parent / row.shard).resolve()
        rec = readers.setdefault(shard, ObjectShardReader(shard)).read(int(row.row), (
            "model_id", "image", "intrinsics", "world_to_camera"))
        if rec["model_id"] != row.model_id:
            raise ValueError(f"{manifest} says {shard} row {row.row} is model {row.model_id}, the shard holds "
                             f"{rec['model_id']}; re-run prepare_objects")
        if not 0 <= view < len(rec["image"]):
            raise ValueError(f"--view {view}: model {row.model_id} has {len(rec['image'])} views")
        result = predict_grid(net, rec["image"][view], rec["intrinsics"][view], [CUBE[0]] * 3, [CUBE[1]] * 3,
                              resolution, device=device, grid=grid, grid_to_camera=rec["world_to_camera"][view])
        write_grid(path, *result)
    for reader in readers.values():
        reader.close()
    write_text_atomic(Path(out_dir) / datasets[0] / "done", f"{len(paths)} models from {manifest}\n")
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    p = command_parser("python -m dgs_core.infer_objects", __doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="model checkpoint (dgs_core.checkpoint format)")
    p.add_argument("--manifest", required=True, help="prepared object test manifest")
    p.add_argument("--out", required=True, help="method folder: <out>/<dataset>/<synset>/<model>.npz")
    p.add_argument("--name", default=None, help="method name (default: the checkpoint's folder name)")
    p.add_argument("--resolution", type=int, default=RESOLUTION, help="grid cells per axis over the normalised cube")
    p.add_argument("--view", type=int, default=0, help="which rendered view the network sees")
    p.add_argument("--grid", default=DEFAULT_GRID, choices=GRIDS, help="every cell, or coarse to fine around the 0.5 level")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    a = p.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    from dgs_core.checkpoint import load_model

    device = resolve_device(a.device)
    net, _ = load_model(a.checkpoint, map_location=device)
    method = {"name": a.name or Path(a.checkpoint).resolve().parent.name, "kind": "object_grid",
              "checkpoint": str(a.checkpoint), "resolution": a.resolution, "view": a.view}
    write_text_atomic(Path(a.out) / "method.json", json.dumps(method, indent=2) + "\n")
    paths = predict_objects(net.eval(), a.manifest, a.out, resolution=a.resolution, view=a.view, grid=a.grid,
                            device=device, model_id=file_sha256(a.checkpoint))
    print(f"dgs_core.infer_objects: {len(paths)} models in {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main, prog="python -m dgs_core.infer_objects"))
