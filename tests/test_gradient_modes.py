"""The gradient modes agree with each other and the ablations touch exactly what they should.

Everything runs in float64 on a tiny model so that dgs / dgs_forward (through dgs_core.ops.dgs_sample)
and autograd (double backward through grid_sample) can be compared to ~1e-10, numerical differences
to O(h²).
"""
import pytest
import torch

import dgs_core.gradients as gm
from dgs_core.data import Batch, to_device
from dgs_core.losses import LossConfig, training_loss
from dgs_core.model.net import DGSNet, ModelConfig

K = torch.tensor([[1.8, 2.4, 0.05, -0.03], [1.7, 2.2, -0.02, 0.04]], dtype=torch.float64)


def _points(gen, b, q):
    # z in [1, 3] m; |u|, |v| up to ~1.3 so some points sit in the clamped border band.
    z = 1 + 2 * torch.rand(b, q, 1, generator=gen, dtype=torch.float64)
    xy = (torch.rand(b, q, 2, generator=gen, dtype=torch.float64) * 2 - 1) * 0.6 * z
    return torch.cat((xy, z), dim=-1)


def _setup(seed=0, **model):
    torch.manual_seed(seed)
    cfg = ModelConfig.tiny()
    net = DGSNet(ModelConfig(**{**vars(cfg), **model})).double()
    gen = torch.Generator().manual_seed(seed)
    depth = 1 + torch.rand(2, 32, 48, generator=gen, dtype=torch.float64)
    depth[:, :4] = float("nan")
    batch = Batch(images=torch.randn(2, 3, 32, 48, generator=gen, dtype=torch.float64), intrinsics=K,
                  near_points=_points(gen, 2, 24), near_labels=(torch.rand(2, 24, generator=gen) > 0.5).double(),
                  far_points=_points(gen, 2, 16), depth=depth)
    return net, batch


def _param_grads(net, batch, **cfg):
    net.zero_grad(set_to_none=True)
    loss, terms = training_loss(net, batch, LossConfig(**cfg))
    loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in net.named_parameters()}, terms


@pytest.mark.parametrize("mode", ["dgs", "dgs_forward", "numerical"])
def test_spatial_gradient_matches_autograd(mode):
    net, batch = _setup(1)
    feats = net.encode(batch.images).features
    o_ref, g_ref = gm.field_and_gradient(net, feats, batch.far_points, K, "autograd")
    o, g = gm.field_and_gradient(net, feats, batch.far_points, K, mode, step=1e-6)
    torch.testing.assert_close(o, o_ref, rtol=1e-12, atol=1e-12)
    # numerical: O(h²) with a large constant (the PE's top frequency π·32 per metre gives a third
    # derivative ~1e6) plus round-off ~1e-16/h.
    tol = 1e-5 if mode == "numerical" else 1e-10
    torch.testing.assert_close(g, g_ref, rtol=tol, atol=tol)
    assert g.abs().max() > 1e-3  # the comparison is not between zeros


def test_numerical_error_is_second_order():
    net, batch = _setup(2)
    feats = net.encode(batch.images).features
    pts = batch.far_points[:, :6]
    _, g_ref = gm.field_and_gradient(net, feats, pts, K, "autograd")
    errs = [(gm.field_and_gradient(net, feats, pts, K, "numerical", step=h)[1] - g_ref).abs().max().item()
            for h in (4e-6, 2e-6)]
    # Halving h divides the error by ~4. h must stay tiny here: the random tiny model has ReLU and
    # bilinear-cell kinks every few mm, and a difference straddling a kink is only O(1) accurate.
    assert errs[0] / 4.5 < errs[1] < errs[0] / 3.5, errs


def test_logit_field_gradient():
    net, batch = _setup(3)
    feats = net.encode(batch.images).features
    o, g = gm.field_and_gradient(net, feats, batch.far_points, K, "dgs")
    s, gs = gm.field_and_gradient(net, feats, batch.far_points, K, "dgs", field="logit")
    torch.testing.assert_close(g, (o * (1 - o))[..., None] * gs, rtol=1e-12, atol=1e-14)


# (mode, dgs_store_jacobian, tolerance), each compared with autograd on CPU, on CPU and on CUDA. On
# CUDA autograd itself is compared too: does grid_sample's double backward work there, and agree?
MODES = [("dgs", False, 1e-10), ("dgs", True, 1e-10), ("dgs_forward", False, 1e-10), ("numerical", False, 1e-5)]
MODE_CASES = [("cpu", *case) for case in MODES] + [
    pytest.param("cuda", *case, marks=pytest.mark.cuda) for case in [("autograd", False, 1e-10), *MODES]]


@pytest.mark.parametrize("device, mode, store, tol", MODE_CASES)
def test_modes_give_autograds_parameter_gradients(device, mode, store, tol):
    """float64 parameter gradients of ``mode`` on ``device`` equal those of autograd on CPU."""
    net, batch = _setup(4)
    ref, terms = _param_grads(net, batch, gradient_mode="autograd")
    assert terms["grad"] > 0 and "depth" in terms
    net, batch = net.to(device), to_device(batch, device, net.config.input_norm)
    got, _ = _param_grads(net, batch, gradient_mode=mode, numerical_step=1e-6, dgs_store_jacobian=store)
    assert all(g.device.type == device for g in got.values())
    for name in ref:
        torch.testing.assert_close(got[name].cpu(), ref[name], rtol=tol, atol=tol, msg=f"{mode}/{store}: {name}")


def test_nograd_equals_bce_only_and_differs_from_dgs():
    net, batch = _setup(5)
    nograd, terms = _param_grads(net, batch, gradient_mode="nograd")
    assert "grad" not in terms
    bce_only, _ = _param_grads(net, batch, gradient_mode="dgs", grad_weight=0.0)
    full, _ = _param_grads(net, batch, gradient_mode="dgs", grad_weight=1.0)
    for name in nograd:
        torch.testing.assert_close(nograd[name], bce_only[name], rtol=1e-13, atol=1e-15)
    # The gradient term really changes encoder and decoder gradients in the full mode.
    assert (full["encoder.proj.0.weight"] - nograd["encoder.proj.0.weight"]).abs().max() > 1e-6
    assert (full["decoder.lin_in.weight"] - nograd["decoder.lin_in.weight"]).abs().max() > 1e-6


def test_fixed_encoder_touches_decoder_only():
    net, batch = _setup(6)
    fixed, _ = _param_grads(net, batch, gradient_mode="fixed_encoder", grad_weight=1.0)
    full, _ = _param_grads(net, batch, gradient_mode="dgs", grad_weight=1.0)
    bce_depth, _ = _param_grads(net, batch, gradient_mode="nograd", grad_weight=1.0)
    enc = [n for n in fixed if n.startswith("encoder.")]
    dec = [n for n in fixed if n.startswith("decoder.")]
    assert enc and dec
    for n in enc:  # encoder: exactly the BCE + depth gradients
        torch.testing.assert_close(fixed[n], bce_depth[n], rtol=1e-13, atol=1e-15, msg=n)
    for n in dec:  # decoder: exactly the full DGS gradients, gradient term included
        torch.testing.assert_close(fixed[n], full[n], rtol=1e-10, atol=1e-12, msg=n)
    assert max((full[n] - fixed[n]).abs().max().item() for n in enc) > 1e-6


def test_inference_under_no_grad_and_bad_mode():
    net, batch = _setup(7)
    with torch.no_grad():
        feats = net.encode(batch.images).features
        o, g = gm.field_and_gradient(net, feats, batch.far_points, K, "dgs", create_graph=False)
    assert g.shape == (2, 16, 3) and not g.requires_grad
    o2, g2 = gm.field_and_gradient(net, net.encode(batch.images).features, batch.far_points, K, "autograd")
    torch.testing.assert_close(g2.detach(), g, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="gradient_mode"):
        gm.field_and_gradient(net, feats, batch.far_points, K, "fd")


def test_sdf_loss_modes_agree():
    net, batch = _setup(8, color=True)
    gen = torch.Generator().manual_seed(8)
    batch.surface_points = _points(gen, 2, 12)
    batch.surface_normals = torch.nn.functional.normalize(torch.randn(2, 12, 3, generator=gen, dtype=torch.float64), dim=-1)
    batch.near_offsets = (torch.rand(2, 24, generator=gen, dtype=torch.float64) - 0.5) * 0.1
    batch.surface_colors = torch.rand(2, 12, 3, generator=gen, dtype=torch.float64)
    cfg = dict(kind="sdf", sdf_normal_weight=0.5)
    ref, terms = _param_grads(net, batch, gradient_mode="autograd", **cfg)
    assert {"surface", "eikonal", "normal", "near", "color", "depth"} <= set(terms)
    assert ref["color_head.weight"].abs().max() > 0
    got, _ = _param_grads(net, batch, gradient_mode="dgs", **cfg)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-10, atol=1e-10, msg=name)
    with pytest.raises(ValueError, match="nograd"):
        _param_grads(net, batch, gradient_mode="nograd", **cfg)


def test_fourier_embedding_works_in_every_gradient_mode():
    """model.embedding=fourier: its analytic Jacobian (forward mode) and every VJP mode give autograd's
    spatial gradient and parameter gradients (float64)."""
    net, batch = _setup(9, embedding="fourier", fourier_features=12, fourier_sigma=2.0)
    feats = net.encode(batch.images).features
    _, g_ref = gm.field_and_gradient(net, feats, batch.far_points, K, "autograd")
    ref, _ = _param_grads(net, batch, gradient_mode="autograd")
    assert net.pe.d_out == 24 and g_ref.abs().max() > 1e-3
    for mode, tol in (("dgs", 1e-10), ("dgs_forward", 1e-10), ("numerical", 1e-6)):
        _, g = gm.field_and_gradient(net, feats, batch.far_points, K, mode, step=1e-6)
        torch.testing.assert_close(g, g_ref, rtol=tol, atol=tol, msg=mode)
        got, _ = _param_grads(net, batch, gradient_mode=mode, numerical_step=1e-6)
        for name in ref:
            torch.testing.assert_close(got[name], ref[name], rtol=tol, atol=tol, msg=f"{mode}: {name}")
