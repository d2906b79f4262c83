"""Speed of per-frame preparation on a ~300k-face generated room at the 256×192 virtual camera.

    python benchmarks/bench_prepare.py --frames 40 [--reference-frames 4]

Runs on ONE core (Numba and Embree limited to one thread) and prints frames/s per core for each step
of ``pipeline.frames.prepare_frame`` (resampling, ray casting, culling, sampling — from its timing
hook; "ray casting" is the default ``amodal_method="raster"``, z-buffers of the faces in view with
exact ray–triangle tests) plus shard writing, and all-in. The same frames (a prefix of
``--reference-frames``) are then prepared by a straightforward reference: per frame, a fresh Embree
BVH (no shared scene; trimesh's own ray caster needs rtree, which this environment lacks) with
``list_intersections`` for all hits, NumPy culling, ``rng.choice`` face sampling, and brute-force
NumPy distances for the non-surface exclusion; resampling and writing use the same code in both.
The reference is :func:`reference_prepare_frame`; ``tests/test_bench_references.py`` checks that it
gives the same record as ``prepare_frame`` (the same image, depth, visible faces and samples, the
rendered and amodal depth to float32 rounding).

Inputs are made before timing and are what the real ScanNet reader (``pipeline.sources``) hands to
``prepare_frame``: colour rendered at ScanNet's 1296×968 colour size and intrinsics, JPEG-encoded and
decoded in libjpeg draft mode at the smallest scale covering the virtual view (``color_draft``:
324×242), with intrinsics scaled to the decoded size; depth rendered at 640×480. JPEG decoding is
reading, not preparation, so it is not in the per-step figures.
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # frames/s per core: one thread everywhere
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import open3d as o3d  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pipeline.frames import PrepareConfig, RawFrame, SceneGeometry, frame_rng, prepare_frame  # noqa: E402
from pipeline.geometry.camera import pixel_directions, virtual_intrinsics  # noqa: E402
from pipeline.geometry.resample import resample_color, resample_depth  # noqa: E402
from pipeline.frame_sample import FrameSample  # noqa: E402
from pipeline.shards import ShardWriter  # noqa: E402
from pipeline.formats.images import decode_color, encode_jpeg  # noqa: E402
from pipeline.geometry.camera import scale_intrinsics  # noqa: E402
from pipeline.sources import color_draft  # noqa: E402
from pipeline.synthetic.config import (SCANNET_COLOR_INTRINSICS, SCANNET_COLOR_SIZE,  # noqa: E402
                                       SCANNET_DEPTH_INTRINSICS, SCANNET_DEPTH_SIZE)
from pipeline.synthetic.render import PinholeCamera, SceneRenderer  # noqa: E402
from pipeline.synthetic.scene import make_scene  # noqa: E402
from pipeline.synthetic.trajectory import handheld_scan  # noqa: E402

STEPS = ("resampling", "raycasting", "culling", "sampling", "writing")


def make_inputs(n: int, seed: int, edge: float, cfg: PrepareConfig, progress: bool = True
                ) -> tuple[object, list[RawFrame]]:
    """The room mesh (``edge`` metres between vertices) and ``n`` raw frames along a handheld path, as
    the ScanNet reader yields them: colour JPEG-decoded at the draft size for ``cfg``'s virtual
    camera, depth at 640×480 in metres, world-frame poses."""
    layout, mesh = make_scene("scene0000_00", seed, edge_length=edge, furniture_range=(6, 9))
    lx, ly, h = layout.room_size
    renderer = SceneRenderer(mesh, light=np.array([lx / 2, ly / 2, h - 0.3]))
    depth_cam = PinholeCamera.scaled(SCANNET_DEPTH_SIZE, SCANNET_DEPTH_INTRINSICS, SCANNET_DEPTH_SIZE)
    color_cam = PinholeCamera.scaled(SCANNET_COLOR_SIZE, SCANNET_COLOR_INTRINSICS, SCANNET_COLOR_SIZE)
    k_c = color_cam.matrix()
    draft = color_draft(SCANNET_COLOR_SIZE, k_c, cfg.width, cfg.height, cfg.focal)
    path = handheld_scan(layout, n, 0.0, np.random.default_rng(seed))
    frames = []
    for i in tqdm(range(n), desc="rendering inputs", unit="frame", disable=not progress):
        pose = path.camera_to_world[i]
        jpeg = encode_jpeg(renderer.color(color_cam, pose), quality=90)
        color = decode_color(jpeg, path="bench.sens", draft=draft)
        depth = renderer.cast(depth_cam, pose).depth.astype(np.float32)
        frames.append(RawFrame(i, "bench.sens", pose, color, scale_intrinsics(k_c, SCANNET_COLOR_SIZE, color.shape),
                               depth, depth_cam.matrix()))
    return mesh, frames


def run_ours(scene: SceneGeometry, frames: list[RawFrame], cfg: PrepareConfig, out: str) -> dict:
    times = dict.fromkeys(STEPS, 0.0)
    prepare_frame(scene, frames[0], cfg, dataset="scannet", scene_id="bench", split="train")  # JIT
    t0 = time.perf_counter()
    w = ShardWriter(out, frames_per_shard=64)
    for f in frames:
        s = prepare_frame(scene, f, cfg, dataset="scannet", scene_id="bench", split="train",
                          timings=times)
        tw = time.perf_counter()
        if isinstance(s, FrameSample):
            w.append(s)  # buffers; a full shard is compressed and written here
        times["writing"] += time.perf_counter() - tw
    tw = time.perf_counter()
    w.close()  # the last, partly filled shard
    times["writing"] += time.perf_counter() - tw
    times["all-in"] = time.perf_counter() - t0
    return times


def reference_prepare_frame(v: np.ndarray, f: np.ndarray, labels: np.ndarray, frame: RawFrame,
                            cfg: PrepareConfig, times: dict | None = None) -> FrameSample:
    """The straightforward per-frame pipeline: same rules as ``prepare_frame``, no Numba, no shared BVH.

    v: (V, 3) float metres, world frame; f: (F, 3) vertex indices; labels: (F,) NYU40 face labels;
    frame: a raw frame with a valid pose and sensor depth (the visibility box comes from the sensor
    depth only: no fallback to the rendered depth, no skipped frames); cfg: the virtual camera and
    quotas. ``times``, if given, accumulates seconds per step ("resampling", "raycasting", "culling",
    "sampling", "writing" for building the record). Returns the frame's record with dataset
    "scannet", scene "bench", split "train".

    The samples come from ``frame_rng(cfg.seed, "scannet", "bench", frame.index)`` drawn in the same
    order as ``prepare_frame`` draws them (face picks, barycentrics, offsets, then non-surface
    candidates), so the points are the same unless a face pick lands within rounding of a boundary
    of the cumulative areas (``rng.choice`` normalises them first), the surface box reaches nearer
    than ``z_near`` (``prepare_frame`` clips it), or the first round of 4·M candidates keeps fewer
    than M points (``prepare_frame`` draws its rounds in other sizes).
    """
    times = {} if times is None else times
    for step in STEPS:
        times.setdefault(step, 0.0)
    w, h = cfg.width, cfg.height
    k_v = virtual_intrinsics(w, h, cfg.focal)
    t_wc = np.asarray(frame.camera_to_world, float)
    t_cw = np.linalg.inv(t_wc)
    t = time.perf_counter()
    image = resample_color(frame.color, frame.color_intrinsics, w, h, k_v).transpose(2, 0, 1)
    depth = resample_depth(frame.depth, frame.depth_intrinsics, w, h, k_v)
    times["resampling"] += time.perf_counter() - t

    t = time.perf_counter()
    rs = o3d.t.geometry.RaycastingScene()  # rebuilt per frame: no shared BVH
    rs.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32)))
    dirs = (pixel_directions(w, h, k_v) @ t_wc[:3, :3].T).reshape(-1, 3)
    rays = np.concatenate([np.broadcast_to(t_wc[:3, 3], dirs.shape), dirs], 1).astype(np.float32)
    first = rs.cast_rays(o3d.core.Tensor(rays), nthreads=1)["t_hit"].numpy()
    hits = rs.list_intersections(o3d.core.Tensor(rays), nthreads=1)
    ray_ids, t_hit = hits["ray_ids"].numpy(), hits["t_hit"].numpy()
    prim = hits["primitive_ids"].numpy()
    far = np.full(rays.shape[0], -np.inf)
    np.maximum.at(far, ray_ids, t_hit)
    struct_t = np.full(rays.shape[0], np.inf)
    s = np.isin(labels[prim], cfg.structure_labels)
    np.minimum.at(struct_t, ray_ids[s], t_hit[s])
    rendered = np.where(np.isfinite(first), first, np.nan).reshape(h, w).astype(np.float32)
    amodal = np.fmin(np.where(np.isfinite(struct_t), struct_t, np.nan),
                     np.where(np.isfinite(far), far, np.nan)).reshape(h, w).astype(np.float32)
    times["raycasting"] += time.perf_counter() - t

    t = time.perf_counter()
    ok = np.isfinite(depth) & (depth > 0)
    pts = (pixel_directions(w, h, k_v)[ok] * depth[ok][:, None]) @ t_wc[:3, :3].T + t_wc[:3, 3]
    lo, hi = pts.min(0), pts.max(0)
    lo, hi = lo - cfg.box_widen * (hi - lo), hi + cfg.box_widen * (hi - lo)
    tri = v[f].astype(np.float64)
    cen = tri.mean(1)
    c = cen @ t_cw[:3, :3].T + t_cw[:3, 3]
    z = np.maximum(c[:, 2], 1e-9)
    u = 2 * (k_v[0] * c[:, 0] / z + k_v[2]) / w - 1
    vv = 2 * (k_v[1] * c[:, 1] / z + k_v[3]) / h - 1
    vis = np.flatnonzero((c[:, 2] > cfg.z_near) & (np.abs(u) < cfg.frustum_widen)
                         & (np.abs(vv) < cfg.frustum_widen) & np.all((cen >= lo) & (cen <= hi), 1))
    times["culling"] += time.perf_counter() - t

    t = time.perf_counter()
    rng = frame_rng(cfg.seed, "scannet", "bench", frame.index)
    cr = np.cross(tri[vis, 1] - tri[vis, 0], tri[vis, 2] - tri[vis, 0])
    area = 0.5 * np.linalg.norm(cr, axis=1)
    k = cfg.near_surface_points
    pick = rng.choice(vis.size, size=k, p=area / area.sum())
    r1, r2 = np.sqrt(rng.random(k)), rng.random(k)
    a, b, cc = (tri[vis[pick], j] for j in range(3))
    surf = (1 - r1)[:, None] * a + (r1 * (1 - r2))[:, None] * b + (r1 * r2)[:, None] * cc
    n = cr[pick] / np.linalg.norm(cr[pick], axis=1, keepdims=True)
    n *= np.where(np.einsum("ij,ij->i", n, t_wc[:3, 3] - surf) < 0, -1, 1)[:, None]
    d = rng.uniform(-cfg.surface_offset, cfg.surface_offset, k)
    near = (surf + d[:, None] * n) @ t_cw[:3, :3].T + t_cw[:3, 3]
    surf_c = surf @ t_cw[:3, :3].T + t_cw[:3, 3]
    blo, bhi = surf_c.min(0), surf_c.max(0)
    kept = np.empty((0, 3))
    for _ in range(cfg.max_rounds):
        cand = rng.uniform(blo, bhi, (4 * cfg.non_surface_points, 3))
        zc = np.maximum(cand[:, 2], 1e-9)
        inside = (cand[:, 2] > cfg.z_near) & (np.abs(2 * (k_v[0] * cand[:, 0] / zc + k_v[2]) / w - 1) <= 1) \
            & (np.abs(2 * (k_v[1] * cand[:, 1] / zc + k_v[3]) / h - 1) <= 1)
        cand = cand[inside]
        dist = np.sqrt(((cand[:, None, :] - surf_c[None]) ** 2).sum(-1)).min(1)  # brute force
        kept = np.concatenate([kept, cand[dist >= cfg.exclusion_distance]])[: cfg.non_surface_points]
        if len(kept) == cfg.non_surface_points:
            break
    m = cfg.non_surface_points
    non = np.zeros((m, 3), np.float32)
    non[: len(kept)] = kept
    times["sampling"] += time.perf_counter() - t

    t = time.perf_counter()
    sample = FrameSample(
        "scannet", "bench", frame.index, frame.source_file, "train", np.ascontiguousarray(image), depth,
        rendered, amodal, k_v.astype(np.float32), t_cw.astype(np.float32), near.astype(np.float32),
        (d < 0).astype(np.uint8), np.ones(k, bool), non, np.arange(m) < len(kept),
        vis.astype(np.int32))
    times["writing"] += time.perf_counter() - t
    return sample


def run_reference(mesh, frames: list[RawFrame], cfg: PrepareConfig, out: str) -> dict:
    times = dict.fromkeys(STEPS, 0.0)
    t0 = time.perf_counter()
    w = ShardWriter(out, frames_per_shard=64)
    for f in tqdm(frames, desc="reference", unit="frame"):
        sample = reference_prepare_frame(mesh.vertices, mesh.faces, mesh.face_labels, f, cfg, times)
        tw = time.perf_counter()
        w.append(sample)
        times["writing"] += time.perf_counter() - tw
    tw = time.perf_counter()
    w.close()
    times["writing"] += time.perf_counter() - tw
    times["all-in"] = time.perf_counter() - t0
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/bench_prepare.py", description=__doc__)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--reference-frames", type=int, default=4, help="frames for the slow reference")
    ap.add_argument("--edge", type=float, default=0.028, help="mesh edge length (0.028 ≈ 300k faces)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    cfg = PrepareConfig(raycast_threads=1)
    mesh, frames = make_inputs(a.frames, a.seed, a.edge, cfg)
    t = time.perf_counter()
    scene = SceneGeometry.from_mesh(mesh.vertices, mesh.faces, mesh.face_labels, cfg.structure_labels)
    _ = scene.chunks  # what the default path builds per scene (the Embree BVH is not needed)
    setup = time.perf_counter() - t
    ch, cw = frames[0].color.shape[:2]
    print(f"scene: {len(mesh.faces)} faces, {a.frames} frames at {cfg.width}x{cfg.height} "
          f"(colour in: {cw}x{ch} JPEG draft), 1 thread; scene setup (once per scene, incl. face chunks) "
          f"{setup:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_ours(scene, frames, cfg, os.path.join(tmp, "ours"))
        ref_frames = frames[: a.reference_frames]
        ref = run_reference(mesh, ref_frames, cfg, os.path.join(tmp, "ref"))
    print(f"{'step':<12}{'ours frames/s':>15}{'reference frames/s':>20}{'speed-up':>10}")
    for step in STEPS + ("all-in",):
        fo = a.frames / ours[step] if ours[step] > 0 else float("inf")
        fr = len(ref_frames) / ref[step] if ref[step] > 0 else float("inf")
        print(f"{step:<12}{fo:>15.1f}{fr:>20.2f}{fo / fr:>9.1f}x")
    print(f"goal: >= 25 frames/s per core all-in -> {'met' if a.frames / ours['all-in'] >= 25 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
