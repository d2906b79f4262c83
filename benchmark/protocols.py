"""Evaluation protocols as data (SPEC §5.5, §5.11): a registry of named, frozen parameter sets.

A :class:`Protocol` fixes everything that changes a per-frame number: the scope rule (frustum
border, ground-truth box, amodal depth), the order of fit and delineation, how the ground truth is
clipped, which points are compared (area-weighted surface samples, or mesh vertices after a voxel
down-sample), the precision/recall threshold, the distance clamp and what a failed frame scores.
Every per-frame row names its protocol and :attr:`Protocol.hash`, a short hash of its parameters,
so two numbers with the same name and hash were computed the same way.

Shipped (:data:`PROTOCOLS`; ``release`` and ``paper`` are aliases of the first two):

========================  ==================================================================
``dgs-release``           the public DGS code: frustum |u|, |v| < 1 − 4/128, z > 0, GT world box
                          widened 2 %; fit first, then delineate raw and fitted mesh (union);
                          200k samples; τ = 5 cm; GT delineated by the same rule
``dgs-paper``             ``dgs-release`` + z < 1.05 × amodal depth (paper Sec. 4.2)
``dgs-submission``        the paper's Tab. 2 variant: the ``dgs-paper`` scope, but delineate the raw
                          mesh first, then fit on what is kept; GT clipped by the frustum test only
``atlas``                 ``dgs-release`` scope; mesh vertices after a 2 cm voxel down-sample (both
                          sides), precision = predicted vertices near the GT (as NeuralRecon fixed
                          Atlas's ``eval_mesh``, which swaps precision and recall)
``transformerfusion``     ``dgs-release`` scope; 200k samples; every distance clamped at 1 m
========================  ==================================================================

Every shipped protocol uses ``missing: penalize``: a missing or empty prediction (or a failed fit,
for the "fit" scores) scores P = R = F1 = 0, Acc = Compl = Chamfer = ``distance_clamp`` (1 m),
δ = 0 and Complete = 0 (``benchmark.scoring``); ``drop`` leaves them NaN, excluded and counted.

Frames for :func:`delineate`: predicted vertices in the camera frame (OpenCV, metres); the
ground-truth box in the world frame, reached with ``camera_to_world`` (4, 4).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.sampling import as_points

ORDERS = ("fit_first", "delineate_first")
GT_SCOPES = ("protocol", "frustum", "none")
POINTS = ("samples", "vertices")
MISSING = ("penalize", "drop")


BOX_PAD_MIN = 1e-3
"""Least widening of the GT box per side (metres). A frame that sees one axis-aligned plane only
(a wall filling the view of a synthetic scan) has a box of zero extent along its normal; without a
floor, float rounding of the camera transform (~1e-7 m) would cut even the ground truth itself.
1 mm is far below the scan noise of a real mesh, so real boxes are unaffected."""


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol (SPEC §5.11). Distances in metres.

    name: how rows and tables call it.
    amodal_factor: keep vertices with z < factor × amodal depth at their pixel (None: no depth cut).
    border: keep vertices with |u|, |v| < 1 − border (normalised image coordinates) and z > 0.
    box_margin: keep vertices inside the GT visible mesh's world box widened by this fraction of its
        extent per side, and by at least :data:`BOX_PAD_MIN` (None: no box test).
    order: "fit_first" (fit the whole raw prediction, delineate raw and fitted mesh, keep the union)
        or "delineate_first" (delineate the raw mesh, fit on the kept faces).
    gt_scope: how the GT visible mesh is clipped: "protocol" (by this protocol's rule), "frustum"
        (by the frustum test only), "none" (as prepared).
    points: "samples" (``n_samples`` area-weighted samples per mesh) or "vertices" (mesh vertices,
        after a ``voxel`` down-sample when set).
    threshold: precision/recall distance τ.
    distance_clamp: Acc and Compl of a penalized frame; with ``clamp_distances`` also the cap of
        every nearest-neighbour distance.
    missing: "penalize" or "drop" (module docstring).
    """

    name: str
    amodal_factor: float | None = None
    border: float = 4 / 128
    box_margin: float | None = 0.02
    order: str = "fit_first"
    gt_scope: str = "protocol"
    points: str = "samples"
    n_samples: int | None = 200_000
    voxel: float | None = None
    threshold: float = 0.05
    distance_clamp: float = 1.0
    clamp_distances: bool = False
    missing: str = "penalize"

    def __post_init__(self) -> None:
        problems = [f"{field} must be one of {allowed}, found {getattr(self, field)!r}"
                    for field, allowed in (("order", ORDERS), ("gt_scope", GT_SCOPES),
                                           ("points", POINTS), ("missing", MISSING))
                    if getattr(self, field) not in allowed]
        if self.points == "samples" and not (isinstance(self.n_samples, int) and self.n_samples > 0):
            problems.append(f"points 'samples' needs n_samples > 0, found {self.n_samples!r}")
        for field in ("amodal_factor", "box_margin", "voxel"):
            value = getattr(self, field)
            if value is not None and not value > 0:
                problems.append(f"{field} must be > 0 or null, found {value!r}")
        if not (0 <= self.border < 1 and self.threshold > 0 and self.distance_clamp > 0):
            problems.append("need 0 <= border < 1, threshold > 0 and distance_clamp > 0")
        if problems:
            raise ValueError(f"protocol {self.name!r}: " + "; ".join(problems))

    def params(self) -> dict[str, Any]:
        """Every parameter except the name (what :attr:`hash` covers)."""
        out = dataclasses.asdict(self)
        del out["name"]
        return out

    @property
    def hash(self) -> str:
        """8 hex digits of the SHA-256 of the parameters as sorted JSON (the name is not part of it)."""
        text = json.dumps(self.params(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]


_RELEASE = Protocol("dgs-release")
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    _RELEASE,
    dataclasses.replace(_RELEASE, name="dgs-paper", amodal_factor=1.05),
    dataclasses.replace(_RELEASE, name="dgs-submission", amodal_factor=1.05, order="delineate_first",
                        gt_scope="frustum"),
    dataclasses.replace(_RELEASE, name="atlas", points="vertices", n_samples=None, voxel=0.02),
    dataclasses.replace(_RELEASE, name="transformerfusion", clamp_distances=True),
)}
"""The shipped protocols by name (module docstring)."""

ALIASES = {"release": "dgs-release", "paper": "dgs-paper"}
"""Earlier names, still accepted; rows carry the protocol's own name."""

NAMES = (*PROTOCOLS, *ALIASES)
"""Every name :func:`resolve` accepts (the config schema's enum)."""


def resolve(spec: str | dict | Protocol, n_samples: int | None = None) -> Protocol:
    """A protocol from a name (or alias), an inline parameter set, or a Protocol.

    An inline set is a mapping with ``name`` (not a shipped name), optionally ``base`` (a shipped
    name, default ``dgs-release``) and any :class:`Protocol` fields to change. ``n_samples``, when
    given, replaces the sample count of a sampling protocol (its hash changes accordingly).
    Raises ValueError naming the unknown name or keys.
    """
    if isinstance(spec, Protocol):
        protocol = spec
    elif isinstance(spec, str):
        if ALIASES.get(spec, spec) not in PROTOCOLS:
            raise ValueError(f"unknown protocol {spec!r}; known: {list(NAMES)}, or an inline "
                             f"parameter set {{name: ..., base: ..., <field>: ...}}")
        protocol = PROTOCOLS[ALIASES.get(spec, spec)]
    elif isinstance(spec, dict):
        protocol = _inline(spec)
    else:
        raise ValueError(f"a protocol is a name or a mapping of parameters, found {spec!r}")
    if n_samples is not None and protocol.points == "samples":
        protocol = dataclasses.replace(protocol, n_samples=int(n_samples))
    return protocol


def _inline(spec: dict) -> Protocol:
    spec = dict(spec)
    name = spec.pop("name", None)
    if not isinstance(name, str) or not name or name in NAMES:
        raise ValueError(f"an inline protocol needs its own 'name' (not one of {list(NAMES)}), found {name!r}")
    base = resolve(spec.pop("base", "dgs-release"))
    fields = {f.name for f in dataclasses.fields(Protocol)} - {"name"}
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise ValueError(f"inline protocol {name!r}: unknown key(s) {unknown}; valid: ['base', 'name', "
                         f"{', '.join(repr(f) for f in sorted(fields))}]")
    return dataclasses.replace(base, name=name, **spec)


def parse_cli(value: str) -> str | dict:
    """A ``--protocols`` word: a name, or an inline parameter set as a JSON object."""
    if value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"inline protocol {value!r} is not valid JSON: {err}") from None
    return value


def delineate(pred_vertices: np.ndarray, pred_faces: np.ndarray, *, intrinsics: np.ndarray,
              width: int, height: int, camera_to_world: np.ndarray,
              gt_box_min: np.ndarray | None = None, gt_box_max: np.ndarray | None = None,
              protocol: str | Protocol = "dgs-release", amodal_depth: np.ndarray | None = None,
              frustum_only: bool = False) -> np.ndarray:
    """Mask of the triangles inside one frame's scope under ``protocol`` (all three vertices pass).

    Args:
        pred_vertices: (V, 3) float, metres, camera frame (x right, y down, z forward).
        pred_faces: (F, 3) integer vertex indices.
        intrinsics: (4,) fx, fy, cx, cy in pixels of the (virtual) image of width × height.
        camera_to_world: (4, 4) float, maps camera points to world points.
        gt_box_min, gt_box_max: (3,) float, metres, **world frame**, the box of the GT visible mesh
            (before widening); required unless the protocol has no box test or ``frustum_only``.
        protocol: a :class:`Protocol` or a name (:func:`resolve`).
        amodal_depth: (height, width) metres, NaN where unknown; required when the protocol cuts at
            the amodal depth. A vertex is tested at pixel (⌊px⌋, ⌊py⌋), clamped into the image; a
            pixel without amodal depth rejects it.
        frustum_only: apply the frustum test alone (the ``gt_scope: frustum`` clipping).
    Returns:
        (F,) bool, True = triangle kept.
    """
    rule = resolve(protocol)
    v = as_points(pred_vertices, "pred_vertices")
    faces = np.asarray(pred_faces, dtype=np.int64).reshape(-1, 3)
    fx, fy, cx, cy = (float(x) for x in np.asarray(intrinsics).ravel()[:4])
    z = v[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        px = fx * v[:, 0] / z + cx  # pixel coordinates, pixel centres at +0.5
        py = fy * v[:, 1] / z + cy
        u = 2.0 * px / width - 1.0
        w = 2.0 * py / height - 1.0
        ok = (z > 0) & (np.abs(u) < 1.0 - rule.border) & (np.abs(w) < 1.0 - rule.border)
    if rule.box_margin is not None and not frustum_only:
        if gt_box_min is None or gt_box_max is None:
            raise ValueError(f"benchmark.protocols.delineate: protocol {rule.name!r} tests the GT box; "
                             f"pass gt_box_min and gt_box_max (world frame).")
        lo = np.asarray(gt_box_min, dtype=np.float64)
        hi = np.asarray(gt_box_max, dtype=np.float64)
        pad = np.maximum(rule.box_margin * (hi - lo), BOX_PAD_MIN)
        t = np.asarray(camera_to_world, dtype=np.float64)
        world = v @ t[:3, :3].T + t[:3, 3]
        ok &= np.all((world >= lo - pad) & (world <= hi + pad), axis=1)
    if rule.amodal_factor is not None and not frustum_only:
        ok = _amodal_cut(ok, px, py, z, amodal_depth, rule, width, height)
    if len(faces) == 0:
        return np.zeros(0, dtype=bool)
    return ok[faces].all(axis=1)


def _amodal_cut(ok: np.ndarray, px: np.ndarray, py: np.ndarray, z: np.ndarray,
                amodal_depth: np.ndarray | None, rule: Protocol, width: int, height: int) -> np.ndarray:
    """``ok`` with every vertex at or behind amodal_factor × the amodal depth of its pixel removed."""
    if amodal_depth is None:
        raise ValueError(f"benchmark.protocols.delineate: protocol {rule.name!r} needs amodal_depth "
                         f"(H, W) metres; pass the frame's amodal depth or use 'dgs-release'.")
    amodal = np.asarray(amodal_depth, dtype=np.float64)
    if amodal.shape != (height, width):
        raise ValueError(f"benchmark.protocols.delineate: amodal_depth must be ({height}, {width}), "
                         f"got {amodal.shape}.")
    ok = ok.copy()
    idx = np.flatnonzero(ok)
    col = np.clip(np.floor(px[idx]).astype(np.int64), 0, width - 1)
    row = np.clip(np.floor(py[idx]).astype(np.int64), 0, height - 1)
    scope = amodal[row, col]
    with np.errstate(invalid="ignore"):
        ok[idx] = np.isfinite(scope) & (z[idx] < rule.amodal_factor * scope)
    return ok

