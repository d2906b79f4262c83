"""Per-frame training/test data (SPEC §1, §4): one raw frame + its scene mesh → one ``FrameSample``.

Public API: ``PrepareConfig``, ``SceneGeometry`` (built once per scene), ``RawFrame``, ``SkippedFrame``,
``frame_rng`` and ``prepare_frame``. Occupancy labels (SPEC §1): 1 = inward/occupied, 0 = outward/free.
Every output point is in the frame's CAMERA coordinates (OpenCV, metres), float32.

Rules recorded here (see also docs/geometry.md):
- Side of a near-surface sample: the face normal is oriented TOWARD THE CAMERA per sample
  (n·(C − p) ≥ 0, C the camera centre, p the surface point), whatever the mesh winding; a sample
  offset by d ~ U(−δ, δ) is p + d·n, labelled 0 (free) if d ≥ 0 and 1 (occupied) if d < 0.
- Visibility box: world bounding box of the back-projected SENSOR depth resampled to the virtual
  camera; if fewer than ``min_box_pixels`` sensor pixels are valid (missing/empty depth) the rendered
  depth is used instead, so frames without sensor depth still get a view-dependent box.
- Non-surface points: uniform in the camera-frame bounding box of the on-surface positions of the
  near-surface samples (z clipped to ≥ z_near), kept if in the frustum and at distance ≥ exclusion
  distance from every surface sample ("samples", SPEC §4) or from the whole mesh ("mesh", exact).
- On-surface samples: drawn like the near-surface ones (same faces and weights) but with their own
  random numbers, drawn after all others, so adding them changed no other field; the normal is
  turned toward the camera and the colour is the vertex colours interpolated barycentrically.
"""
from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from pipeline.geometry.camera import (in_frustum, pixel_directions, pose_problem,
                                      projection_coefficients, virtual_intrinsics, world_to_camera)
from pipeline.geometry.chunks import faces_in_view, frustum_planes
from pipeline.geometry.kernels import (cull_face_centroids, depth_world_box, far_from_samples,
                                       sample_offset_surface)
from pipeline.geometry.raster import depth_maps_raster
from pipeline.geometry.resample import resample_color, resample_depth
from pipeline.geometry.scene import (SceneGeometry, depth_maps_first_hits, depth_maps_listed,
                                     distance_to_mesh)
from pipeline.frame_sample import FrameSample
from pipeline.prepare_config import PrepareConfig

__all__ = ["PrepareConfig", "SceneGeometry", "RawFrame", "SkippedFrame", "frame_rng", "prepare_frame"]
# PrepareConfig lives in pipeline.prepare_config (the prepare section of the config); it is part of
# this module's interface because prepare_frame takes it.


@dataclass
class RawFrame:
    """One frame as read from the dataset (before resampling).

    camera_to_world: (4, 4) OpenCV pose (may be invalid, e.g. −inf in ScanNet).
    color: (h, w, 3) uint8 RGB; color_intrinsics: (3, 3) pixels.
    depth: (h', w') float32 metres, NaN (or 0) holes, or None; depth_intrinsics: (3, 3) or None.
    """

    index: int
    source_file: str
    camera_to_world: np.ndarray
    color: np.ndarray
    color_intrinsics: np.ndarray
    depth: np.ndarray | None
    depth_intrinsics: np.ndarray | None


@dataclass(frozen=True)
class SkippedFrame:
    """A frame that produced no row: ``reason`` is a code of ``pipeline.manifest.REASONS``
    ("invalid_pose", "corrupt_payload", "empty_view", "too_few_samples", "no_structure"), ``message`` says what
    exactly was wrong (kept in the manifest and the job log)."""

    index: int
    source_file: str
    reason: str
    message: str = ""


def frame_rng(seed: int, dataset: str, scene_id: str, frame_index: int) -> np.random.Generator:
    """The frame's random stream: SHA-256 of (seed, dataset, scene, frame), stable across processes.

    Python's ``hash()`` is salted per process, so it is never used for seeds.
    """
    key = f"{int(seed)}\x1f{dataset}\x1f{scene_id}\x1f{int(frame_index)}".encode()
    words = np.frombuffer(hashlib.sha256(key).digest(), dtype="<u4")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words.tolist())))


@contextmanager
def _timed(timings: dict | None, step: str) -> Iterator[None]:
    """Accumulate wall seconds of a step into ``timings[step]`` when a dict is given."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        if timings is not None:
            timings[step] = timings.get(step, 0.0) + time.perf_counter() - t0


def _visibility_box(sensor: np.ndarray, rendered: np.ndarray, k_v: np.ndarray, t_wc: np.ndarray,
                    cfg: PrepareConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """World box (lo, hi) of the back-projected depth widened per side; None if no depth at all."""
    r, c = np.ascontiguousarray(t_wc[:3, :3]), np.ascontiguousarray(t_wc[:3, 3])
    lo, hi, n = depth_world_box(sensor, k_v, r, c)
    if n < cfg.min_box_pixels:
        lo, hi, n = depth_world_box(rendered, k_v, r, c)
    if n == 0:
        return None
    pad = cfg.box_widen * (hi - lo)
    return lo - pad, hi + pad


def _non_surface(rng: np.random.Generator, surface_cam: np.ndarray, proj: np.ndarray,
                 scene: SceneGeometry, t_wc: np.ndarray, cfg: PrepareConfig) -> np.ndarray:
    """Up to M camera points (m, 3) float64 by rejection sampling in rounds (SPEC §4)."""
    m = cfg.non_surface_points
    lo, hi = surface_cam.min(axis=0), surface_cam.max(axis=0)
    lo[2] = max(lo[2], cfg.z_near)
    if m == 0 or hi[2] <= lo[2]:
        return np.zeros((0, 3))
    kept: list[np.ndarray] = []
    n_kept, rate = 0, 0.25
    for _ in range(cfg.max_rounds):
        need = m - n_kept
        # Draw enough for the acceptance rate seen so far (floor 2 % so a bad round cannot explode).
        n_draw = min(int(np.ceil(1.5 * need / max(rate, 0.02))) + 64, 100 * m)
        cand = rng.uniform(lo, hi, size=(n_draw, 3))
        ok = in_frustum(cand, proj, cfg.z_near)
        cand = cand[ok]
        if cfg.exclusion == "samples":
            far = far_from_samples(cand, surface_cam, cfg.exclusion_distance)
        else:
            world = (cand @ t_wc[:3, :3].T + t_wc[:3, 3]).astype(np.float32)
            far = distance_to_mesh(scene, world) >= cfg.exclusion_distance
        cand = cand[far]
        rate = max(cand.shape[0] / n_draw, 1e-9)
        kept.append(cand[:need])
        n_kept += kept[-1].shape[0]
        if n_kept >= m:
            break
    return np.concatenate(kept, axis=0)


def _surface_samples(rng: np.random.Generator, scene: SceneGeometry, candidates: np.ndarray,
                     cdf: np.ndarray, t_wc: np.ndarray, n: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points on the candidate faces (world (n, 3)), their unit normals turned toward the
    camera (world (n, 3)) and RGB (n, 3) uint8 (0 when the mesh has no vertex colours)."""
    centre = t_wc[:3, 3].copy()
    r = rng.random((3, n))
    surface, _, _, face = sample_offset_surface(scene.vertices, scene.faces, candidates, cdf, scene.normals,
                                                centre, r[0], r[1], r[2], np.zeros(n))
    normals = scene.normals[face]
    normals *= np.where(np.einsum("ij,ij->i", normals, centre - surface) >= 0, 1.0, -1.0)[:, None]
    colors = np.zeros((n, 3), dtype=np.uint8)
    if scene.vertex_colors is not None:
        s = np.sqrt(r[1])  # the kernel's barycentric weights (1 − √r1, √r1(1 − r2), √r1·r2)
        weights = np.stack((1.0 - s, s * (1.0 - r[2]), s * r[2]), axis=1)
        rgb = np.einsum("nk,nkc->nc", weights, scene.vertex_colors[scene.faces[face]].astype(np.float64))
        colors = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return surface, normals, colors


def _padded(points: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) float32 points zero-padded at the end, and the (n,) bool valid mask."""
    out = np.zeros((n, 3), dtype=np.float32)
    out[: points.shape[0]] = points
    valid = np.zeros(n, dtype=bool)
    valid[: points.shape[0]] = True
    return out, valid


def prepare_frame(scene: SceneGeometry, frame: RawFrame, cfg: PrepareConfig, *, dataset: str,
                  scene_id: str, split: str, timings: dict | None = None) -> FrameSample | SkippedFrame:
    """Compute one frame's stored record (SPEC §4) at the virtual camera, or why it was skipped.

    scene: the scene's ``SceneGeometry`` (world frame). frame: the raw frame. ``timings``, if given,
    accumulates seconds per step under "resampling", "raycasting", "culling" and "sampling".
    Deterministic: randomness comes only from ``frame_rng(cfg.seed, dataset, scene_id, frame.index)``.
    """
    skip = lambda reason, message: SkippedFrame(frame.index, frame.source_file, reason, message)  # noqa: E731
    bad_pose = pose_problem(frame.camera_to_world)
    if bad_pose is not None:
        return skip("invalid_pose", bad_pose)
    t_wc = np.asarray(frame.camera_to_world, dtype=np.float64)
    t_cw = world_to_camera(t_wc)
    w, h = cfg.width, cfg.height
    k_v = virtual_intrinsics(w, h, cfg.focal)
    proj = projection_coefficients(*k_v, w, h)

    with _timed(timings, "resampling"):
        image = resample_color(frame.color, frame.color_intrinsics, w, h, k_v).transpose(2, 0, 1)
        if frame.depth is None or frame.depth_intrinsics is None:
            depth = np.full((h, w), np.nan, dtype=np.float32)
        else:
            depth = resample_depth(frame.depth, frame.depth_intrinsics, w, h, k_v)

    with _timed(timings, "raycasting"):
        if cfg.amodal_method == "raster":
            rendered, amodal = depth_maps_raster(scene.vertices, scene.chunks, t_cw, k_v, w, h)
        else:
            dirs = pixel_directions(w, h, k_v) @ t_wc[:3, :3].T
            if cfg.amodal_method == "first_hits":
                rendered, amodal = depth_maps_first_hits(scene, t_wc[:3, 3], dirs,
                                                         nthreads=cfg.raycast_threads)
            else:
                rendered, amodal = depth_maps_listed(scene, t_wc[:3, 3], dirs)

    with _timed(timings, "culling"):
        box = _visibility_box(depth, rendered, k_v, t_wc, cfg)
        if box is None:
            return skip("empty_view", "neither the sensor depth nor the mesh gives a depth in view")
        # Contiguous arguments so every call hits the one cached Numba specialisation.
        r_cw, c_cw = np.ascontiguousarray(t_cw[:3, :3]), np.ascontiguousarray(t_cw[:3, 3])
        # Only faces of chunks reaching into the widened frustum and the box can pass the test.
        near = faces_in_view(scene.chunks, r_cw, c_cw, frustum_planes(proj, cfg.frustum_widen, cfg.z_near),
                             box[0], box[1])
        visible = np.flatnonzero(cull_face_centroids(scene.centroids, near, r_cw, c_cw, proj,
                                                     cfg.frustum_widen, cfg.z_near, box[0], box[1]))
        areas = scene.areas[visible]
        positive = areas > 0
        candidates = visible[positive]
        weights = areas[positive] if cfg.face_sampling == "area" else np.ones(candidates.size)
        if candidates.size == 0:
            return skip("empty_view", f"no face of positive area in view ({visible.size} visible faces)")

    with _timed(timings, "sampling"):
        rng = frame_rng(cfg.seed, dataset, scene_id, frame.index)
        k = cfg.near_surface_points
        r = rng.random((3, k))
        offset = rng.uniform(-cfg.surface_offset, cfg.surface_offset, size=k)
        surface, points, labels, _ = sample_offset_surface(
            scene.vertices, scene.faces, candidates.astype(np.int64), np.cumsum(weights),
            scene.normals, t_wc[:3, 3].copy(), r[0], r[1], r[2], offset)
        to_cam = lambda p: p @ t_cw[:3, :3].T + t_cw[:3, 3]  # noqa: E731
        surface_cam = to_cam(surface)
        non_surface = _non_surface(rng, surface_cam, proj, scene, t_wc, cfg)
        if non_surface.shape[0] < cfg.min_non_surface_fraction * cfg.non_surface_points:
            return skip("too_few_samples", f"{non_surface.shape[0]} of {cfg.non_surface_points} non-surface "
                        f"points found in {cfg.max_rounds} rounds (minimum "
                        f"{cfg.min_non_surface_fraction:g} of them)")
        ns_points, ns_valid = _padded(non_surface, cfg.non_surface_points)
        surf, normals, colors = _surface_samples(rng, scene, candidates.astype(np.int64), np.cumsum(weights),
                                                 t_wc, cfg.surface_points)

    return FrameSample(
        dataset=dataset, scene_id=scene_id, frame_index=int(frame.index), source_file=frame.source_file,
        split=split, image=np.ascontiguousarray(image), depth=depth, rendered_depth=rendered,
        amodal_depth=amodal, intrinsics=k_v.astype(np.float32), world_to_camera=t_cw.astype(np.float32),
        near_surface_points=to_cam(points).astype(np.float32), near_surface_labels=labels,
        near_surface_valid=np.ones(k, dtype=bool), non_surface_points=ns_points,
        non_surface_valid=ns_valid, visible_faces=visible.astype(np.int32),
        structure_source=scene.structure_source,
        near_surface_offsets=offset.astype(np.float32), surface_points=to_cam(surf).astype(np.float32),
        surface_normals=(normals @ t_cw[:3, :3].T).astype(np.float32), surface_colors=colors,
        surface_colored=scene.vertex_colors is not None)
