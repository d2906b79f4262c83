"""Loss terms against values computed by hand on tiny inputs."""
import math

import pytest
import torch

from dgs_core.losses import LossConfig, color_l1, depth_l1, gradient_penalty, occupancy_loss, occupied, sdf_loss


def _bce(logit, y):
    p = 1 / (1 + math.exp(-logit))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def test_gradient_penalty_variants():
    g = torch.tensor([[[3.0, 4.0, 0.0], [0.0, -1.0, 0.0]]])
    assert gradient_penalty(g, "norm").item() == pytest.approx((5 + 1) / 2)
    assert gradient_penalty(g, "mean_abs").item() == pytest.approx((3 + 4 + 1) / 6)
    with pytest.raises(ValueError, match="gradient_penalty"):
        gradient_penalty(g, "l2")
    z = torch.zeros(1, 2, 3, requires_grad=True)
    gradient_penalty(z, "norm").backward()  # a zero gradient must not poison training with NaN
    assert torch.isfinite(z.grad).all()


def test_depth_l1_masks_holes_and_nonpositive():
    target = torch.tensor([[[1.0, float("nan")], [0.0, 3.0]]])
    pred = torch.tensor([[[[1.5, 9.0], [9.0, 2.0]]]], requires_grad=True)
    d = depth_l1(pred, target)
    assert d.item() == pytest.approx((0.5 + 1.0) / 2)
    d.backward()
    torch.testing.assert_close(pred.grad, torch.tensor([[[[0.5, 0.0], [0.0, -0.5]]]]))
    empty = depth_l1(pred, torch.full((1, 2, 2), float("nan")))
    assert empty.item() == 0.0 and empty.requires_grad


def test_occupancy_loss_eq1_by_hand():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    labels = torch.tensor([[1.0, 0.0, 0.0]])
    grad = torch.tensor([[[0.0, 3.0, 4.0], [1.0, 0.0, 0.0]]])
    dp, dt = torch.tensor([[[[2.0, 2.0]]]]), torch.tensor([[[1.0, 4.0]]])
    bce = (_bce(2.0, 1) + _bce(-1.0, 0) + _bce(0.5, 0)) / 3
    cfg = LossConfig(gradient_penalty="norm", grad_weight=0.01, depth_weight=0.5)
    total, terms = occupancy_loss(logits, labels, grad, cfg, dp, dt)
    assert terms["bce"].item() == pytest.approx(bce)
    assert terms["grad"].item() == pytest.approx(3.0)
    assert terms["depth"].item() == pytest.approx(1.5)
    assert total.item() == pytest.approx(bce + 0.01 * 3.0 + 0.5 * 1.5)
    total, terms = occupancy_loss(logits, labels, grad, LossConfig(), dp, dt)  # release defaults
    assert total.item() == pytest.approx(bce + 0.01 * (8 / 6) + 1.0 * 1.5)
    total, terms = occupancy_loss(logits, labels, None, LossConfig(depth_weight=0))
    assert set(terms) == {"bce"} and total.item() == pytest.approx(bce)


def test_sdf_loss_eq2_by_hand():
    s = torch.tensor([[0.1, -0.3]])
    g_space = torch.tensor([[[0.0, 0.0, 2.0], [0.6, 0.8, 0.0]]])
    g_surf = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]])
    n = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    cfg = LossConfig(kind="sdf", sdf_surface_weight=1.0, sdf_eikonal_weight=0.1, sdf_normal_weight=2.0)
    total, terms = sdf_loss(s, g_space, cfg, g_surf, n)
    assert terms["surface"].item() == pytest.approx(0.2)
    assert terms["eikonal"].item() == pytest.approx((1.0 + 0.0) / 2)
    assert terms["normal"].item() == pytest.approx((0.0 + 1.0) / 2)
    assert total.item() == pytest.approx(0.2 + 0.1 * 0.5 + 2.0 * 0.5)
    # Eikonal is |‖∇s‖ − 1| (not squared): ‖(0, 0, 3)‖ − 1 = 2, ‖(0.3, 0.4, 0)‖ − 1 = −0.5
    _, terms = sdf_loss(s, torch.tensor([[[0.0, 0.0, 3.0], [0.3, 0.4, 0.0]]]), cfg)
    assert terms["eikonal"].item() == pytest.approx((2.0 + 0.5) / 2)
    # signed near-surface term: s(p_near) against the stored offsets d
    near, d = torch.tensor([[0.05, -0.02, 0.0]]), torch.tensor([[0.03, 0.01, -0.04]])
    cfg = LossConfig(kind="sdf", sdf_near_weight=3.0)
    total, terms = sdf_loss(s, g_space, cfg, near_sdf=near, near_offsets=d)
    assert terms["near"].item() == pytest.approx((0.02 + 0.03 + 0.04) / 3)
    assert total.item() == pytest.approx(0.2 + 0.1 * 0.5 + 3.0 * 0.03) and "normal" not in terms


def test_color_l1_skips_frames_without_colour_and_occupied_sides():
    pred = torch.tensor([[[0.5, 0.5, 0.5], [0.0, 1.0, 0.2]], [[0.9, 0.9, 0.9], [0.1, 0.1, 0.1]]], requires_grad=True)
    target = torch.tensor([[[0.25, 0.5, 1.0], [0.0, 0.5, 0.2]], [[float("nan")] * 3] * 2])
    c = color_l1(pred, target)
    assert c.item() == pytest.approx((0.25 + 0 + 0.5 + 0 + 0.5 + 0) / 6)
    c.backward()
    assert pred.grad[1].abs().sum() == 0  # the frame without colours does not pull
    empty = color_l1(pred, torch.full_like(target, float("nan")))
    assert empty.item() == 0.0 and empty.requires_grad
    v = torch.tensor([0.5, -0.5, 0.0])
    assert occupied(v, "occupancy").tolist() == [True, False, False]  # logit > 0: o > 0.5
    assert occupied(v, "sdf").tolist() == [False, True, False]        # s < 0: inside


def test_loss_config_validation():
    with pytest.raises(ValueError, match="gradient_mode"):
        LossConfig(gradient_mode="finite")
    with pytest.raises(ValueError, match="gradient_penalty"):
        LossConfig(gradient_penalty="l1")
    with pytest.raises(ValueError, match="kind"):
        LossConfig(kind="udf")
