"""Training losses (SPEC §3): paper Eq. 1 (occupancy) and Eq. 2 (SDF), plus the release's depth L1.

Label convention: occupancy 1 = inside/behind the surface (near-surface points offset *inward*),
0 = free space (offset *outward*, toward the camera). For the SDF option the decoder output s is
positive in free space and negative inside, so ∇s points outward (toward free space).

Eq. 1:  L = mean BCE(o(p_near), label) + λ · mean_{p ∈ non-surface} G(∇o(p)) [+ w_d · depth L1]
with ``G = ‖∇o‖`` (``gradient_penalty="norm"``, the paper) or the mean of |∂o/∂x|, |∂o/∂y|, |∂o/∂z|
(``"mean_abs"``, the release). **Default: "mean_abs", λ = 0.01, depth weight 1** — the release
settings that produced the published numbers; set ``gradient_penalty="norm"`` for the paper's Eq. 1.

Eq. 2 (SPEC §3.6): L = w_s·mean|s(p_surf)| + w_e·mean|‖∇s(p_space)‖ − 1| + w_near·mean|s(p_near) − d|
[+ w_n·mean(1 − cos(∇s(p_surf), n))] [+ w_d · depth L1], with d the stored offset of each
near-surface point along its camera-facing normal. A colour head adds w_c · mean L1 of the RGB
(in [0, 1]) at the on-surface samples, for either kind.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dgs_core.data import Batch
from dgs_core.gradients import GRADIENT_MODES, field_and_gradient

PENALTIES = ("norm", "mean_abs")


@dataclass
class LossConfig:
    """Loss switches. Units: ``numerical_step`` metres; weights are dimensionless."""

    kind: str = "occupancy"            # "occupancy" (Eq. 1) or "sdf" (Eq. 2)
    gradient_mode: str = "dgs"         # see dgs_core.gradients.GRADIENT_MODES
    grad_weight: float = 0.01          # λ of Eq. 1
    gradient_penalty: str = "mean_abs"  # "norm" (paper) or "mean_abs" (release, default)
    depth_weight: float = 1.0          # L1 metric depth on the depth head; 0 disables
    numerical_step: float = 1e-3       # central-difference step h for gradient_mode="numerical"
    dgs_store_jacobian: bool = False   # "dgs": keep the op's Jacobian for backward (faster, more memory)
    sdf_surface_weight: float = 1.0
    sdf_eikonal_weight: float = 0.1
    sdf_normal_weight: float = 0.0     # optional normal term of Eq. 2
    sdf_near_weight: float = 1.0       # signed near-surface term |s(p) − d| (d: stored offset, metres)
    color_weight: float = 1.0          # L1 colour term on surface samples (models with model.color)

    def __post_init__(self) -> None:
        if self.kind not in ("occupancy", "sdf"):
            raise ValueError(f"LossConfig.kind: expected 'occupancy' or 'sdf', found {self.kind!r}")
        if self.gradient_mode not in GRADIENT_MODES:
            raise ValueError(f"LossConfig.gradient_mode: expected one of {GRADIENT_MODES}, found {self.gradient_mode!r}")
        if self.gradient_penalty not in PENALTIES:
            raise ValueError(f"LossConfig.gradient_penalty: expected one of {PENALTIES}, found {self.gradient_penalty!r}")


def gradient_penalty(grad: torch.Tensor, kind: str = "mean_abs") -> torch.Tensor:
    """grad (B, M, 3) ∂o/∂p in 1/m → scalar: mean ‖∇o‖ ("norm") or mean |component| ("mean_abs")."""
    if kind == "norm":
        return torch.linalg.vector_norm(grad, dim=-1).mean()
    if kind == "mean_abs":
        return grad.abs().mean()
    raise ValueError(f"gradient_penalty: expected one of {PENALTIES}, found {kind!r}")


def depth_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |pred − target| over pixels with a finite, positive target (metres).

    pred (B, 1, H, W) or (B, H, W); target (B, H, W) with NaN (or ≤ 0) holes. Returns 0 (still
    attached to ``pred``) when no pixel is valid, so an all-hole batch does not produce NaN.
    """
    pred = pred.reshape(target.shape)
    valid = torch.isfinite(target) & (target > 0)
    if not bool(valid.any()):
        return pred.sum() * 0
    return (pred[valid] - target[valid]).abs().mean()


def occupancy_loss(near_logits: torch.Tensor, near_labels: torch.Tensor, far_grad: torch.Tensor | None,
                   config: LossConfig, depth_pred: torch.Tensor | None = None,
                   depth_target: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 1 from already-evaluated network outputs.

    near_logits, near_labels (B, N); far_grad (B, M, 3) ∂o/∂p or None (nograd); depth as in :func:`depth_l1`.
    Returns the total and detached terms ``{"bce", "grad", "depth"}`` for logging.
    """
    bce = F.binary_cross_entropy_with_logits(near_logits, near_labels.to(near_logits.dtype))
    total, terms = bce, {"bce": bce.detach()}
    if far_grad is not None:
        g = gradient_penalty(far_grad, config.gradient_penalty)
        total = total + config.grad_weight * g
        terms["grad"] = g.detach()
    if config.depth_weight and depth_pred is not None and depth_target is not None:
        d = depth_l1(depth_pred, depth_target)
        total = total + config.depth_weight * d
        terms["depth"] = d.detach()
    return total, terms


def sdf_loss(surface_sdf: torch.Tensor, space_grad: torch.Tensor, config: LossConfig,
             surface_grad: torch.Tensor | None = None, surface_normals: torch.Tensor | None = None,
             near_sdf: torch.Tensor | None = None, near_offsets: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 2: w_s·mean|s(p_surf)| + w_e·mean|‖∇s(p_space)‖ − 1| [+ w_near·mean|s(p_near) − d|]
    [+ w_n·mean(1 − cos(∇s, n))].

    surface_sdf (B, S) in metres; space_grad (B, M, 3); surface_grad and outward surface_normals
    (B, S, 3) for the optional normal term; near_sdf and near_offsets (B, N) metres for the signed
    near-surface term (the offset d along the camera-facing normal is the point's signed distance to
    its face: exact for a plane, an upper bound on |SDF| with the right sign elsewhere).
    """
    surf = surface_sdf.abs().mean()
    eik = (torch.linalg.vector_norm(space_grad, dim=-1) - 1).abs().mean()
    total = config.sdf_surface_weight * surf + config.sdf_eikonal_weight * eik
    terms = {"surface": surf.detach(), "eikonal": eik.detach()}
    if config.sdf_near_weight and near_sdf is not None and near_offsets is not None:
        near = (near_sdf - near_offsets).abs().mean()
        total = total + config.sdf_near_weight * near
        terms["near"] = near.detach()
    if config.sdf_normal_weight and surface_grad is not None and surface_normals is not None:
        nrm = (1 - F.cosine_similarity(surface_grad, surface_normals, dim=-1)).mean()
        total = total + config.sdf_normal_weight * nrm
        terms["normal"] = nrm.detach()
    return total, terms


def color_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean |pred − target| over the RGB of samples whose target is finite (NaN = no colour).

    pred, target (B, S, 3) in [0, 1]. Returns 0 (attached to ``pred``) when no sample has a colour.
    """
    valid = torch.isfinite(target).all(dim=-1)
    if not bool(valid.any()):
        return pred.sum() * 0
    return (pred[valid] - target[valid]).abs().mean()


def occupied(values: torch.Tensor, kind: str) -> torch.Tensor:
    """Bool mask of predicted occupied points from raw decoder outputs: logit > 0 (o > 0.5) for
    ``kind="occupancy"``, s < 0 for ``kind="sdf"`` (the SDF is positive in free space)."""
    return values > 0 if kind == "occupancy" else values < 0


def _sdf_terms(net, enc, batch: Batch, config: LossConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 2 (:func:`sdf_loss`) plus the depth term, every gradient by ``config.gradient_mode``."""
    mode, step, store = config.gradient_mode, config.numerical_step, config.dgs_store_jacobian
    if batch.surface_points is None:
        raise ValueError("sdf loss: Batch.surface_points is None; the SDF loss needs on-surface points")
    if mode == "nograd":
        raise ValueError("sdf loss: the Eikonal term needs a gradient; choose a gradient_mode other than 'nograd'")
    _, g_space = field_and_gradient(net, enc.features, batch.far_points, batch.intrinsics, mode, "logit", step,
                                    store_jacobian=store)
    if config.sdf_normal_weight and batch.surface_normals is not None:
        s, g_surf = field_and_gradient(net, enc.features, batch.surface_points, batch.intrinsics, mode, "logit", step,
                                       store_jacobian=store)
    else:
        s, g_surf = net.query(enc.features, batch.surface_points, batch.intrinsics), None
    near = None
    if config.sdf_near_weight and batch.near_offsets is not None:
        near = net.query(enc.features, batch.near_points, batch.intrinsics)
    total, terms = sdf_loss(s, g_space, config, g_surf, batch.surface_normals, near, batch.near_offsets)
    if config.depth_weight and enc.depth is not None and batch.depth is not None:
        d = depth_l1(enc.depth, batch.depth)
        total, terms["depth"] = total + config.depth_weight * d, d.detach()
    return total, terms


def training_loss(net, batch: Batch, config: LossConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Encode once, evaluate the near-surface logits and the non-surface gradients by
    ``config.gradient_mode``, and combine them (Eq. 1 or Eq. 2); a net with a colour head adds the
    colour term on ``batch.surface_points``. ``net`` is a DGSNet."""
    enc = net.encode(batch.images, batch.intrinsics)
    mode, step = config.gradient_mode, config.numerical_step
    if config.kind == "sdf":
        total, terms = _sdf_terms(net, enc, batch, config)
    else:
        near_logits = net.query(enc.features, batch.near_points, batch.intrinsics)
        far_grad = None
        if mode != "nograd":
            _, far_grad = field_and_gradient(net, enc.features, batch.far_points, batch.intrinsics, mode, "occupancy",
                                             step, store_jacobian=config.dgs_store_jacobian)
        total, terms = occupancy_loss(near_logits, batch.near_labels, far_grad, config, enc.depth, batch.depth)
    if getattr(net, "color_head", None) is not None and config.color_weight:
        if batch.surface_points is None or batch.surface_colors is None:
            raise ValueError("colour loss: the model has a colour head but the batch has no surface colours")
        _, rgb = net.query_color(enc.features, batch.surface_points, batch.intrinsics)
        c = color_l1(rgb, batch.surface_colors)
        total, terms["color"] = total + config.color_weight * c, c.detach()
    return total, terms
