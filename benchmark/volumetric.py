"""Volumetric and object-level surface metrics (SPEC §5.13): IoU, Chamfer-L1/L2, normal consistency.

Definitions follow Occupancy Networks' evaluation (``im2mesh/eval.py`` of
https://github.com/autonomousvision/occupancy_networks, read for this module), the protocol DISN and
IF-Net-style single-view work reuse:

- **IoU**: points drawn uniformly in the evaluation scope (the normalised cube for objects), each
  marked inside/outside by the prediction and by a *watertight* reference;
  ``IoU = |pred ∩ gt| / |pred ∪ gt|`` over those points.
- **Accuracy / completeness**: mean distance from each predicted surface sample to its nearest
  ground-truth sample, and from each ground-truth sample to its nearest predicted one (exact nearest
  neighbours, :func:`benchmark.nearest.nearest_neighbours`); their squared versions likewise.
- **Chamfer-L1** = ½ (accuracy + completeness) (mean of *unsquared* Euclidean distances);
  **Chamfer-L2** = ½ (accuracy² + completeness²) (means of squared distances).
- **Normal consistency** = ½ (mean over predicted samples of |n_pred · n_gt(nearest)| + the same from
  the ground-truth side): the absolute value makes a surface with flipped normals score 1.

Values are returned raw, in the unit of the input coordinates (for objects: the normalised cube of
side 1); the report layer applies the papers' display scaling (SPEC §5.13). An empty prediction scores
the worst values for the unit cube, as Occupancy Networks does for the distances (accuracy =
completeness = √3, their squares 3) and IoU from the inside test (0 when the reference is not empty);
its normal consistency is 0 (Occupancy Networks writes −1 there), and ``reason`` says
``empty_prediction``. Without a watertight reference (real scans), IoU is NaN with
``iou_reason = "no_watertight_reference"``: inside/outside is undefined for an open, holed mesh.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from benchmark.nearest import nearest_neighbours
from benchmark.sampling import sample_surface_faces

SURFACE_KEYS = ("accuracy", "completeness", "chamfer_l1", "chamfer_l2", "normal_consistency")
OBJECT_KEYS = ("iou", *SURFACE_KEYS)
EMPTY_DISTANCE = float(np.sqrt(3.0))
"""Accuracy/completeness of an empty prediction: the diagonal of the unit cube (Occupancy Networks)."""
NO_WATERTIGHT_REFERENCE = "no_watertight_reference"

Inside = Callable[[np.ndarray], np.ndarray]
"""Inside test: points (N, 3) → (N,) bool, True = inside (occupied)."""


def uniform_points(lo: np.ndarray, hi: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` points uniform in the box [lo, hi] (each (3,), any frame and unit), float64, seeded."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    return lo + np.random.default_rng(seed).random((int(n), 3)) * (hi - lo)


def volumetric_iou(pred: np.ndarray | Inside, gt: np.ndarray | Inside, points: np.ndarray | None = None) -> float:
    """IoU of two inside/outside labellings of the same points.

    pred, gt: (N,) bool labels of ``points``, or inside tests applied to ``points`` (N, 3).
    Returns |pred ∧ gt| / |pred ∨ gt|; NaN when both are empty (nothing to compare).
    """
    labels = []
    for name, side in (("pred", pred), ("gt", gt)):
        if callable(side):
            if points is None:
                raise ValueError(f"benchmark.volumetric.volumetric_iou: {name} is an inside test, so pass the points")
            side = side(np.asarray(points, dtype=np.float64))
        labels.append(np.asarray(side, dtype=bool).reshape(-1))
    if labels[0].shape != labels[1].shape:
        raise ValueError(f"benchmark.volumetric.volumetric_iou: pred and gt label {labels[0].size} and "
                         f"{labels[1].size} points; label the same points")
    union = np.count_nonzero(labels[0] | labels[1])
    return float(np.count_nonzero(labels[0] & labels[1]) / union) if union else float("nan")


def surface_metrics(pred_points: np.ndarray, pred_normals: np.ndarray, gt_points: np.ndarray,
                    gt_normals: np.ndarray) -> dict:
    """Accuracy, completeness, Chamfer-L1/L2 and normal consistency of two oriented point samples.

    pred_points, gt_points: (N, 3), (M, 3) surface samples, same frame and unit; pred_normals,
    gt_normals: their (N, 3), (M, 3) normals (any length ≠ 0, any orientation). Returns the
    :data:`SURFACE_KEYS` (raw, input units) and ``reason`` ("" or "empty_prediction"; an empty
    ground truth is a caller error).
    """
    pred, gt = _points(pred_points, "pred_points"), _points(gt_points, "gt_points")
    if len(gt) == 0:
        raise ValueError("benchmark.volumetric.surface_metrics: the ground-truth sample is empty; a reference "
                         "surface is required")
    if len(pred) == 0:
        return {"accuracy": EMPTY_DISTANCE, "completeness": EMPTY_DISTANCE, "chamfer_l1": EMPTY_DISTANCE,
                "chamfer_l2": 3.0, "normal_consistency": 0.0, "reason": "empty_prediction"}
    n_pred, n_gt = _unit(pred_normals, len(pred), "pred_normals"), _unit(gt_normals, len(gt), "gt_normals")
    acc, acc_nc = _nearest(pred, n_pred, gt, n_gt)
    comp, comp_nc = _nearest(gt, n_gt, pred, n_pred)
    return {"accuracy": float(acc.mean()), "completeness": float(comp.mean()),
            "chamfer_l1": 0.5 * float(acc.mean() + comp.mean()),
            "chamfer_l2": 0.5 * float((acc ** 2).mean() + (comp ** 2).mean()),
            "normal_consistency": 0.5 * float(acc_nc.mean() + comp_nc.mean()), "reason": ""}


def oriented_samples(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` area-weighted surface samples of a mesh and their face normals (right-hand rule, unit).

    vertices (V, 3), faces (F, 3). Returns points (n, 3) and normals (n, 3), float64; both (0, 3) for a
    mesh without area. Sampling as :func:`benchmark.sampling.sample_surface` (same seed, same points).
    """
    points, face = sample_surface_faces(vertices, faces, n, seed)
    if len(face) == 0:
        return points, np.zeros((0, 3))
    v = np.asarray(vertices, dtype=np.float64)
    tri = np.asarray(faces)[face]
    normals = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])
    return points, normals / np.linalg.norm(normals, axis=1, keepdims=True)


def iou_or_reason(pred: np.ndarray | Inside, gt: np.ndarray | Inside | None, points: np.ndarray) -> tuple[float, str]:
    """(IoU, "") against a watertight reference, or (NaN, "no_watertight_reference") when ``gt`` is None
    (e.g. a real scan's open mesh, whose inside is undefined)."""
    if gt is None:
        return float("nan"), NO_WATERTIGHT_REFERENCE
    return volumetric_iou(pred, gt, points), ""


def _nearest(src: np.ndarray, n_src: np.ndarray, ref: np.ndarray, n_ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances src → ref and |n_src · n_ref(nearest)| per source point (exact k-d tree)."""
    dist, idx = nearest_neighbours(src, ref)
    return dist, np.abs(np.einsum("ij,ij->i", n_src, n_ref[idx]))


def _points(points: np.ndarray, name: str) -> np.ndarray:
    points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(points).all():
        raise ValueError(f"benchmark.volumetric: {name} holds NaN or inf coordinates; drop those rows first")
    return points


def _unit(normals: np.ndarray, n: int, name: str) -> np.ndarray:
    normals = np.asarray(normals, dtype=np.float64).reshape(-1, 3)
    if len(normals) != n:
        raise ValueError(f"benchmark.volumetric: {name} has {len(normals)} rows for {n} points; "
                         "pass one normal per point")
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    if not np.all(length > 0):
        raise ValueError(f"benchmark.volumetric: {name} has zero-length normals; sample faces of positive area")
    return normals / length
