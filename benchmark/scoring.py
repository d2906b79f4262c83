"""One frame end to end under one protocol: fit, delineate, compare point sets, apply the failure policy.

``evaluate_frame`` scores a predicted mesh against the frame's ground-truth visible mesh, raw
("metric") and after the depth fit ("fit"), under a :class:`benchmark.protocols.Protocol`
(SPEC §5.4–§5.11); ``failed_frame`` is the result of a frame without a prediction; ``to_row``
flattens either to one CSV row. Arrays are float64 metres in the frame's camera (OpenCV) unless
named world. A variant *fails* when its mesh metrics cannot be computed for a reason of the
prediction (:data:`FAILURES`); the protocol's ``missing`` policy then penalizes it or leaves it NaN
(dropped and counted by the report). An empty ground truth (``empty_gt``) is no failure of the
method: the frame has nothing to score and stays NaN under both policies.

Scoring several methods under several protocols repeats work that does not change the numbers: the
ground truth's point set (and its k-d tree) per protocol scope, and one prediction's render and point
sets where two protocols select the same faces. :class:`Reuse` keeps them for one frame (pass the same
object for every method and protocol of the frame; its ``prediction`` part is reset per method).
With or without it every value is identical (tests/test_evaluate.py checks it).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from benchmark.fit import apply_scale_shift, fit_scale_shift
from benchmark.metrics import (DEPTH_KEYS, MESH_KEYS, depth_metrics, mesh_metrics, penalized_depth,
                               penalized_mesh)
from benchmark.nearest import NearestIndex
from benchmark.protocols import Protocol, delineate, resolve
from benchmark.render import render_depth
from benchmark.sampling import as_points, mesh_vertices, sample_surface

FAILURES = ("missing_prediction", "unreadable_prediction", "empty_prediction", "no_valid_pixels",
            "degenerate_prediction")
"""Reasons that make a variant a failed frame of the method (penalized or dropped, always counted)."""


@dataclass
class Reuse:
    """What one frame's scoring computes once. ``ground_truth``: point set and k-d tree per (GT faces
    in scope, point rule, seed); ``prediction``: render per face selection and point sets per
    (variant, faces, point rule, seed, fit) of the current method — call :meth:`next_prediction`
    before scoring another method's prediction of the same frame."""

    ground_truth: dict = field(default_factory=dict)
    prediction: dict = field(default_factory=dict)

    def next_prediction(self) -> None:
        """Forget the previous prediction's work (the ground truth's stays)."""
        self.prediction = {}


def _digest(mask: np.ndarray) -> bytes:
    """A short key for a face selection (bool or index array)."""
    return hashlib.blake2b(np.ascontiguousarray(mask).tobytes(), digest_size=16).digest()


def _render(pred_v: np.ndarray, faces: np.ndarray, intrinsics, shape: tuple[int, int], key,
            reuse: Reuse | None) -> np.ndarray:
    """The raw prediction's faces rendered at the frame's camera, (H, W) float64 metres (NaN = none);
    remembered in ``reuse`` under ``key`` (the face selection)."""
    cached = None if reuse is None else reuse.prediction.get(("render", key))
    if cached is None:
        fx, fy, cx, cy = (float(x) for x in np.asarray(intrinsics).ravel()[:4])
        cached = render_depth(pred_v, faces, fx, fy, cx, cy, shape[1], shape[0]).astype(np.float64)
        if reuse is not None:
            reuse.prediction[("render", key)] = cached
    return cached


@dataclass
class Scope:
    """The fitted and delineated prediction of one frame (see :func:`fit_and_delineate`).

    pred_depth: (H, W) float64 metres, the rendered prediction the fit used (the whole raw mesh
        when fitting first, the kept faces when delineating first), NaN = none.
    fit_a, fit_b, fit_reason: the scale/shift fit gt ≈ a·pred + b ("" or why it failed).
    fit_vertices: (V, 3) float64 metres camera frame, the fitted mesh; None when the fit failed.
    keep: (F,) bool, triangles of the prediction inside the protocol's scope.
    gt_faces: (F', 3) int64, the ground-truth faces scored (clipped as the protocol's ``gt_scope`` says).
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
                      protocol: str | Protocol = "dgs-release",
                      amodal_depth: np.ndarray | None = None, reuse: Reuse | None = None,
                      pred_depth: np.ndarray | None = None) -> Scope:
    """Fit and delineate one prediction in the protocol's order (SPEC §5.4, §5.5); arguments as in
    :func:`evaluate_frame` (arrays already float64 (V, 3) / int64 (F, 3), camera frame, metres)."""
    rule = resolve(protocol)
    height, width = gt_depth.shape

    def depth_of(faces: np.ndarray, key) -> np.ndarray:
        if pred_depth is not None:
            return np.asarray(pred_depth, dtype=np.float64)
        return _render(pred_v, faces, intrinsics, (height, width), key, reuse)

    t = np.asarray(camera_to_world, dtype=np.float64)
    used = gt_v[np.unique(gt_f)] if len(gt_f) else np.zeros((0, 3))
    if len(used) == 0:  # no ground truth, no box: nothing is in scope
        depth = depth_of(pred_f, "all")
        a, b, reason = fit_scale_shift(depth, gt_depth)
        return Scope(depth, a, b, reason, apply_scale_shift(pred_v, a, b) if not reason else None,
                     np.zeros(len(pred_f), dtype=bool), gt_f)
    world = used @ t[:3, :3].T + t[:3, 3]
    kw = dict(intrinsics=intrinsics, width=width, height=height, camera_to_world=t, protocol=rule,
              amodal_depth=amodal_depth, gt_box_min=world.min(axis=0), gt_box_max=world.max(axis=0))
    if rule.order == "fit_first":  # fit the whole raw mesh, delineate raw and fitted, keep the union
        depth = depth_of(pred_f, "all")
        a, b, reason = fit_scale_shift(depth, gt_depth)
        fit_v = apply_scale_shift(pred_v, a, b) if not reason else None
        keep = delineate(pred_v, pred_f, **kw)
        if fit_v is not None:
            keep |= delineate(fit_v, pred_f, **kw)
    else:  # delineate the raw mesh, then fit what is kept
        keep = delineate(pred_v, pred_f, **kw)
        depth = depth_of(pred_f[keep], _digest(keep))
        a, b, reason = fit_scale_shift(depth, gt_depth)
        fit_v = apply_scale_shift(pred_v, a, b) if not reason else None
    if rule.gt_scope != "none":
        gt_f = gt_f[delineate(gt_v, gt_f, **kw, frustum_only=rule.gt_scope == "frustum")]
    return Scope(depth, a, b, reason, fit_v, keep, gt_f)


def point_set(vertices: np.ndarray, faces: np.ndarray, rule: Protocol, seed: int) -> np.ndarray:
    """The points a protocol compares: ``n_samples`` area-weighted samples (``seed``) or the
    faces' vertices, voxel-down-sampled when the protocol says so. (N, 3) float64 metres."""
    if rule.points == "samples":
        return sample_surface(vertices, faces, rule.n_samples, seed)
    return mesh_vertices(vertices, faces, rule.voxel) if len(faces) else np.zeros((0, 3))


def _point_rule(rule: Protocol, seed: int) -> tuple:
    """What a point set depends on besides the mesh: the point rule and the seed."""
    return (rule.points, rule.n_samples if rule.points == "samples" else None, rule.voxel, seed)


def _gt_points(gt_v: np.ndarray, gt_f: np.ndarray, rule: Protocol, seed: int,
               reuse: Reuse | None) -> tuple[np.ndarray, NearestIndex | None]:
    """The ground truth's point set (finite rows) and its k-d tree (None when empty), remembered per
    (faces in scope, point rule, seed)."""
    key = (_digest(gt_f), *_point_rule(rule, seed))
    found = None if reuse is None else reuse.ground_truth.get(key)
    if found is None:
        points = point_set(gt_v, gt_f, rule, seed)
        points = points[np.isfinite(points).all(axis=1)]
        found = (points, NearestIndex(points) if len(points) else None)
        if reuse is not None:
            reuse.ground_truth[key] = found
    return found


def _pred_points(vertices: np.ndarray, faces: np.ndarray, rule: Protocol, seed: int, key,
                 reuse: Reuse | None) -> np.ndarray:
    """The prediction's point set, remembered per (variant and fit ``key``, faces, point rule, seed)."""
    full = (key, _digest(faces), *_point_rule(rule, seed))
    found = None if reuse is None else reuse.prediction.get(full)
    if found is None:
        found = point_set(vertices, faces, rule, seed)
        if reuse is not None:
            reuse.prediction[full] = found
    return found


def evaluate_frame(pred_vertices: np.ndarray, pred_faces: np.ndarray, gt_vertices: np.ndarray,
                   gt_faces: np.ndarray, gt_depth: np.ndarray, *, intrinsics: np.ndarray,
                   camera_to_world: np.ndarray, protocol: str | Protocol = "dgs-release",
                   amodal_depth: np.ndarray | None = None, seed: int = 0, reuse: Reuse | None = None,
                   pred_depth: np.ndarray | None = None) -> dict:
    """Score one predicted mesh against the ground truth, raw ("metric") and depth-fitted ("fit").

    Args:
        pred_vertices, pred_faces: (V, 3) float metres camera frame, (F, 3) int; the prediction.
        gt_vertices, gt_faces: (V', 3) float metres camera frame, (F', 3) int; the ground-truth
            visible mesh of this frame.
        gt_depth: (H, W) float metres, ground-truth z-depth at the virtual camera, NaN = none;
            its shape sets the image size for rendering, the fit and the frustum test.
        intrinsics: (4,) fx, fy, cx, cy in pixels of that image.
        camera_to_world: (4, 4) camera-to-world pose.
        protocol: a :class:`Protocol` or a name (``benchmark.protocols.resolve``); protocols that
            cut at the amodal depth need ``amodal_depth`` (H, W) metres.
        seed: surface samples use ``seed`` for the GT and ``seed + 1`` for the prediction.
        reuse: a :class:`Reuse` shared by the methods and protocols of this frame (same numbers).
        pred_depth: the prediction's (H, W) z-depth, metres, NaN = none, when it comes from elsewhere
            than its mesh (a sphere-traced SDF, SPEC §5.14): the fit and the depth metrics use it in
            place of the mesh's render (whole field, also under a delineate-first protocol); None
            renders the mesh.
    Returns:
        {"protocol", "protocol_hash", "missing", "fit_a", "fit_b", "fit_reason", "faces_total",
         "faces_kept", "metric": {mesh metrics, reason, depth_* metrics, depth_reason},
         "fit": {same keys}}; see ``benchmark.metrics`` for the metric definitions. A failed
        variant (reason in :data:`FAILURES`) holds the protocol's penalty or NaN (``drop``).
    """
    rule = resolve(protocol)
    gt_depth = np.asarray(gt_depth, dtype=np.float64)
    gt_v = as_points(gt_vertices, "gt_vertices")
    gt_f = np.asarray(gt_faces, dtype=np.int64).reshape(-1, 3)
    pred_v = as_points(pred_vertices, "pred_vertices")
    pred_f = np.asarray(pred_faces, dtype=np.int64).reshape(-1, 3)
    scope = fit_and_delineate(pred_v, pred_f, gt_v, gt_f, gt_depth, intrinsics=intrinsics,
                              camera_to_world=camera_to_world, protocol=rule, amodal_depth=amodal_depth,
                              reuse=reuse, pred_depth=pred_depth)
    a, b, fit_reason, keep = scope.fit_a, scope.fit_b, scope.fit_reason, scope.keep
    gt_pts, gt_index = _gt_points(gt_v, scope.gt_faces, rule, seed, reuse)
    clamp = rule.distance_clamp if rule.clamp_distances else None
    out: dict = {**_identity(rule), "fit_a": a, "fit_b": b, "fit_reason": fit_reason,
                 "faces_total": int(len(pred_f)), "faces_kept": int(keep.sum())}
    variants = {"metric": (pred_v, scope.pred_depth),
                "fit": (scope.fit_vertices, a * scope.pred_depth + b)}
    for name, (verts, depth) in variants.items():
        if verts is None:
            row = mesh_metrics(np.zeros((0, 3)), gt_pts, rule.threshold, clamp=clamp, gt_index=gt_index)
            if row["reason"] != "empty_gt":
                row["reason"] = fit_reason
            drow = {k: float("nan") for k in DEPTH_KEYS}
            drow["reason"] = fit_reason
        else:
            pts = _pred_points(verts, pred_f[keep], rule, seed + 1, (name, a, b), reuse)
            row = mesh_metrics(pts, gt_pts, rule.threshold, clamp=clamp, gt_index=gt_index)
            drow = depth_metrics(depth, gt_depth)
        row.update({f"depth_{k}": val for k, val in drow.items() if k != "reason"})
        row["depth_reason"] = drow["reason"]
        out[name] = _apply_policy(row, rule)
    return out


def failed_frame(protocol: str | Protocol, reason: str) -> dict:
    """An :func:`evaluate_frame`-shaped result for a frame whose prediction could not be scored at
    all (``reason`` in :data:`FAILURES`, e.g. ``missing_prediction``): both variants failed."""
    rule = resolve(protocol)
    nan = float("nan")
    variant = {**{k: nan for k in MESH_KEYS}, "reason": reason,
               **{f"depth_{k}": nan for k in DEPTH_KEYS}, "depth_reason": reason}
    return {**_identity(rule), "fit_a": nan, "fit_b": nan, "fit_reason": reason, "faces_total": 0,
            "faces_kept": 0, "metric": _apply_policy(dict(variant), rule),
            "fit": _apply_policy(dict(variant), rule)}


def _identity(rule: Protocol) -> dict:
    return {"protocol": rule.name, "protocol_hash": rule.hash, "missing": rule.missing}


def _apply_policy(row: dict, rule: Protocol) -> dict:
    """A failed variant's penalty under ``penalize`` (mesh metrics when ``reason`` is a failure,
    depth metrics when ``depth_reason`` is), or the row unchanged (``drop``: NaN, counted later)."""
    if rule.missing != "penalize":
        return row
    out = dict(row)
    if row["reason"] in FAILURES:
        out.update(penalized_mesh(rule.distance_clamp))
    if row["depth_reason"] in FAILURES:
        depth = penalized_depth(float(row.get("depth_complete", float("nan"))))
        out.update({f"depth_{k}": v for k, v in depth.items()})
    return out


def to_row(result: dict) -> dict:
    """Flatten an ``evaluate_frame`` result to one CSV row: ``metric_acc``, ``fit_f1``, …"""
    flat = {k: v for k, v in result.items() if k not in ("metric", "fit")}
    for variant in ("metric", "fit"):
        flat.update({f"{variant}_{k}": v for k, v in result[variant].items()})
    return flat
