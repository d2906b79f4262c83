"""Per-frame CPU cost of the 3-D evaluation: ours vs an Atlas-style reference, same run.

    python benchmarks/bench_metrics.py [--faces 400000] [--samples 200000] [--repeats 3] [--shift 0]

A synthetic room (floor, ceiling, four walls, three boxes; camera frame) is tessellated into
~``--faces`` triangles (400k by default: ~90k ground-truth and ~100k predicted faces per frame).
The ground truth is its faces whose centroid lies in the frustum widened by
1.05 (SPEC §4, occlusion ignored); the prediction is the room with 2 cm vertex noise clipped to a
frustum widened by 1.1 (as marching cubes on the evaluation grid gives). ``--shift 0.2`` moves the
prediction 0.2 m along x, y and z, so every wall is 0.2 m from the ground truth: a poor prediction,
whose nearest neighbours are all far (the costly case for a KD-tree). One frame costs:

- delineation of the prediction (release protocol). Ours: ``benchmark.protocols.delineate``
  (vectorised); reference: a Python loop over faces testing each vertex.
- sampling ``--samples`` points on each of the two meshes. Ours: ``sample_surface``
  (vectorised inverse-CDF); reference: a Python loop over faces drawing each face's share.
- nearest neighbours both ways + metrics. Ours: ``mesh_metrics`` (pykdtree, all
  points at once); reference: one cKDTree per side queried point by point in a Python loop, as
  Atlas's ``eval_mesh`` does with Open3D's ``search_knn_vector_3d``.

Ours is the minimum over ``--repeats`` runs (after one warm-up that compiles the Numba kernels);
the reference runs once. Both compute the same metrics, printed at the end as a cross-check. The
reference steps are :func:`atlas_style_delineate`, :func:`atlas_style_sample` and
:func:`atlas_style_metrics`; ``tests/test_bench_references.py`` checks each against ours.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.spatial import cKDTree
from tqdm import tqdm

from benchmark.metrics import mesh_metrics
from benchmark.protocols import delineate
from benchmark.sampling import sample_surface

W, H, F = 256, 192, 230.4
K = np.array([F, F, W / 2, H / 2])


def grid_rect(origin: np.ndarray, du: np.ndarray, dv: np.ndarray, n_u: int, n_v: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Rectangle origin + s·du + t·dv, s, t ∈ [0, 1], as 2·n_u·n_v triangles: vertices
    ((n_u+1)(n_v+1), 3) float64 in the frame and unit of the arguments, faces (2·n_u·n_v, 3) int."""
    s, t = np.meshgrid(np.linspace(0, 1, n_u + 1), np.linspace(0, 1, n_v + 1), indexing="ij")
    v = origin + s[..., None] * du + t[..., None] * dv
    idx = np.arange((n_u + 1) * (n_v + 1)).reshape(n_u + 1, n_v + 1)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()
    return v.reshape(-1, 3), np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])


def room(n_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """A 6 × 3 × 7 m room with three boxes, camera frame (y down), camera 1.4 m above the floor."""
    e = np.eye(3)
    rects = [((-3, 1.4, -2), 6 * e[0], 7 * e[2]), ((-3, -1.6, -2), 6 * e[0], 7 * e[2]),
             ((-3, -1.6, -2), 3 * e[1], 7 * e[2]), ((3, -1.6, -2), 3 * e[1], 7 * e[2]),
             ((-3, -1.6, 5), 6 * e[0], 3 * e[1]), ((-3, -1.6, -2), 6 * e[0], 3 * e[1])]
    for x0, z0, size in [(-2.5, 3.0, 0.8), (0.5, 2.0, 0.6), (1.5, 4.0, 1.0)]:
        top = 1.4 - size
        rects += [((x0, top, z0), size * e[0], size * e[2]),  # top
                  ((x0, top, z0), size * e[0], size * e[1]),  # front
                  ((x0, top, z0), size * e[2], size * e[1]),  # left
                  ((x0 + size, top, z0), size * e[2], size * e[1])]  # right
    area = np.array([np.linalg.norm(np.cross(du, dv)) for _, du, dv in rects])
    verts, faces, offset = [], [], 0
    for (o, du, dv), a in zip(rects, area):
        # Same triangle size everywhere: faces per rectangle proportional to its area.
        cells = max(1, int(round(n_faces / 2 * a / area.sum())))
        ratio = np.linalg.norm(du) / np.linalg.norm(dv)
        n_u = max(1, int(round(np.sqrt(cells * ratio))))
        n_v = max(1, int(round(cells / n_u)))
        v, f = grid_rect(np.asarray(o, float), du, dv, n_u, n_v)
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def in_frustum(v: np.ndarray, f: np.ndarray, widen: float) -> np.ndarray:
    """(F,) bool: face centroid with |u|, |v| < widen and z > 0.1 at the virtual camera ``K``
    (``v`` (V, 3) metres, camera frame; ``f`` (F, 3) vertex indices)."""
    c = v[f].mean(axis=1)
    z = np.maximum(c[:, 2], 1e-9)
    u = 2 * (K[0] * c[:, 0] / z + K[2]) / W - 1
    w = 2 * (K[1] * c[:, 1] / z + K[3]) / H - 1
    return (c[:, 2] > 0.1) & (np.abs(u) < widen) & (np.abs(w) < widen)


def make_frame(n_faces: int, shift: float = 0.0, seed: int = 0) -> tuple[np.ndarray, ...]:
    """One evaluation frame on :func:`room` with ~``n_faces`` faces (see the module docstring).

    Returns (gt_v, gt_f, pred_v, pred_f, t_wc, lo, hi): ground-truth and predicted vertices (V, 3)
    metres, camera frame, and faces (F, 3); camera-to-world (4, 4); the world-frame box (3,), (3,)
    of the ground-truth faces' vertices.
    """
    room_v, room_f = room(n_faces)
    rng = np.random.default_rng(seed)
    gt_v, gt_f = room_v, room_f[in_frustum(room_v, room_f, 1.05)]
    pred_v = room_v + rng.normal(0, 0.02, room_v.shape) + shift
    pred_f = room_f[in_frustum(pred_v, room_f, 1.1)]
    t_wc = np.array([[0, -1, 0, 5.0], [1, 0, 0, -3.0], [0, 0, 1, 1.0], [0, 0, 0, 1]])
    world = gt_v[np.unique(gt_f)] @ t_wc[:3, :3].T + t_wc[:3, 3]
    return gt_v, gt_f, pred_v, pred_f, t_wc, world.min(0), world.max(0)


def atlas_style_delineate(v: np.ndarray, f: np.ndarray, lo: np.ndarray, hi: np.ndarray, t_wc: np.ndarray,
                          border: float = 4 / 128, margin: float = 0.02) -> np.ndarray:
    """Release-protocol delineation (SPEC §5.5) as a per-face Python loop over each face's vertices.

    v: (V, 3) metres, camera frame; f: (F, 3) vertex indices; lo, hi: (3,) metres, world frame, box
    of the ground-truth visible mesh (widened by ``margin`` of its extent per side); t_wc: (4, 4)
    camera-to-world. A face is kept when every vertex has z > 0, |u|, |v| < 1 − ``border`` at the
    virtual camera ``K`` and lies in the widened box. Returns (F,) bool, as
    ``benchmark.protocols.delineate(..., protocol="release")``.
    """
    pad = margin * (hi - lo)
    keep = np.zeros(len(f), dtype=bool)
    for i, tri in enumerate(tqdm(f, desc="ref delineate", leave=False)):
        ok = True
        for p in v[tri]:
            if p[2] <= 0:
                ok = False
                break
            u = 2 * (K[0] * p[0] / p[2] + K[2]) / W - 1
            w = 2 * (K[1] * p[1] / p[2] + K[3]) / H - 1
            q = t_wc[:3, :3] @ p + t_wc[:3, 3]
            if abs(u) >= 1 - border or abs(w) >= 1 - border or \
                    np.any(q < lo - pad) or np.any(q > hi + pad):
                ok = False
                break
        keep[i] = ok
    return keep


def atlas_style_sample(v: np.ndarray, f: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Area-uniform surface samples by a per-face loop: each face draws its area share of ``n``
    points (rounded), as naive code does; so the total is ``n`` only up to rounding (± faces / 2).

    v: (V, 3) float metres; f: (F, 3) vertex indices. Returns (≈n, 3) float64 in the frame of ``v``.
    Same distribution as ``benchmark.sampling.sample_surface`` but not the same points (that one draws
    every point's face from one cumulative-area table).
    """
    rng = np.random.default_rng(seed)
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    counts = np.round(area / area.sum() * n).astype(int)
    out = []
    for (a, b, c), k in tqdm(zip(tri, counts), total=len(tri), desc="ref sample", leave=False):
        if k == 0:
            continue
        r1, r2 = np.sqrt(rng.random(k)), rng.random(k)
        out.append((1 - r1)[:, None] * a + (r1 * (1 - r2))[:, None] * b + (r1 * r2)[:, None] * c)
    return np.concatenate(out)


def atlas_style_metrics(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.05) -> dict[str, float]:
    """Acc / Compl / Prec / Recall / F1 (SPEC §5.7) from point-by-point cKDTree queries in a Python
    loop, both ways, as Atlas's ``eval_mesh`` does with Open3D's ``search_knn_vector_3d``.

    pred, gt: (N, 3), (M, 3) float points, metres, same frame; threshold in metres. Returns the
    metrics under the keys of ``benchmark.metrics.mesh_metrics`` (without its ``chamfer``).
    """
    def loop(query, tree):
        return np.array([tree.query(p)[0] for p in tqdm(query, desc="ref NN", leave=False)])

    d_pred = loop(pred, cKDTree(gt))
    d_gt = loop(gt, cKDTree(pred))
    prec, rec = (d_pred < threshold).mean(), (d_gt < threshold).mean()
    return {"acc": d_pred.mean(), "compl": d_gt.mean(), "prec": prec, "recall": rec,
            "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0}


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table (step, ours, reference, ratio)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=400_000, help="faces of the whole room")
    ap.add_argument("--samples", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shift", type=float, default=0.0, help="prediction offset, metres per axis")
    args = ap.parse_args(argv)

    gt_v, gt_f, pred_v, pred_f, t_wc, lo, hi = make_frame(args.faces, args.shift)
    print(f"scene: {len(gt_f)} GT faces, {len(pred_f)} predicted faces, {args.samples} samples "
          f"per mesh")

    def ours():
        times = {}
        t0 = time.perf_counter()
        keep = delineate(pred_v, pred_f, intrinsics=K, width=W, height=H, gt_box_min=lo,
                         gt_box_max=hi, camera_to_world=t_wc)
        t1 = time.perf_counter()
        pred_pts = sample_surface(pred_v, pred_f[keep], args.samples, seed=1)
        gt_pts = sample_surface(gt_v, gt_f, args.samples, seed=0)
        t2 = time.perf_counter()
        m = mesh_metrics(pred_pts, gt_pts)
        t3 = time.perf_counter()
        mesh_metrics(pred_pts, gt_pts, nn_method="kdtree")  # vectorised cKDTree, for comparison
        t4 = time.perf_counter()
        times.update(delineate=t1 - t0, sample=t2 - t1, metrics=t3 - t2, kdtree=t4 - t3)
        return times, m, keep

    ours()  # warm-up: Numba compilation / cache load
    runs = [ours() for _ in range(args.repeats)]
    best = {k: min(r[0][k] for r in runs) for k in runs[0][0]}
    m_ours, keep = runs[0][1], runs[0][2]

    ref = {}
    t0 = time.perf_counter()
    keep_ref = atlas_style_delineate(pred_v, pred_f, lo, hi, t_wc)
    t1 = time.perf_counter()
    pred_pts = atlas_style_sample(pred_v, pred_f[keep_ref], args.samples, seed=1)
    gt_pts = atlas_style_sample(gt_v, gt_f, args.samples, seed=0)
    t2 = time.perf_counter()
    m_ref = atlas_style_metrics(pred_pts, gt_pts)
    t3 = time.perf_counter()
    ref.update(delineate=t1 - t0, sample=t2 - t1, metrics=t3 - t2)
    assert np.array_equal(keep, keep_ref), "reference and vectorised delineation disagree"

    print(f"\n{'step':<28}{'ours [s]':>10}{'reference [s]':>15}{'ratio':>8}")
    labels = {"delineate": "delineation", "sample": f"sampling 2x{args.samples}",
              "metrics": "NN both ways + metrics"}
    for k, label in labels.items():
        print(f"{label:<28}{best[k]:>10.3f}{ref[k]:>15.3f}{ref[k] / best[k]:>7.1f}x")
    print(f"{'  (same, vectorised cKDTree)':<28}{best['kdtree']:>10.3f}{ref['metrics']:>15.3f}"
          f"{ref['metrics'] / best['kdtree']:>7.1f}x")
    to, tr = sum(best[k] for k in labels), sum(ref.values())
    print(f"{'total per frame':<28}{to:>10.3f}{tr:>15.3f}{tr / to:>7.1f}x")
    print(f"\nkept faces: {int(keep.sum())} of {len(pred_f)} (identical in both)")
    print("metrics (ours | reference): " + ", ".join(
        f"{k} {m_ours[k]:.4f}|{m_ref[k]:.4f}" for k in ("acc", "compl", "prec", "recall", "f1")))


if __name__ == "__main__":
    main()
