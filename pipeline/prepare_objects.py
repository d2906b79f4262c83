"""The object prepare job: models of an object dataset → occupancy samples + views → object shards.

    python -m pipeline.prepare_objects --dataset shapenet --root DATA --split train --out data/prepared \
        [--options '{"uniform_points": 100000}'] [--synset 03001627 ...]

Per model (SPEC §6.6): the mesh is read and moved into the normalised cube [−½, ½]³ (bounding box
centred, longest edge 1; the views' cameras are composed with the same map); ``uniform_points`` points
are drawn uniformly in the cube and ``near_points`` on the surface (area-weighted) then offset along the
face normal by N(0, ``near_sigma``²); every point is labelled inside/outside by the generalised winding
number of the mesh (:mod:`pipeline.geometry.winding`: exact for closed parts, overlapping or touching);
uniform points at least ``exclusion`` from every surface sample are flagged ``far`` (the gradient
term's points). Output: ``<out>/<dataset>/<split>/shard_*.h5`` (:mod:`pipeline.object_shards`),
``manifest.parquet`` (every model, kept or skipped with a reason) and ``done`` (JSON summary, last).
Random streams derive from (seed, dataset, synset, model): the same inputs give the same bytes.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from pipeline.atomic import PARTIAL, write_text_atomic
from pipeline.cli import command_parser
from pipeline.errors import run_main
from pipeline.formats import shapenet as sn
from pipeline.formats.errors import FormatError
from pipeline.geometry.kernels import far_from_samples, sample_offset_surface
from pipeline.geometry.winding import inside_mesh
from pipeline.object_datasets import (
    OBJECT_DATASETS,
    ObjectDatasetSpec,
    get_object_dataset,
)
from pipeline.object_shards import (
    OBJECT_SCHEMA_VERSION,
    ObjectSample,
    ObjectShardWriter,
    make_object_manifest,
    write_object_manifest,
)
from pipeline.shards import COMPRESSIONS

DONE, MANIFEST = "done", "manifest.parquet"


@dataclass(frozen=True)
class ObjectPrepareConfig:
    """The ``objects.prepare`` config section (units: the normalised cube, side 1).

    uniform_points: uniform samples per model in the cube (also the IoU points, 100k as in Occupancy
    Networks). near_points: near-surface samples; near_sigma: their offset's standard deviation.
    exclusion: uniform points this far from every surface sample are ``far``. seed: base seed.
    models_per_shard, compression: storage (:mod:`pipeline.object_shards`).
    """

    uniform_points: int = 100000
    near_points: int = 100000
    near_sigma: float = 0.01
    exclusion: float = 0.02
    seed: int = 0
    models_per_shard: int = 16
    compression: str = "zstd"

    def __post_init__(self) -> None:
        if min(self.uniform_points, self.near_points, self.models_per_shard) < 1 or not (
                self.near_sigma > 0 and self.exclusion > 0) or self.compression not in COMPRESSIONS:
            raise ValueError(f"objects.prepare: need ≥ 1 points and models per shard, near_sigma > 0, exclusion > 0 "
                             f"and compression in {COMPRESSIONS}; found {dataclasses.asdict(self)}")


def load_object_prepare_section(section: dict[str, Any] | None, source: str) -> ObjectPrepareConfig:
    """Typed settings from the ``objects.prepare`` section; ValueError naming ``source`` and the key."""
    raw = dict(section or {})
    known = {f.name for f in dataclasses.fields(ObjectPrepareConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown} under 'objects.prepare'; valid keys: {sorted(known)}")
    try:
        return ObjectPrepareConfig(**raw)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: {err}") from None


def model_rng(seed: int, dataset: str, synset: str, model: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *f"{dataset}\x1f{synset}\x1f{model}".encode()]))


def occupancy_samples(vertices: np.ndarray, faces: np.ndarray, cfg: ObjectPrepareConfig, rng: np.random.Generator
                      ) -> tuple[np.ndarray, ...]:
    """Uniform (points, labels, far) and near-surface (points, labels) samples of a mesh in the cube.

    vertices (V, 3) in the normalised cube; faces (F, 3). Raises ValueError for a mesh without area.
    """
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    normals = np.cross(b - a, c - a)
    area = np.linalg.norm(normals, axis=1)
    if not area.sum() > 0:
        raise ValueError("the mesh has no face of positive area")
    normals = normals / np.where(area > 0, area, 1.0)[:, None]
    uniform = rng.random((cfg.uniform_points, 3)) - 0.5
    r = rng.random((3, cfg.near_points))
    offset = rng.normal(0.0, cfg.near_sigma, cfg.near_points)
    surface, near, _, _ = sample_offset_surface(vertices, faces.astype(np.int64), np.arange(len(faces)),
                                                np.cumsum(area), normals, np.zeros(3), r[0], r[1], r[2], offset)
    labels = inside_mesh(np.concatenate([uniform, near]), vertices, faces).astype(np.uint8)
    far = far_from_samples(uniform, surface, cfg.exclusion)
    return uniform, labels[:len(uniform)], far, near, labels[len(uniform):]


def prepare_model(spec: ObjectDatasetSpec, root: Path, synset: str, model: str, split: str,
                  cfg: ObjectPrepareConfig) -> tuple[ObjectSample, int]:
    """One model's record (module docstring) and its face count. FormatError for unreadable files,
    ValueError for a mesh without area."""
    vertices, faces = spec.mesh(root, synset, model)
    vertices, centre, scale = sn.normalise_to_unit_cube(vertices)
    to_file = np.diag([scale, scale, scale, 1.0])
    to_file[:3, 3] = centre  # normalised cube → the mesh file's frame, where the cameras are given
    views = spec.views(root, synset, model)
    uniform, u_labels, far, near, n_labels = occupancy_samples(vertices, faces, cfg,
                                                               model_rng(cfg.seed, spec.name, synset, model))
    return ObjectSample(
        dataset=spec.name, synset=synset, model_id=model, split=split,
        source_file=str(spec.mesh_path(root, synset, model).relative_to(root)),
        image=np.stack([np.moveaxis(v.color, -1, 0) for v in views]), depth=np.stack([v.depth / scale for v in views]),
        intrinsics=np.stack([v.intrinsics for v in views]),
        world_to_camera=np.stack([_rescaled(v.world_to_camera @ to_file, scale) for v in views]),
        uniform_points=uniform, uniform_labels=u_labels, uniform_far=far, near_points=near,
        near_labels=n_labels), len(faces)


def _rescaled(world_to_camera: np.ndarray, scale: float) -> np.ndarray:
    """A camera of the file's frame composed with cube → file is a similarity (rotation·s); dividing the
    whole camera frame by s keeps it rigid (depth in cube units, pixels unchanged: x/z is scale-free)."""
    out = world_to_camera / scale
    out[3] = [0.0, 0.0, 0.0, 1.0]
    return out


def split_dir(out: str | Path, dataset: str, split: str) -> Path:
    """``<out>/<dataset>/<split>``: where one job writes shards, manifest and marker."""
    return Path(out) / dataset / split


def prepare_split(dataset: str, root: str | Path, split: str, out: str | Path, cfg: ObjectPrepareConfig, *,
                  synsets: Sequence[str] | None = None, progress: bool = True) -> Path:
    """Prepare every model of ``split`` (all synsets, or ``synsets``) into :func:`split_dir`; returns it."""
    spec, root = get_object_dataset(dataset), Path(root)
    if split not in spec.splits:
        raise ValueError(f"{spec.title} has no split {split!r}; its splits are {list(spec.splits)}")
    directory = split_dir(out, dataset, split)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / DONE).unlink(missing_ok=True)
    for stale in sorted(directory.glob("shard_*.h5*")) + sorted(directory.glob(MANIFEST + "*")):
        if stale.name.endswith((".h5", MANIFEST)) or PARTIAL in stale.name:
            stale.unlink()
    chosen = list(synsets) if synsets else spec.synsets(root)
    jobs = [(s, m) for s in chosen for m in spec.models(root, s, split)]
    rows = []
    writer = ObjectShardWriter(directory, per_shard=cfg.models_per_shard, compression=cfg.compression,
                               attrs={"prepare_config": json.dumps(dataclasses.asdict(cfg), sort_keys=True)})
    for synset, model in tqdm(jobs, desc=f"{dataset}/{split}", unit="model", disable=not progress):
        row = {"dataset": dataset, "synset": synset, "model_id": model, "split": split}
        try:
            sample, n_faces = prepare_model(spec, root, synset, model, split, cfg)
        except (FormatError, ValueError) as err:
            print(f"{dataset}/{split}/{synset}/{model}: skipped: {err}", file=sys.stderr)
            row.update(status="skipped", reason="unreadable" if isinstance(err, FormatError) else "empty_mesh",
                       shard="", row=-1)
        else:
            shard, r = writer.append(sample)
            row.update(status="ok", reason="", shard=shard, row=r, views=len(sample.image), faces=n_faces)
        rows.append(row)
    shards = writer.close()
    manifest = make_object_manifest(rows)
    write_object_manifest(manifest, directory / MANIFEST)
    summary = {"models": len(manifest), "ok": int((manifest.status == "ok").sum()), "shards": shards,
               "schema_version": OBJECT_SCHEMA_VERSION}
    write_text_atomic(directory / DONE, json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (module docstring); exit status 2 on a bad option or config."""
    ap = command_parser("python -m pipeline.prepare_objects", __doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True, choices=sorted(OBJECT_DATASETS), help="the object dataset (registry)")
    ap.add_argument("--root", required=True, help="dataset root (ShapeNet layout)")
    ap.add_argument("--split", required=True, choices=sn.SPLITS, help="the split list to prepare")
    ap.add_argument("--out", required=True, help="output root: <out>/<dataset>/<split>/")
    ap.add_argument("--options", help="the 'objects.prepare' section as a JSON object")
    ap.add_argument("--synset", action="append", help="only this synset (repeatable; default: all)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    a = ap.parse_args(argv)
    try:
        cfg = load_object_prepare_section(json.loads(a.options) if a.options else {}, "--options")
        directory = prepare_split(a.dataset, a.root, a.split, a.out, cfg, synsets=a.synset, progress=not a.quiet)
    except (ValueError, FormatError) as err:
        print(f"pipeline.prepare_objects: {err}", file=sys.stderr)
        return 2
    print(f"{directory}: done")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main, prog="python -m pipeline.prepare_objects"))
