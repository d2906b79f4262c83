"""dgs_core.sphere_trace on analytic signed distance fields (sphere, box, plane, a thin slab) against
exact ray–surface intersections: hits within the footprint ε, never past the surface, the same
pixels as plain per-pixel tracing, and fewer queries, counted deterministically."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dgs_core.sphere_trace import TraceConfig, footprint_epsilon, pixel_rays, trace

W, H = 64, 48
K = (57.6, 57.6, 32.0, 24.0)  # the 64×48 virtual camera
PLAIN = TraceConfig(start_level=0, alpha=1.0)


def sphere(centre, radius):
    c = torch.tensor(centre, dtype=torch.float64)
    return lambda p: torch.linalg.vector_norm(p - c.to(p.dtype), dim=-1) - radius


def box(centre, half):
    c, h = torch.tensor(centre, dtype=torch.float64), torch.tensor(half, dtype=torch.float64)

    def f(p):
        q = (p - c.to(p.dtype)).abs() - h.to(p.dtype)
        return torch.linalg.vector_norm(q.clamp_min(0), dim=-1) + q.max(dim=-1).values.clamp_max(0)
    return f


def plane(normal, offset):
    """Points with n·p < offset are free (the camera at the origin sees the plane n·p = offset, offset > 0)."""
    n = torch.nn.functional.normalize(torch.tensor(normal, dtype=torch.float64), dim=0)
    return lambda p: offset - p @ n.to(p.dtype)


def exact_sphere(d, centre, radius):
    """z-depth of the first intersection of rays t·d (H, W, 3) with a sphere, NaN on a miss."""
    c = np.asarray(centre)
    a, b, cc = (d * d).sum(-1), -2 * d @ c, c @ c - radius ** 2
    disc = b * b - 4 * a * cc
    with np.errstate(invalid="ignore"):
        return np.where(disc >= 0, (-b - np.sqrt(disc)) / (2 * a), np.nan)


def exact_box(d, centre, half):
    lo, hi = np.asarray(centre) - half, np.asarray(centre) + half
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = lo / d, hi / d
    enter, leave = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
    return np.where(enter <= leave, enter, np.nan)


def exact_plane(d, normal, offset):
    n = np.asarray(normal) / np.linalg.norm(normal)
    return offset / (d @ n)


def incidence(d, t, field):
    """|cos| of the angle between each ray and the surface normal at its exact hit (autograd normal)."""
    p = torch.tensor(d * t[..., None]).reshape(-1, 3).requires_grad_(True)
    (g,) = torch.autograd.grad(field(p).sum(), p)
    dn = torch.nn.functional.normalize(torch.tensor(d).reshape(-1, 3), dim=-1)
    return (torch.nn.functional.normalize(g, dim=-1) * dn).sum(-1).abs().reshape(t.shape).numpy()


SCENES = {
    "sphere": (sphere([0.3, -0.2, 2.5], 0.9), lambda d: exact_sphere(d, [0.3, -0.2, 2.5], 0.9)),
    "box": (box([-0.2, 0.1, 3.0], [0.6, 0.4, 0.5]), lambda d: exact_box(d, [-0.2, 0.1, 3.0], [0.6, 0.4, 0.5])),
    "plane": (plane([0.2, -0.5, 1.0], 2.0), lambda d: exact_plane(d, [0.2, -0.5, 1.0], 2.0)),
}


@pytest.mark.parametrize("name", list(SCENES))
@pytest.mark.parametrize("config", [TraceConfig(), TraceConfig(alpha=1.5), PLAIN], ids=["c2f", "aggressive", "plain"])
def test_hits_within_the_footprint_of_the_exact_intersection(name, config) -> None:
    field, exact = SCENES[name]
    d = pixel_rays(W, H, K).numpy()
    t_true = exact(d)
    res = trace(field, W, H, K, config, dtype=torch.float64)
    depth, hit = res.depth.numpy().astype(np.float64), res.hit.numpy()
    cos = incidence(d, np.nan_to_num(t_true, nan=1.0), field)
    clear = np.isfinite(t_true) & (cos > 0.2)  # not a silhouette pixel: must be found
    assert clear.sum() > 200 and (hit[clear]).all()
    if name != "plane":
        assert (~hit).sum() > 200  # the background is missed, not hit
    eps = np.array([footprint_epsilon(z, K) for z in depth[hit]])
    f_hit = field(torch.tensor(d[hit] * depth[hit][:, None])).numpy()
    assert (f_hit < eps).all() and (f_hit > -1e-9).all()  # within the footprint, never inside
    meets = np.isfinite(t_true[hit])  # the others pass the silhouette closer than ε: hits too
    gap = t_true[hit][meets] - depth[hit][meets]
    assert (gap >= -1e-9).all()  # never beyond the surface: every step was safe
    ray_len, both = np.linalg.norm(d[hit][meets], axis=-1), clear[hit][meets]  # ε/cos θ along the ray, in z units
    assert (gap[both] * ray_len[both] * cos[hit][meets][both] <= eps[meets][both] * (1 + 1e-6)).all()
    assert res.unfinished == 0 and res.queries == sum(res.queries_per_level)


def test_coarse_to_fine_finds_the_same_pixels_with_fewer_queries_deterministically() -> None:
    field = lambda p: torch.minimum(SCENES["sphere"][0](p), SCENES["box"][0](p))  # noqa: E731
    plain, c2f = trace(field, W, H, K, PLAIN), trace(field, W, H, K, TraceConfig())
    assert torch.equal(plain.hit, c2f.hit)
    both = plain.hit & c2f.hit
    assert (plain.depth - c2f.depth)[both].abs().max() < footprint_epsilon(4.0, K) * 3
    assert c2f.queries < plain.queries / 2.5, (plain.queries, c2f.queries)
    assert len(c2f.queries_per_level) == 3 and len(plain.queries_per_level) == 1
    again = trace(field, W, H, K, TraceConfig())
    assert (again.queries, again.queries_per_level) == (c2f.queries, c2f.queries_per_level)
    assert torch.equal(again.depth.nan_to_num(), c2f.depth.nan_to_num())


@pytest.mark.parametrize("alpha", [1.0, 1.8])
def test_a_thin_slab_is_never_stepped_over(alpha) -> None:
    """A 4 mm slab, tilted and in front of a far wall, at an odd image size (blocks cut at the edges):
    every ray through it stops on its front face, aggressive steps included."""
    slab = box([0.0, 0.0, 2.0], [0.5, 0.4, 0.002])
    wall = plane([0.0, 0.0, 1.0], 6.0)
    field = lambda p: torch.minimum(slab(p), wall(p))  # noqa: E731
    w, h, k = 37, 29, (40.0, 40.0, 18.5, 14.5)
    res = trace(field, w, h, k, TraceConfig(alpha=alpha), dtype=torch.float64)
    d = pixel_rays(w, h, k).numpy()
    t_slab = exact_box(d, [0.0, 0.0, 2.0], [0.5, 0.4, 0.002])
    on_slab = np.isfinite(t_slab)
    assert 50 < on_slab.sum() < on_slab.size and res.hit.all()
    depth = res.depth.numpy()
    np.testing.assert_allclose(depth[on_slab], t_slab[on_slab], atol=footprint_epsilon(2.1, k) * 1.5)
    np.testing.assert_allclose(depth[~on_slab], 6.0, atol=footprint_epsilon(6.0, k) * 1.5)


def test_misses_beyond_z_far_and_bad_settings() -> None:
    res = trace(sphere([0.0, 0.0, 5.0], 0.5), W, H, K, TraceConfig(z_far=3.0))
    assert not res.hit.any() and torch.isnan(res.depth).all()
    assert res.queries < W * H  # the coarse rays alone establish the misses
    with pytest.raises(ValueError, match="alpha"):
        TraceConfig(alpha=0.5)
    with pytest.raises(ValueError, match="z_near"):
        TraceConfig(z_near=2.0, z_far=1.0)
