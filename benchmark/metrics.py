"""The paper's 3-D and depth metrics for one frame (SPEC §5).

Both functions return plain dicts of floats in SI units (metres, fractions); the report layer
multiplies by 100 (cm, %). Empty inputs never raise: every metric is NaN and ``reason`` names the
cause ("empty_prediction", "empty_gt", "no_valid_pixels"); ``reason`` is "" when all is well.

Precision and recall follow SPEC §5: precision = fraction of *predicted* points within the
threshold of the ground truth, recall = fraction of *ground-truth* points within the threshold of
the prediction. Atlas's ``eval_mesh`` has the two swapped (confirmed by its author in Atlas issue
#19), so numbers computed with it have P and R exchanged.
"""
from __future__ import annotations

import numpy as np

from benchmark.nearest import NearestIndex, nearest_distances
from benchmark.sampling import as_points

MESH_KEYS = ("acc", "compl", "chamfer", "prec", "recall", "f1")
DEPTH_KEYS = ("abs_rel", "abs_diff", "sq_rel", "rmse", "log_rmse", "r1", "r2", "r3", "complete")
# Valid ground-truth depth range in metres (SPEC §5 mask: 0 < gt < 10).
GT_DEPTH_MAX = 10.0


def mesh_metrics(pred_points: np.ndarray, gt_points: np.ndarray, threshold: float = 0.05,
                 nn_method: str = "auto", clamp: float | None = None,
                 gt_index: NearestIndex | None = None) -> dict:
    """Accuracy, completeness, Chamfer, precision, recall and F1 between two point sets.

    Args:
        pred_points: (N, 3) float, metres, points on the predicted surface (samples or vertices).
        gt_points: (M, 3) float, metres, same frame, points on the ground truth. Any other shape
            than (·, 3) is a ValueError (a (N, 6) array with normals is not 2N points).
        threshold: distance in metres below which a point counts as matched (0.05 in the paper).
        nn_method: nearest-neighbour back end, see ``benchmark.nearest.nearest_distances``.
        clamp: when set, every nearest-neighbour distance is capped at it (metres) before the
            means (TransformerFusion's 1 m); precision and recall do not change for clamp > threshold.
        gt_index: a :class:`benchmark.nearest.NearestIndex` already built on exactly ``gt_points``
            (reused across the methods of a frame); built here when None.
    Returns:
        dict with acc = mean pred→GT distance, compl = mean GT→pred distance,
        chamfer = (acc + compl)/2 (metres); prec = fraction of pred points with pred→GT distance
        < threshold, recall = fraction of GT points with GT→pred distance < threshold,
        f1 = 2PR/(P+R) (0 when P = R = 0); and ``reason`` ("" or why everything is NaN).
    """
    pred = as_points(pred_points, "mesh_metrics pred_points")
    gt = as_points(gt_points, "mesh_metrics gt_points")
    pred = pred[np.isfinite(pred).all(axis=1)]
    gt = gt[np.isfinite(gt).all(axis=1)]
    if len(gt) == 0:
        return _nan_dict(MESH_KEYS, "empty_gt")
    if len(pred) == 0:
        return _nan_dict(MESH_KEYS, "empty_prediction")
    if gt_index is None:
        gt_index = NearestIndex(gt, nn_method)
    elif len(gt_index.ref) != len(gt):
        raise ValueError(f"mesh_metrics: gt_index holds {len(gt_index.ref)} points, gt_points {len(gt)}; "
                         f"build the index on the same (finite) points")
    d_pred = gt_index.distances(pred)  # accuracy side
    d_gt = nearest_distances(gt, pred, nn_method)  # completeness side
    if clamp is not None:
        d_pred, d_gt = np.minimum(d_pred, clamp), np.minimum(d_gt, clamp)
    acc = float(d_pred.mean())
    compl = float(d_gt.mean())
    prec = float((d_pred < threshold).mean())
    recall = float((d_gt < threshold).mean())
    f1 = 2.0 * prec * recall / (prec + recall) if prec + recall > 0 else 0.0
    return {"acc": acc, "compl": compl, "chamfer": 0.5 * (acc + compl), "prec": prec,
            "recall": recall, "f1": f1, "reason": ""}


def depth_metrics(pred: np.ndarray, gt: np.ndarray) -> dict:
    """Standard depth-map metrics of a predicted depth map against ground truth.

    Args:
        pred: (H, W) float, metres, z-depth; NaN or ≤ 0 where there is no prediction.
        gt: (H, W) float, metres, z-depth; NaN where unknown.
    Returns:
        dict (all floats) over the pixels with pred > 0 and 0 < gt < 10 (both finite):
        abs_rel = mean |p−g|/g, abs_diff = mean |p−g| (m), sq_rel = mean (p−g)²/g,
        rmse = sqrt(mean (p−g)²) (m), log_rmse = sqrt(mean (ln p − ln g)²),
        r1, r2, r3 = fraction with max(p/g, g/p) < 1.25, 1.25², 1.25³; and
        complete = fraction of *all* H·W pixels that have a prediction (pred > 0), as in Atlas's
        ``eval_depth``; it is reported even when the other metrics are NaN.
        ``reason`` is "empty_gt" when no ground-truth pixel is valid (0 < gt < 10), else
        "no_valid_pixels" when no pixel passes the joint mask, else "".
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"benchmark.metrics.depth_metrics: pred and gt must have the same shape, "
                         f"got {pred.shape} and {gt.shape}; render the prediction at the ground "
                         f"truth's resolution first.")
    with np.errstate(invalid="ignore"):
        has_gt = np.isfinite(gt) & (gt > 0) & (gt < GT_DEPTH_MAX)
        has_pred = np.isfinite(pred) & (pred > 0)
    complete = float(has_pred.mean()) if has_pred.size else float("nan")
    mask = has_gt & has_pred
    if not mask.any():
        out = _nan_dict(DEPTH_KEYS, "empty_gt" if not has_gt.any() else "no_valid_pixels")
        out["complete"] = complete
        return out
    p = pred[mask]
    g = gt[mask]
    diff = p - g
    ratio = np.maximum(p / g, g / p)
    return {
        "abs_rel": float(np.mean(np.abs(diff) / g)),
        "abs_diff": float(np.mean(np.abs(diff))),
        "sq_rel": float(np.mean(diff ** 2 / g)),
        "rmse": float(np.sqrt(np.mean(diff ** 2))),
        "log_rmse": float(np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2))),
        "r1": float(np.mean(ratio < 1.25)),
        "r2": float(np.mean(ratio < 1.25 ** 2)),
        "r3": float(np.mean(ratio < 1.25 ** 3)),
        "complete": complete,
        "reason": "",
    }


def penalized_mesh(clamp: float) -> dict:
    """The mesh metrics of a failed frame under ``missing: penalize`` (SPEC §5.9): a missing or empty
    prediction matches nothing, so prec = recall = f1 = 0 and acc = compl = chamfer = ``clamp`` (m)."""
    return {"acc": clamp, "compl": clamp, "chamfer": clamp, "prec": 0.0, "recall": 0.0, "f1": 0.0}


def penalized_depth(complete: float = 0.0) -> dict:
    """The depth metrics of a frame without usable predicted depth under ``missing: penalize``:
    δ₁–δ₃ = 0 and ``complete`` as measured (0 without any prediction, NaN becomes 0). AbsRel,
    AbsDiff, SqRel, RMSE and LogRMSE have no bounded worst value and stay NaN (the report averages
    them over the frames that have them, and says so)."""
    out = {k: float("nan") for k in DEPTH_KEYS}
    out.update(r1=0.0, r2=0.0, r3=0.0, complete=complete if np.isfinite(complete) else 0.0)
    return out


def _nan_dict(keys: tuple[str, ...], reason: str) -> dict:
    out: dict = {k: float("nan") for k in keys}
    out["reason"] = reason
    return out
