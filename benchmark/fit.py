"""Scale/shift fit of a predicted depth map to ground truth, and its application to a mesh.

SPEC §5 "Fit": least squares ``gt ≈ a·pred + b`` over pixels where both are finite and
pred > 0; the fitted mesh moves every vertex along its camera ray so that its z becomes a·z + b.
"""
from __future__ import annotations

import numpy as np


def fit_scale_shift(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float, str]:
    """Least-squares a, b with gt ≈ a·pred + b.

    Args:
        pred: (H, W) float, metres, predicted z-depth (NaN or ≤ 0 = none).
        gt: (H, W) float, metres, ground-truth z-depth (NaN = none).
    Returns:
        (a, b, reason): floats, and reason "" on success, "no_valid_pixels" when fewer than two
        pixels are usable, "degenerate_prediction" when the usable predictions are all equal
        (the fit is not unique); a and b are NaN in both failure cases.
    """
    pred = np.asarray(pred, dtype=np.float64).ravel()
    gt = np.asarray(gt, dtype=np.float64).ravel()
    if pred.shape != gt.shape:
        raise ValueError(f"benchmark.fit.fit_scale_shift: pred and gt differ in size "
                         f"({pred.size} vs {gt.size}); render both at the same resolution.")
    with np.errstate(invalid="ignore"):
        mask = np.isfinite(pred) & np.isfinite(gt) & (pred > 0)
    if mask.sum() < 2:
        return float("nan"), float("nan"), "no_valid_pixels"
    p, g = pred[mask], gt[mask]
    # Centred normal equations: a = cov(p, g)/var(p), b = mean(g) − a·mean(p).
    pm, gm = p.mean(), g.mean()
    var = np.mean((p - pm) ** 2)
    if not var > 1e-12 * max(pm * pm, 1e-12):
        return float("nan"), float("nan"), "degenerate_prediction"
    a = float(np.mean((p - pm) * (g - gm)) / var)
    return a, float(gm - a * pm), ""


def apply_scale_shift(vertices: np.ndarray, a: float, b: float) -> np.ndarray:
    """Move camera-frame vertices along their rays so that z' = a·z + b.

    Args:
        vertices: (V, 3) float, metres, camera frame (z forward).
        a, b: scale (unitless) and shift (metres).
    Returns:
        (V, 3) float64: v·(a·z + b)/z; rows with z ≤ 0 (no ray through the image) become NaN.
    """
    v = np.asarray(vertices, dtype=np.float64)
    z = v[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(z > 0, (a * z + b) / z, np.nan)
    return v * factor[:, None]
