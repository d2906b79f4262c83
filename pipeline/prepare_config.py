"""The ``prepare`` section of the workflow config as typed settings: one place for its keys and defaults.

``PrepareConfig`` holds what changes a frame's numbers (the virtual camera, point quotas, offsets,
structure labels, ...); ``JobOptions`` holds how a prepare job selects and stores frames. Together
their public fields are exactly the keys of ``prepare`` in ``workflow/schemas/config.schema.yaml``,
with the same defaults (``tests/test_config_sources.py`` checks it); ``RUNTIME_FIELDS`` are set by
the job itself (threads, in-flight window) and change speed, never results. An unknown key is an
error that names the key and the section, wherever the section is read.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UserError

RUNTIME_FIELDS = ("raycast_threads", "window_per_worker")
"""Fields the job sets for itself; not config keys."""


class PrepareConfigError(UserError, ValueError):
    """The ``prepare`` section names an unknown key or has an invalid value."""


@dataclass(frozen=True)
class PrepareConfig:
    """Settings of per-frame preparation (defaults = the published protocol, SPEC §1/§4).

    width, height, focal: virtual camera in pixels (principal point at the image centre).
    near_surface_points K / non_surface_points M: per-frame quotas.
    surface_points S: on-surface samples per frame with their camera-facing normals and colours
        (the SDF loss's surface, Eikonal-normal and colour terms; SPEC §4.7).
    surface_offset δ (m): offsets d ~ U(−δ, δ) along the camera-facing normal.
    exclusion_distance (m): non-surface points keep at least this distance (≥) from the surface.
    exclusion: "samples" (SPEC §4: nearest on-surface sample, Numba grid hash) or "mesh" (exact
        distance to the whole mesh via Embree; stricter, slightly slower).
    z_near (m): near plane of the frustum; 0.05 m is below any depth sensor's minimum range.
    frustum_widen: culling uses |u|, |v| < 1.05; box_widen: the depth box grows 5 % per side.
    structure_labels: NYU40 ids whose first hit bounds the amodal depth: wall 1, floor 2, door 8,
        window 9, ceiling 22 (the permanent room shell). Curtains (16), blinds (13) and
        otherstructure (38: columns, fireplaces, railings) are left out by default because they are
        often in front of the shell and would cut the amodal depth short; add them if you want that.
    structure: where a scene's structure faces come from (SPEC §4.9): "labels" (its NYU40 labels,
        an error for an unlabelled scan), "inferred" (floor, walls and ceiling inferred from the
        geometry, ``pipeline.geometry.structure``) or "auto" (labels when the scene has them, else
        inferred). Every frame records the source used.
    face_sampling: "area" (area-weighted) or "uniform" (faces picked uniformly as in the release;
        zero-area faces are never picked in either mode).
    amodal_method: how rendered and amodal depth are computed, all with the same result (to float32
        rounding): "raster" (one Numba pass rasterising every face in view into nearest, nearest-
        structure and farthest z-buffers with the exact ray-triangle test; fastest, docs/geometry.md),
        "first_hits" (Embree: a first-hit cast on all faces, one on the structure-only BVH, and
        re-casting past each hit only for rays that meet no structure) or "list" (Embree
        list_intersections).
    min_box_pixels: fewer valid sensor-depth pixels than this → the rendered depth defines the box.
    min_non_surface_fraction: frames filling less than this fraction of M are skipped
        ("too_few_samples"); between it and M the rest is padding with valid = False.
    max_rounds: rejection-sampling rounds for non-surface points.
    raycast_threads: Embree threads (0 = all cores; 1 for one-frame-per-core workers).
    seed: global seed; the per-frame stream is ``frame_rng(seed, dataset, scene, frame)``.
    """

    width: int = 256
    height: int = 192
    focal: float = 230.4
    near_surface_points: int = 2048
    non_surface_points: int = 512
    surface_points: int = 1024
    surface_offset: float = 0.064
    exclusion_distance: float = 0.032
    exclusion: str = "samples"
    z_near: float = 0.05
    frustum_widen: float = 1.05
    box_widen: float = 0.05
    structure_labels: tuple[int, ...] = (1, 2, 8, 9, 22)
    structure: str = "auto"
    face_sampling: str = "area"
    amodal_method: str = "raster"
    min_box_pixels: int = 64
    min_non_surface_fraction: float = 0.25
    max_rounds: int = 8
    raycast_threads: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, allowed in (("exclusion", ("samples", "mesh")), ("face_sampling", ("area", "uniform")),
                              ("amodal_method", ("raster", "first_hits", "list")),
                              ("structure", ("auto", "labels", "inferred"))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"PrepareConfig: {name} must be one of {allowed}, found "
                                 f"{getattr(self, name)!r}; fix the 'prepare' section of the config")


@dataclass(frozen=True)
class JobOptions:
    """Job-level settings (the rest of the config's ``prepare`` section goes to PrepareConfig).

    frames_per_shard: rows per HDF5 shard. compression: shard filter (pipeline.shards.COMPRESSIONS).
    frame_stride: train/val keep every k-th frame. test_frames_per_scene: SPEC §5 (10).
    matterport_frames_per_house: SPEC §5 (10). max_pitch_deg: Matterport upward-camera threshold.
    window_per_worker: frames in flight per worker (bounds memory).
    """

    frames_per_shard: int = 64
    compression: str = "zstd"
    frame_stride: int = 1
    test_frames_per_scene: int = 10
    matterport_frames_per_house: int = 10
    max_pitch_deg: float = 15.0
    window_per_worker: int = 4


def load_prepare_section(section: dict[str, Any] | None, source: str = "the 'prepare' section"
                         ) -> tuple[PrepareConfig, JobOptions]:
    """(PrepareConfig, JobOptions) from a ``prepare`` section (a dict of config keys).

    Raises PrepareConfigError naming ``source`` and the key for keys that are not config keys
    (runtime fields included) and for invalid values.
    """
    raw = dict(section or {})
    cfg_keys = {f.name for f in dataclasses.fields(PrepareConfig)} - set(RUNTIME_FIELDS)
    job_keys = {f.name for f in dataclasses.fields(JobOptions)} - set(RUNTIME_FIELDS)
    unknown = sorted(set(raw) - cfg_keys - job_keys)
    if unknown:
        raise PrepareConfigError(f"{source}: unknown key(s) {unknown} under 'prepare'; valid keys: "
                                 f"{sorted(cfg_keys | job_keys)}")
    cfg = {k: v for k, v in raw.items() if k in cfg_keys}
    if "structure_labels" in cfg:
        cfg["structure_labels"] = tuple(int(x) for x in cfg["structure_labels"])
    try:
        return (PrepareConfig(**cfg), JobOptions(**{k: v for k, v in raw.items() if k in job_keys}))
    except (TypeError, ValueError) as err:
        raise PrepareConfigError(f"{source}: {err}") from None


def load_prepare_file(path: str | Path) -> tuple[dict[str, Any], str | None]:
    """The ``prepare`` section and ``dask_scheduler`` of a workflow YAML file (not validated here)."""
    import yaml

    doc = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(doc, dict):
        raise PrepareConfigError(f"{path}: expected a mapping of config keys at the top level")
    return dict(doc.get("prepare") or {}), doc.get("dask_scheduler")
