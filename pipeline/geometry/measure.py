"""Timing script (not a test): per-step cost of ``prepare_frame`` and the two amodal-depth methods.

    .venv/bin/python -m pipeline.geometry.measure --faces 300000 --frames 20 --threads 1

Builds a deterministic room (subdivided shell) filled with boxes of furniture to about ``--faces``
triangles, then prepares ``--frames`` frames from poses inside the room and prints seconds per frame
and frames/s for each step (resampling, raycasting, culling, sampling), for both amodal methods.
Numba compilation is excluded by a warm-up frame. ``--threads`` caps Embree and Numba threads, so
``--threads 1`` gives frames/s per core.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from pipeline.frames import PrepareConfig, RawFrame, SceneGeometry, prepare_frame


def _grid_box(lo: np.ndarray, hi: np.ndarray, n: int, skip_bottom: bool) -> tuple[np.ndarray, np.ndarray]:
    """Surface of an axis-aligned box, each face an n×n grid of quads: vertices (V, 3), faces (F, 3)."""
    verts, faces = [], []
    g = np.linspace(0.0, 1.0, n + 1)
    for axis in range(3):
        a, b = [k for k in range(3) if k != axis]
        for value in (lo[axis], hi[axis]):
            if skip_bottom and axis == 1 and value == hi[1]:
                continue
            p = np.zeros((n + 1, n + 1, 3))
            p[..., axis] = value
            p[..., a], p[..., b] = np.meshgrid(lo[a] + g * (hi[a] - lo[a]), lo[b] + g * (hi[b] - lo[b]), indexing="ij")
            base = sum(len(v) for v in verts)
            idx = base + np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
            q = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], -1).reshape(-1, 4)
            faces += [q[:, [0, 1, 2]], q[:, [0, 2, 3]]]
            verts.append(p.reshape(-1, 3))
    return np.concatenate(verts), np.concatenate(faces)


def build_scene(n_faces: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Room 8×3×6 m (y down, floor at y = 1.5) + boxes; returns vertices, faces, NYU40 face labels."""
    rng = np.random.default_rng(seed)
    shell_n = int(np.sqrt(n_faces / 2 / 12))  # half the faces in the shell
    v, f = _grid_box(np.array([-4.0, -1.5, -3.0]), np.array([4.0, 1.5, 3.0]), shell_n, False)
    labels = [np.where(np.isclose(v[f].mean(1)[:, 1], 1.5), 2, np.where(np.isclose(v[f].mean(1)[:, 1], -1.5), 22, 1))]
    verts, faces = [v], [f]
    count = len(f)
    while count < n_faces:
        size = rng.uniform(0.3, 1.2, 3)
        lo = np.array([rng.uniform(-3.8, 3.8 - size[0]), 1.5 - size[1], rng.uniform(-2.8, 2.8 - size[2])])
        bv, bf = _grid_box(lo, lo + size, 30, True)
        faces.append(bf + sum(len(x) for x in verts))
        verts.append(bv)
        labels.append(np.full(len(bf), 39))
        count += len(bf)
    return np.concatenate(verts), np.concatenate(faces), np.concatenate(labels)


def poses(n: int, seed: int = 1) -> list[np.ndarray]:
    """Camera-to-world poses at head height looking horizontally in random directions."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        yaw, pitch = rng.uniform(0, 2 * np.pi), rng.uniform(-0.3, 0.1)
        ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
        t = np.eye(4)
        t[:3, :3] = ry @ rx
        t[:3, 3] = [rng.uniform(-3, 3), -0.2, rng.uniform(-2, 2)]
        out.append(t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=int, default=300_000)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="Embree/Numba threads (1 = per-core figures)")
    args = ap.parse_args()
    import numba
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    v, f, lab = build_scene(args.faces)
    t0 = time.perf_counter()
    scene = SceneGeometry.from_mesh(v, f, lab, PrepareConfig().structure_labels)
    _ = scene.raycaster
    print(f"scene: {len(f)} faces, SceneGeometry + Embree build {time.perf_counter() - t0:.2f} s")
    k = np.array([[1170.0, 0, 648], [0, 1170.0, 484], [0, 0, 1]])  # ScanNet-like colour camera
    color = np.random.default_rng(0).integers(0, 255, (968, 1296, 3), dtype=np.uint8)
    kd = np.array([[577.0, 0, 320], [0, 577.0, 240], [0, 0, 1]])
    depth = np.full((480, 640), 2.5, dtype=np.float32)  # flat stand-in; only its box matters here
    frames = [RawFrame(i, "bench", p, color, k, depth, kd) for i, p in enumerate(poses(args.frames))]
    for method in ("repeat", "list"):
        cfg = replace(PrepareConfig(), amodal_method=method, raycast_threads=args.threads)
        prepare_frame(scene, frames[0], cfg, dataset="bench", scene_id="s", split="train")  # warm-up
        timings: dict = {}
        t0 = time.perf_counter()
        done = 0
        for fr in tqdm(frames, desc=f"prepare ({method})"):
            out = prepare_frame(scene, fr, cfg, dataset="bench", scene_id="s", split="train", timings=timings)
            done += not hasattr(out, "reason")
        total = time.perf_counter() - t0
        print(f"amodal_method={method}: {done}/{len(frames)} frames kept, threads={args.threads}")
        for step, sec in sorted(timings.items()):
            print(f"  {step:<11s} {1e3 * sec / len(frames):8.2f} ms/frame  {len(frames) / sec:8.1f} frames/s")
        print(f"  {'all-in':<11s} {1e3 * total / len(frames):8.2f} ms/frame  {len(frames) / total:8.1f} frames/s")


if __name__ == "__main__":
    main()
