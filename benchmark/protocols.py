"""Delineation protocols and the per-frame evaluation of one predicted mesh (SPEC §5).

Two protocols, named in every output:

- ``"release"`` (the public code): keep a triangle if all three vertices satisfy
  |u|, |v| < 1 − border (border = 4/128) at the virtual camera, lie in front of it (z > 0), and lie
  inside the ground-truth visible mesh's world bounding box widened by ``box_margin`` (2 % of the
  box extent on every side). "Fit first, then delineate": the mask is computed on the raw mesh and
  on the depth-fitted mesh and their union is kept, for both the "metric" and the "fit" scores.
- ``"paper"``: the same, and additionally each of the three vertices must lie in front of
  ``amodal_factor`` (1.05) × the amodal depth at the pixel it projects to (z < 1.05·amodal;
  a pixel without amodal depth rejects the vertex). A triangle is judged by its vertices, all three
  must pass, exactly like the frustum and box tests, so a kept triangle never pokes out of scope.

Frames: predicted vertices are in the camera frame (OpenCV, metres); the ground-truth box is in the
world frame, reached with ``camera_to_world`` (4, 4).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.fit import apply_scale_shift, fit_scale_shift
from benchmark.metrics import DEPTH_KEYS, depth_metrics, mesh_metrics
from benchmark.render import render_depth
from benchmark.sampling import sample_surface

PROTOCOLS = ("release", "paper")


def delineate(pred_vertices: np.ndarray, pred_faces: np.ndarray, *, intrinsics: np.ndarray,
              width: int, height: int, gt_box_min: np.ndarray, gt_box_max: np.ndarray,
              camera_to_world: np.ndarray, protocol: str = "release",
              amodal_depth: np.ndarray | None = None, border: float = 4 / 128,
              box_margin: float = 0.02, amodal_factor: float = 1.05) -> np.ndarray:
    """Mask of the triangles inside the evaluation scope of one frame.

    Args:
        pred_vertices: (V, 3) float, metres, camera frame (x right, y down, z forward).
        pred_faces: (F, 3) integer vertex indices.
        intrinsics: (4,) fx, fy, cx, cy in pixels of the (virtual) image of width × height.
        gt_box_min, gt_box_max: (3,) float, metres, **world frame**, axis-aligned bounding box of
            the ground-truth visible mesh (before widening).
        camera_to_world: (4, 4) float, maps camera points to world points.
        protocol: "release" or "paper" (see the module docstring).
        amodal_depth: (height, width) float metres, NaN where unknown; required for "paper".
        border: frustum margin in normalised units; keep |u|, |v| < 1 − border.
        box_margin: box widening per side as a fraction of the box extent.
        amodal_factor: depth scope factor of the paper protocol.
    Returns:
        (F,) bool, True = triangle kept.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"benchmark.protocols.delineate: protocol must be one of {PROTOCOLS}, "
                         f"got {protocol!r}.")
    v = np.asarray(pred_vertices, dtype=np.float64).reshape(-1, 3)
    faces = np.asarray(pred_faces, dtype=np.int64).reshape(-1, 3)
    fx, fy, cx, cy = (float(x) for x in np.asarray(intrinsics).ravel()[:4])
    z = v[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        px = fx * v[:, 0] / z + cx  # pixel coordinates, pixel centres at +0.5
        py = fy * v[:, 1] / z + cy
        u = 2.0 * px / width - 1.0
        w = 2.0 * py / height - 1.0
        ok = (z > 0) & (np.abs(u) < 1.0 - border) & (np.abs(w) < 1.0 - border)
    lo = np.asarray(gt_box_min, dtype=np.float64)
    hi = np.asarray(gt_box_max, dtype=np.float64)
    pad = box_margin * (hi - lo)
    t = np.asarray(camera_to_world, dtype=np.float64)
    world = v @ t[:3, :3].T + t[:3, 3]
    ok &= np.all((world >= lo - pad) & (world <= hi + pad), axis=1)
    if protocol == "paper":
        if amodal_depth is None:
            raise ValueError("benchmark.protocols.delineate: protocol 'paper' needs amodal_depth "
                             "(H, W) metres; pass the frame's amodal depth or use 'release'.")
        amodal = np.asarray(amodal_depth, dtype=np.float64)
        if amodal.shape != (height, width):
            raise ValueError(f"benchmark.protocols.delineate: amodal_depth must be "
                             f"({height}, {width}), got {amodal.shape}.")
        idx = np.flatnonzero(ok)
        col = np.clip(np.floor(px[idx]).astype(np.int64), 0, width - 1)
        row = np.clip(np.floor(py[idx]).astype(np.int64), 0, height - 1)
        scope = amodal[row, col]
        with np.errstate(invalid="ignore"):
            ok[idx] = np.isfinite(scope) & (z[idx] < amodal_factor * scope)
    if len(faces) == 0:
        return np.zeros(0, dtype=bool)
    return ok[faces].all(axis=1)


@dataclass
class Scope:
    """The fitted and delineated prediction of one frame (see :func:`fit_and_delineate`).

    pred_depth: (H, W) float64 metres, raw prediction rendered at the virtual camera, NaN = none.
    fit_a, fit_b, fit_reason: the scale/shift fit gt ≈ a·pred + b ("" or why it failed).
    fit_vertices: (V, 3) float64 metres camera frame, the fitted mesh; None when the fit failed.
    keep: (F,) bool, triangles of the prediction inside the protocol's scope.
    gt_faces: (F', 3) int64, the ground-truth faces scored (all of them unless ``clip_gt``).
    """

    pred_depth: np.ndarray
    fit_a: float
    fit_b: float
    fit_reason: str
    fit_vertices: np.ndarray | None
    keep: np.ndarray
    gt_faces: np.ndarray


def fit_and_delineate(pred_v: np.ndarray, pred_f: np.ndarray, gt_v: np.ndarray, gt_f: np.ndarray,
                      gt_depth: np.ndarray, *, intrinsics: np.ndarray, camera_to_world: np.ndarray,
                      protocol: str = "release", amodal_depth: np.ndarray | None = None,
                      clip_gt: bool = False, border: float = 4 / 128, box_margin: float = 0.02,
                      amodal_factor: float = 1.05, pred_depth: np.ndarray | None = None) -> Scope:
    """Fit first, then delineate one prediction (SPEC §5); arguments as in :func:`evaluate_frame`
    (arrays already float64 (V, 3) / int64 (F, 3), camera frame, metres)."""
    height, width = gt_depth.shape
    fx, fy, cx, cy = (float(x) for x in np.asarray(intrinsics).ravel()[:4])
    # Fit first: render the raw prediction (unless its depth is given) and fit gt ≈ a·pred + b.
    if pred_depth is None:
        pred_depth = render_depth(pred_v, pred_f, fx, fy, cx, cy, width, height)
    pred_depth = np.asarray(pred_depth, dtype=np.float64)
    a, b, fit_reason = fit_scale_shift(pred_depth, gt_depth)
    fit_v = apply_scale_shift(pred_v, a, b) if not fit_reason else None

    t = np.asarray(camera_to_world, dtype=np.float64)
    used = gt_v[np.unique(gt_f)] if len(gt_f) else np.zeros((0, 3))
    world = used @ t[:3, :3].T + t[:3, 3]
    kw = dict(intrinsics=intrinsics, width=width, height=height, camera_to_world=t,
              protocol=protocol, amodal_depth=amodal_depth, border=border,
              box_margin=box_margin, amodal_factor=amodal_factor)
    if len(world):
        kw.update(gt_box_min=world.min(axis=0), gt_box_max=world.max(axis=0))
        # Then delineate both meshes and keep the union of the two masks.
        keep = delineate(pred_v, pred_f, **kw)
        if fit_v is not None:
            keep |= delineate(fit_v, pred_f, **kw)
        if clip_gt:
            gt_f = gt_f[delineate(gt_v, gt_f, **kw)]
    else:
        keep = np.zeros(len(pred_f), dtype=bool)
    return Scope(pred_depth, a, b, fit_reason, fit_v, keep, gt_f)


def evaluate_frame(pred_vertices: np.ndarray, pred_faces: np.ndarray, gt_vertices: np.ndarray,
                   gt_faces: np.ndarray, gt_depth: np.ndarray, *, intrinsics: np.ndarray,
                   camera_to_world: np.ndarray, protocol: str = "release",
                   amodal_depth: np.ndarray | None = None, n_samples: int = 200_000,
                   seed: int = 0, threshold: float = 0.05, clip_gt: bool = False,
                   border: float = 4 / 128, box_margin: float = 0.02,
                   amodal_factor: float = 1.05, pred_depth: np.ndarray | None = None) -> dict:
    """Score one predicted mesh against the ground truth, raw ("metric") and depth-fitted ("fit").

    Args:
        pred_vertices, pred_faces: (V, 3) float metres camera frame, (F, 3) int; the prediction.
        gt_vertices, gt_faces: (V', 3) float metres camera frame, (F', 3) int; the ground-truth
            visible mesh of this frame.
        gt_depth: (H, W) float metres, ground-truth z-depth at the virtual camera, NaN = none;
            its shape sets the image size for rendering, the fit and the frustum test.
        intrinsics: (4,) fx, fy, cx, cy in pixels of that image.
        camera_to_world: (4, 4) camera-to-world pose.
        protocol: "release" or "paper" (then amodal_depth (H, W) metres is required).
        n_samples: points sampled area-weighted on each mesh (seed for GT, seed + 1 for pred).
        threshold: precision/recall distance in metres.
        clip_gt: also delineate the ground-truth mesh with the same protocol (default False: the
            visible mesh is the ground truth as given).
        pred_depth: the prediction's (H, W) z-depth, metres, NaN = none, when it comes from
            elsewhere than the mesh (a sphere-traced SDF, SPEC §5.12); None renders the mesh.
    Returns:
        {"protocol", "fit_a", "fit_b", "fit_reason", "faces_total", "faces_kept",
         "metric": {mesh metrics, reason, depth_* metrics, depth_reason},
         "fit": {same keys}}; see ``benchmark.metrics`` for the metric definitions.
    """
    gt_depth = np.asarray(gt_depth, dtype=np.float64)
    gt_v = np.asarray(gt_vertices, dtype=np.float64).reshape(-1, 3)
    gt_f = np.asarray(gt_faces, dtype=np.int64).reshape(-1, 3)
    pred_v = np.asarray(pred_vertices, dtype=np.float64).reshape(-1, 3)
    pred_f = np.asarray(pred_faces, dtype=np.int64).reshape(-1, 3)
    scope = fit_and_delineate(pred_v, pred_f, gt_v, gt_f, gt_depth, intrinsics=intrinsics,
                              camera_to_world=camera_to_world, protocol=protocol,
                              amodal_depth=amodal_depth, clip_gt=clip_gt, border=border,
                              box_margin=box_margin, amodal_factor=amodal_factor, pred_depth=pred_depth)
    a, b, fit_reason, keep = scope.fit_a, scope.fit_b, scope.fit_reason, scope.keep

    gt_pts = sample_surface(gt_v, scope.gt_faces, n_samples, seed)
    out: dict = {"protocol": protocol, "fit_a": a, "fit_b": b, "fit_reason": fit_reason,
                 "faces_total": int(len(pred_f)), "faces_kept": int(keep.sum())}
    variants = {"metric": (pred_v, scope.pred_depth),
                "fit": (scope.fit_vertices, a * scope.pred_depth + b)}
    for name, (verts, depth) in variants.items():
        if verts is None:
            row = mesh_metrics(np.zeros((0, 3)), gt_pts, threshold)
            row["reason"] = fit_reason
            drow = {k: float("nan") for k in DEPTH_KEYS}
            drow["reason"] = fit_reason
        else:
            pts = sample_surface(verts, pred_f[keep], n_samples, seed + 1)
            row = mesh_metrics(pts, gt_pts, threshold)
            drow = depth_metrics(depth, gt_depth)
        row.update({f"depth_{k}": val for k, val in drow.items() if k != "reason"})
        row["depth_reason"] = drow["reason"]
        out[name] = row
    return out


def to_row(result: dict) -> dict:
    """Flatten an ``evaluate_frame`` result to one CSV row: ``metric_acc``, ``fit_f1``, …"""
    flat = {k: v for k, v in result.items() if k not in ("metric", "fit")}
    for variant in ("metric", "fit"):
        flat.update({f"{variant}_{k}": v for k, v in result[variant].items()})
    return flat
