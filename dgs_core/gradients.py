"""How the spatial gradient of the predicted field reaches the loss (SPEC §2, §3; paper Tab. 1/2/6).

``field_and_gradient(net, features, points, intrinsics, mode)`` returns the field f(p) (B, Q) and its
spatial gradient ∂f/∂p (B, Q, 3) (1/m, camera frame), both differentiable w.r.t. the parameters:

- ``"dgs"`` (default): ``dgs_sample`` gives each map's value φ and Jacobian ∂φ/∂p in one fused op; the
  decoder runs on φ once, a reverse-mode vector-Jacobian product (``create_graph=True``) gives ∂f/∂φ and
  the direct ∂f/∂p of the positional encoding, and ∂f/∂p = Σ_c ∂f/∂φ_c·∂φ_c/∂p + ∂f/∂p|direct. Same
  decoder FLOPs as autograd, without ``grid_sample``'s double backward. The contraction re-evaluates
  the Jacobian in its backward rather than holding it (``store_jacobian=True`` holds it instead).
- ``"dgs_forward"``: the same op, but the decoder tracks [value, ∂x, ∂y, ∂z] forward-mode (SPEC §3);
  about twice the decoder FLOPs of ``"dgs"``, kept as the paper's formulation and as a cross-check.
- ``"autograd"``: ``grid_sample`` at u(p), v(p) and ``torch.autograd.grad(create_graph=True)``; training
  then back-propagates through ``grid_sample``'s double backward.
- ``"numerical"``: central differences (f(p+h·e_k) − f(p−h·e_k)) / 2h, h = ``step`` metres (default 1e-3:
  about 0.1 px of the 256×192 virtual camera at 2 m, well inside a stride-2 cell, so truncation error is
  small while float32 round-off ~1e-7/h stays ≲1e-4; this is our choice, not a value verified from the paper).
- ``"nograd"``: no gradient (None) — the NoGrad ablation.
- ``"fixed_encoder"``: the paper's FixedE. f uses the live feature maps; the gradient is computed the
  ``"dgs"`` way from *detached* maps, so the gradient term trains the decoder but never the encoder.

Voxel features (:mod:`dgs_core.model.voxel`, ``model.features`` with ``voxel``) take part in every mode:
``dgs``/``dgs_forward`` read their value and Jacobian from ``dgs_sample_3d`` (in ``dgs`` their contraction
keeps that Jacobian in the graph instead of re-evaluating it), ``autograd``/``numerical``/``nograd`` sample
them with ``grid_sample`` through ``net.query``, and ``fixed_encoder`` detaches them like the maps.
"""
from __future__ import annotations


import torch

from dgs_core.model.decoder import sigmoid_tracked
from dgs_core.model.voxel import split_features
from dgs_core.ops import dgs_sample

GRADIENT_MODES = ("dgs", "dgs_forward", "autograd", "numerical", "nograd", "fixed_encoder")
FIELDS = ("occupancy", "logit")


def _act(logit: torch.Tensor, field: str) -> torch.Tensor:
    return torch.sigmoid(logit) if field == "occupancy" else logit


def sample_with_jacobian(features: list, points: torch.Tensor, intrinsics: torch.Tensor
                         ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """All maps through ``dgs_sample`` (voxel features through ``dgs_sample_3d``, last): value (B, Q, ΣC)
    and per-source Jacobians ∂φ_i/∂p (B, Q, 3, C_i), 1/m.

    The Jacobians stay views of the op outputs (no concatenated copy kept for backward).
    """
    points, intrinsics = points.detach(), intrinsics.detach()  # data for the op: it rejects requires_grad
    maps, voxels = split_features(features)
    outs = [dgs_sample(f, points, intrinsics) for f in maps]  # each (B, Q, 4, C_i)
    values, jacs = [o[:, :, 0, :] for o in outs], [o[:, :, 1:, :] for o in outs]
    if voxels is not None:
        value, jac = voxels.sample_with_jacobian(points)
        values.append(value)
        jacs.append(jac)
    return torch.cat(values, dim=-1), jacs


class _JacobianContraction(torch.autograd.Function):
    """g = Σ_i Σ_c dphi_i,c · ∂φ_i,c/∂p for maps φ_i, without keeping the (B, Q, 3, ΣC) Jacobian alive.

    Forward contracts the Jacobians of the value call (passed in, not saved); backward evaluates
    them again (one more op forward per map) to form ∂L/∂dphi = Σ_k ∂L/∂g_k·∂φ/∂p_k and sends
    ∂L/∂(∂φ_c/∂p_k) = ∂L/∂g_k·dphi_c into the op's closed-form backward. This trades one op forward for
    the Jacobian's memory (252 MB at release shapes: 32 × 512 points × 3 × 1280 channels, float32), so
    ``dgs`` needs no more memory than ``autograd``. First-order only (training needs no more).
    """

    @staticmethod
    def forward(ctx, points, intrinsics, jacs, dphi, *features):
        ctx.save_for_backward(points, intrinsics, dphi, *features)
        g = points.new_zeros(points.shape)
        off = 0
        for jac in jacs:  # (B, Q, 3, C_i) each, from the value call; not kept for backward
            c = jac.shape[-1]
            g = g + (dphi[:, :, None, off:off + c] * jac).sum(-1)
            off += c
        return g

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_g):
        points, intrinsics, dphi, *features = ctx.saved_tensors
        grad_dphi, grad_feats, off = [], [], 0
        for i, f in enumerate(features):
            c = f.shape[1]
            need_f = ctx.needs_input_grad[4 + i]
            with torch.enable_grad():
                fl = f.detach().requires_grad_(need_f)
                out = dgs_sample(fl, points, intrinsics)  # (B, Q, 4, C)
            jac = out[:, :, 1:, :].detach()
            grad_dphi.append((grad_g[..., None] * jac).sum(-2))
            if need_f:
                go = torch.zeros_like(out)
                go[:, :, 1:, :] = grad_g[..., None] * dphi[:, :, None, off:off + c]
                grad_feats.append(torch.autograd.grad(out, fl, go)[0])
            else:
                grad_feats.append(None)
            off += c
        return None, None, None, torch.cat(grad_dphi, dim=-1), *grad_feats


def _dgs(net, features, points, intrinsics, field: str, create_graph: bool, store_jacobian: bool = False):
    points, intrinsics = points.detach(), intrinsics.detach()
    value, jacs = sample_with_jacobian(features, points, intrinsics)
    if not value.requires_grad:  # e.g. detached maps (fixed_encoder): still need ∂f/∂φ
        value = value.detach().requires_grad_(True)
    p = points.clone().requires_grad_(True)  # a leaf of its own: the op must get points as data
    f = _act(net.decode(value, p), field)
    dphi, dp = torch.autograd.grad(f.sum(), (value, p), create_graph=create_graph)
    # Points are independent queries, so the VJP with ones gives each point's own ∂f/∂φ and ∂f/∂p.
    if store_jacobian:  # keep the op outputs for backward: one op call per map, more memory
        for dphi_i, jac_i in zip(dphi.split([j.shape[-1] for j in jacs], dim=-1), jacs):
            dp = dp + (dphi_i[:, :, None, :] * jac_i).sum(-1)
        return f, dp
    maps, voxels = split_features(features)
    n_maps = sum(m.shape[1] for m in maps)
    if voxels is not None:  # its Jacobian stays in the graph: autograd differentiates this contraction
        dp = dp + (dphi[:, :, None, n_maps:] * jacs[-1]).sum(-1)
    if not maps:
        return f, dp
    jacs = [j.detach() for j in jacs[:len(maps)]]  # data for the contraction; the op outputs die with this frame
    return f, dp + _JacobianContraction.apply(points, intrinsics, jacs, dphi[..., :n_maps], *maps)


def _dgs_forward(net, features, points, intrinsics, field: str):
    value, jacs = sample_with_jacobian(features, points, intrinsics)
    p = points.detach()
    x = torch.cat((net.pe(p)[..., None, :], net.pe.tangents(p)), dim=-2)  # (B, Q, 4, 39)
    z = torch.cat([value[..., None, :], torch.cat(jacs, dim=-1)], dim=-2)  # (B, Q, 4, ΣC)
    t = net.decoder.forward_tracked(x, z)                                  # (B, Q, 4)
    if field == "occupancy":
        t = sigmoid_tracked(t)
    return t[..., 0], t[..., 1:]


def _autograd(net, features, points, intrinsics, field: str, create_graph: bool):
    p = points.detach().requires_grad_(True)
    f = _act(net.query(features, p, intrinsics), field)
    (g,) = torch.autograd.grad(f.sum(), p, create_graph=create_graph)
    return f, g


def _numerical(net, features, points, intrinsics, field: str, step: float):
    q = points.shape[1]
    offs = step * torch.eye(3, dtype=points.dtype, device=points.device)
    # One decoder call on [p, p+h·e_x, p−h·e_x, p+h·e_y, ...] keeps the batch large.
    shifted = [points] + [points + s * offs[k] for k in range(3) for s in (1.0, -1.0)]
    f_all = _act(net.query(features, torch.cat(shifted, dim=1), intrinsics), field).split(q, dim=1)
    g = torch.stack([(f_all[1 + 2 * k] - f_all[2 + 2 * k]) / (2 * step) for k in range(3)], dim=-1)
    return f_all[0], g


def field_and_gradient(net, features: list, points: torch.Tensor, intrinsics: torch.Tensor,
                       mode: str = "dgs", field: str = "occupancy", step: float = 1e-3,
                       create_graph: bool = True, store_jacobian: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Field and spatial gradient at camera-space query points.

    Args:
        net: a :class:`dgs_core.model.net.DGSNet` (uses ``decode``, ``query``, ``pe``, ``decoder``).
        features: the model's feature list (``net.encode(...).features``): maps (B, C_i, H_i, W_i), then
            optionally one VoxelFeatures.
        points: (B, Q, 3) camera frame, metres, z > 0. Treated as data (no gradient to points).
        intrinsics: (B, 4) normalised ``(a_u, a_v, c_u, c_v)``.
        mode: one of :data:`GRADIENT_MODES`.
        field: ``"occupancy"`` (sigmoid of the logit, ∈ [0, 1], 1 = occupied) or ``"logit"`` (raw
            decoder output, used as the SDF by the Eq. 2 loss).
        step: central-difference step h in metres (``"numerical"`` only).
        create_graph: keep the gradient differentiable (training); False for inference.
        store_jacobian: ``"dgs"`` only — keep the op's Jacobian (B, Q, 3, ΣC) for backward instead of
            re-evaluating it there: one op forward per map less, 3·B·Q·ΣC more floats held.
    Returns:
        f (B, Q) and ∂f/∂p (B, Q, 3) in 1/m (None for ``"nograd"``).
    """
    if mode not in GRADIENT_MODES:
        raise ValueError(f"gradient_mode: expected one of {GRADIENT_MODES}, found {mode!r}")
    if field not in FIELDS:
        raise ValueError(f"field: expected one of {FIELDS}, found {field!r}")
    if mode == "nograd":
        return _act(net.query(features, points, intrinsics), field), None
    if mode == "numerical":
        if not step > 0:
            raise ValueError(f"numerical gradient step: expected h > 0 metres, found {step}")
        return _numerical(net, features, points, intrinsics, field, step)
    if mode == "dgs_forward":
        return _dgs_forward(net, features, points, intrinsics, field)
    with torch.enable_grad():  # the VJP modes need a graph even when called under no_grad
        if mode == "dgs":
            return _dgs(net, features, points, intrinsics, field, create_graph, store_jacobian)
        if mode == "autograd":
            return _autograd(net, features, points, intrinsics, field, create_graph)
        # fixed_encoder: value from the live maps, gradient from detached ones.
        f = _act(net.query(features, points, intrinsics), field)
        _, g = _dgs(net, [m.detach() for m in features], points, intrinsics, field, create_graph)
        return f, g
