"""The voxel branch (dgs_core.model.voxel): the differentiable voxelisation against a brute-force float64
splat, its gradients w.r.t. depth and σ against autograd of that brute force, and the spatial gradient
through the branch in every gradient mode against autograd (float64)."""
import pytest
import torch

import dgs_core.gradients as gm
from dgs_core.data import Batch
from dgs_core.losses import LossConfig, training_loss
from dgs_core.model.net import DGSNet, ModelConfig
from dgs_core.model.voxel import (OFFSETS, VoxelBranch, VoxelConfig, back_project, frustum_box, gaussian_blur,
                                  splat)

D = torch.float64
# Pixel intrinsics of a 12×10 image; the normalised ones follow SPEC §1.2.
W, H, FX, FY, CX, CY = 12, 10, 11.0, 10.5, 6.3, 4.8
K1 = torch.tensor([[2 * FX / W, 2 * FY / H, 2 * CX / W - 1, 2 * CY / H - 1]], dtype=D)


def _brute_grid(depth, box_min, box_size, r, sigma, radius):
    """Float64 splat + blur from the definitions: tent weights Π_a max(0, 1 − |i_a(p) − v_a|) summed over
    the pixels' points (pixel centres back-projected with the *pixel* intrinsics), then the dense 3-D
    convolution with Π_a k_a, k_a(t) = exp(−t²/2σ_a²) / Σ_{|s| ≤ radius} exp(−s²/2σ_a²)."""
    j, i = torch.meshgrid(torch.arange(W, dtype=D) + 0.5, torch.arange(H, dtype=D) + 0.5, indexing="xy")
    z = depth.reshape(H, W)
    pts = torch.stack(((j - CX) / FX * z, (i - CY) / FY * z, z), -1).reshape(-1, 3)
    centres = torch.arange(r, dtype=D)
    tent = [torch.relu(1 - ((pts[:, a:a + 1] - box_min[a]) / (box_size[a] / r) - 0.5 - centres).abs())
            for a in range(3)]  # (N, R) each, axes x, y, z
    grid = torch.einsum("nz,ny,nx->zyx", tent[2], tent[1], tent[0])
    t = torch.arange(-radius, radius + 1, dtype=D)
    k = [torch.exp(-t ** 2 / (2 * s ** 2)) / torch.exp(-t ** 2 / (2 * s ** 2)).sum() for s in sigma]  # x, y, z
    out = torch.zeros_like(grid)
    for dz in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                w = k[2][dz + radius] * k[1][dy + radius] * k[0][dx + radius]
                shifted = torch.zeros_like(grid)  # shifted[v] = grid[v − offset], zero outside
                src = [slice(max(0, -o), r - max(0, o)) for o in (dz, dy, dx)]
                dst = [slice(max(0, o), r - max(0, -o)) for o in (dz, dy, dx)]
                shifted[dst[0], dst[1], dst[2]] = grid[src[0], src[1], src[2]]
                out = out + w * shifted
    return out


def _depth(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (1.0 + torch.rand(1, 1, H, W, generator=gen, dtype=D)).requires_grad_(True)


def test_back_projection_and_box_contain_every_pixel_point():
    depth = _depth().detach()
    pts = back_project(depth, K1)[0]
    j, i = torch.meshgrid(torch.arange(W, dtype=D) + 0.5, torch.arange(H, dtype=D) + 0.5, indexing="xy")
    torch.testing.assert_close(pts[:, 0], ((j - CX) / FX * depth[0, 0]).reshape(-1), rtol=1e-14, atol=1e-14)
    box_min, box_size = frustum_box(depth, K1, margin=0.05, z_min=0.05)
    assert ((pts >= box_min) & (pts <= box_min + box_size)).all()
    # z range from the nearest and farthest depth; x extent = the frustum's at the far plane
    torch.testing.assert_close(box_min[0, 2], depth.min() * 0.95)
    torch.testing.assert_close(box_min[0, 0] + box_size[0, 0], (W - CX) / FX * depth.max() * 1.05)


@pytest.mark.parametrize("r", [5, 6])
def test_voxelisation_matches_brute_force_splat(r):
    branch = VoxelBranch(VoxelConfig(resolution=r, channels=(2,), sigma=0.6, kernel_radius=2)).double()
    with torch.no_grad():
        branch.log_sigma.copy_(torch.log(torch.tensor([0.45, 0.6, 0.8], dtype=D)))
    depth = _depth(r).detach()
    grid, box_min, box_size = branch.voxelise(depth, K1)
    ref = _brute_grid(depth, box_min[0], box_size[0], r, branch.sigma.detach(), 2)
    torch.testing.assert_close(grid[0, 0], ref, rtol=1e-12, atol=1e-12)
    # the splat alone conserves the points' weight when every point lies half a cell inside the box
    raw = splat(back_project(depth, K1), box_min - box_size, 3 * box_size, r)
    torch.testing.assert_close(raw.sum(), torch.tensor(float(H * W), dtype=D))


def test_voxel_grid_gradients_wrt_depth_and_sigma_match_brute_force():
    r = 5
    branch = VoxelBranch(VoxelConfig(resolution=r, channels=(2,), sigma=0.55, kernel_radius=2)).double()
    depth = _depth(3)
    probe = torch.randn(r, r, r, generator=torch.Generator().manual_seed(4), dtype=D)
    grid, box_min, box_size = branch.voxelise(depth, K1)
    g_depth, g_sigma = torch.autograd.grad((grid[0, 0] * probe).sum(), (depth, branch.log_sigma))
    depth_ref = depth.detach().clone().requires_grad_(True)
    log_sigma = branch.log_sigma.detach().clone().requires_grad_(True)
    ref = _brute_grid(depth_ref, box_min[0], box_size[0], r, log_sigma.exp(), 2)
    r_depth, r_sigma = torch.autograd.grad((ref * probe).sum(), (depth_ref, log_sigma))
    torch.testing.assert_close(g_depth, r_depth, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_sigma, r_sigma, rtol=1e-10, atol=1e-12)
    assert g_depth.abs().max() > 1e-3 and g_sigma.abs().min() > 1e-6  # not a comparison of zeros


def test_blur_preserves_mass_away_from_the_border():
    grid = torch.zeros(1, 1, 9, 9, 9, dtype=D)
    grid[0, 0, 4, 4, 4] = 1.0
    out = gaussian_blur(grid, torch.tensor([0.5, 0.7, 1.0], dtype=D), 3)
    torch.testing.assert_close(out.sum(), torch.tensor(1.0, dtype=D))
    assert out[0, 0, 4, 4, 5] > out[0, 0, 4, 4, 6] > 0  # a Gaussian falls off from the centre


# ---- the branch inside DGSNet -------------------------------------------------------------------

KB = torch.tensor([[1.8, 2.4, 0.05, -0.03], [1.7, 2.2, -0.02, 0.04]], dtype=D)


def _net(features="image+voxel", depth_head="end_to_end", seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig.tiny()
    cfg = ModelConfig(encoder=cfg.encoder, d_hidden=cfg.d_hidden, zero_init=False, features=features,
                      depth_head=depth_head, voxel=VoxelConfig(resolution=8, channels=(3, 4), displacement=1.0))
    return DGSNet(cfg).double()


def _batch(seed=1):
    gen = torch.Generator().manual_seed(seed)

    def points(q):  # inside the frustum, around the depth head's initial prediction (~0.7 m)
        z = 0.45 + 0.5 * torch.rand(2, q, 1, generator=gen, dtype=D)
        xy = (torch.rand(2, q, 2, generator=gen, dtype=D) * 2 - 1) * 0.45 * z
        return torch.cat((xy, z), -1)

    depth = 0.5 + 0.4 * torch.rand(2, 32, 48, generator=gen, dtype=D)
    return Batch(images=torch.randn(2, 3, 32, 48, generator=gen, dtype=D), intrinsics=KB, near_points=points(24),
                 near_labels=(torch.rand(2, 24, generator=gen) > 0.5).double(), far_points=points(16), depth=depth)


def test_voxel_samples_agree_between_grid_sample_and_the_dgs_op():
    net, batch = _net("voxel"), _batch()
    vox = net.encode(batch.images, KB).features[-1]
    assert vox.channels == len(OFFSETS) * (1 + 3 + 4) == net.config.voxel.out_channels
    p = batch.far_points.clone().requires_grad_(True)
    value = vox.sample(p)
    probe = torch.randn(value.shape[-1], dtype=D)
    (grad,) = torch.autograd.grad((value * probe).sum(), p)
    v2, jac = vox.sample_with_jacobian(batch.far_points)
    torch.testing.assert_close(v2, value.detach(), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close((jac * probe).sum(-1), grad, rtol=1e-11, atol=1e-11)
    assert grad.abs().max() > 1e-3


@pytest.mark.parametrize("features", ["voxel", "image+voxel"])
@pytest.mark.parametrize("mode", ["dgs", "dgs_forward", "numerical"])
def test_spatial_gradient_through_the_voxel_branch_matches_autograd(features, mode):
    net, batch = _net(features), _batch()
    feats = net.encode(batch.images, KB).features
    o_ref, g_ref = gm.field_and_gradient(net, feats, batch.far_points, KB, "autograd")
    o, g = gm.field_and_gradient(net, feats, batch.far_points, KB, mode, step=1e-6)
    tol = 1e-5 if mode == "numerical" else 1e-10
    torch.testing.assert_close(o, o_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, g_ref, rtol=tol, atol=tol)
    assert g_ref.abs().max() > 1e-3


def _param_grads(net, batch, **cfg):
    net.zero_grad(set_to_none=True)
    loss, _ = training_loss(net, batch, LossConfig(**cfg))
    loss.backward()
    return {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in net.named_parameters()}


@pytest.mark.parametrize("mode, store", [("dgs", False), ("dgs", True), ("dgs_forward", False)])
def test_parameter_gradients_of_the_dgs_modes_equal_autograd(mode, store):
    net, batch = _net(), _batch()
    ref = _param_grads(net, batch, gradient_mode="autograd", grad_weight=1.0)
    got = _param_grads(net, batch, gradient_mode=mode, grad_weight=1.0, dgs_store_jacobian=store)
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=1e-9, atol=1e-12, msg=name)
    # the gradient term reaches σ, the 3-D CNN and the depth head (end to end)
    base = _param_grads(net, batch, gradient_mode="nograd")
    for name in ("voxel.log_sigma", "voxel.encoder.levels.0.0.weight", "encoder.depth_head.2.weight"):
        assert (ref[name] - base[name]).abs().max() > 1e-9, name


def test_frozen_depth_head_gets_no_gradient_from_the_occupancy_terms():
    batch = _batch()
    for depth_head, reached in (("end_to_end", True), ("frozen", False)):
        net = _net(depth_head=depth_head)
        grads = _param_grads(net, batch, gradient_mode="dgs", depth_weight=0.0)
        assert (grads["encoder.depth_head.0.weight"].abs().max() > 0) == reached, depth_head
        assert grads["voxel.log_sigma"].abs().max() > 0  # σ still learns from the occupancy terms


def test_fixed_encoder_keeps_the_gradient_term_away_from_the_voxel_branch():
    net, batch = _net(), _batch()
    fixed = _param_grads(net, batch, gradient_mode="fixed_encoder", grad_weight=1.0)
    nograd = _param_grads(net, batch, gradient_mode="nograd")
    for name in fixed:
        if name.startswith(("voxel.", "encoder.")):
            torch.testing.assert_close(fixed[name], nograd[name], rtol=1e-12, atol=1e-14, msg=name)


def test_configuration_errors_name_the_key():
    with pytest.raises(ValueError, match="features"):
        ModelConfig(features="depth")
    with pytest.raises(ValueError, match="resolution"):
        VoxelConfig(resolution=30, channels=(4, 8, 8))
    enc = ModelConfig.tiny().encoder
    enc.depth_head = False
    with pytest.raises(ValueError, match="depth_head"):
        ModelConfig(encoder=enc, features="voxel")
    with pytest.raises(ValueError, match="intrinsics"):
        _net().encode(_batch().images)
