"""Depth of a signed distance field by sphere tracing, batched over rays, coarse to fine (DIST-style).

Rays start at the camera centre and pass through pixel centres of a W×H image with pixel
intrinsics fx, fy, cx, cy: ray (i, j) is ``t·d`` with ``d = ((j + ½ − cx)/fx, (i + ½ − cy)/fy, 1)``,
so the ray parameter t is the z-depth (SPEC §4.3, §5.4). The field f(p) is a signed distance in
metres at camera-frame points, positive in free space (SPEC §1.4); a trained SDF model is one
(``net.query``), analytic ones serve the tests. Every evaluation of f at one point is one query.

The schedule (SPEC §5.14) follows DIST (Liu et al., CVPR 2020):

- **Coarse to fine.** Tracing starts with one ray per 2^L × 2^L block of pixels (L =
  ``start_level``, 2 = a quarter of the resolution per axis). A block's ray stands for a cone that
  contains every pixel ray of the block: at depth t they lie within ``t·e`` of its point, ``e`` =
  the largest ‖d_pixel − d_block‖ (half the block's diagonal per unit z). The cone advances by the
  *safe step* ``(|f| − t·e)/(‖d‖ + e)``: the ball of radius |f| around the current point then covers
  the whole cone up to the new depth, so no pixel of the block can pass a surface (exact for a
  1-Lipschitz field). When the ball no longer covers ``split_ratio`` (2) times the cone's radius
  (|f| < 2·t·e) the ray splits 2×2 into the next level's rays — twice for L = 2, as in DIST. They
  start at the parent's depth (everything in front of it is free) without a query: the parent's
  |f| less the distance between the two points bounds a child's free radius from below, and its
  first step measures f. Pixel rays (e = 0) step plain sphere tracing.
- **Aggressive steps with a safe fallback.** With ``alpha`` > 1 a ray tries α × the safe step. The
  step is kept when the ball at the new point, shrunk by its own cone radius, reaches back to where
  the old ball's coverage ended (``safe + (|f'| − t'·e)/‖d‖ ≥ α·safe``, over-relaxed sphere tracing,
  Keinert et al. 2014); otherwise the ray takes the safe step instead (one more query) and keeps
  α = 1 from then on. An aggressive step that lands inside a surface always fails the check, so
  nothing is skipped. The default is α = 1: near a surface at a moderate angle the check fails, and
  on the benchmark's scenes α = 1.2–1.5 cost a few per cent more queries than α = 1
  (``benchmarks/bench_sphere_trace.py`` prints both). DIST's cheaper test (keep the step unless the
  field turned negative) is not offered: it jumps over thin geometry (at α = 1.5 it lost nearly all
  of the benchmark's object).
- **Stop.** A pixel ray has hit when ``f < ε(t)``, ``ε(t) = eps_pixels · t / max(fx, fy)``: half a
  pixel's width at depth t by default (DIST's footprint criterion). It misses when t passes
  ``z_far``, or when it used ``max_steps`` steps at its level without converging (counted as
  ``unfinished``); a coarse ray that runs out of steps splits, one past ``z_far`` misses for all of
  its block's pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

Field = Callable[[torch.Tensor], torch.Tensor]
"""Signed distance at points: (N, 3) camera frame, metres → (N,) metres, > 0 in free space."""


@dataclass(frozen=True)
class TraceConfig:
    """Sphere-tracing settings (module docstring). Depths in metres along z."""

    start_level: int = 2      # first rays cover 2^L × 2^L pixels; 0 = one ray per pixel from the start
    split_ratio: float = 2.0  # a coarse ray splits when |f| < split_ratio × its cone radius t·e
    alpha: float = 1.0        # aggressive step factor (> 1 tries α × the safe step); 1 = safe steps only
    eps_pixels: float = 0.5   # hit when f < eps_pixels pixel widths at the current depth
    max_steps: int = 96       # steps per ray and level
    z_near: float = 0.05      # tracing starts at this depth
    z_far: float = 10.0       # a ray beyond this depth misses

    def __post_init__(self) -> None:
        if (self.start_level < 0 or not self.alpha >= 1 or not self.eps_pixels > 0 or self.max_steps < 1
                or not self.split_ratio > 1):
            raise ValueError(f"TraceConfig: expected start_level ≥ 0, split_ratio > 1, alpha ≥ 1, eps_pixels > 0 "
                             f"and max_steps ≥ 1, found {self.start_level}, {self.split_ratio}, {self.alpha}, "
                             f"{self.eps_pixels}, {self.max_steps}")
        if not 0 < self.z_near < self.z_far:
            raise ValueError(f"TraceConfig: expected 0 < z_near < z_far, found {self.z_near}, {self.z_far}")


@dataclass
class TraceResult:
    """depth (H, W) float32 z-depth in metres, NaN where no hit; hit (H, W) bool; queries: field
    evaluations in all; queries_per_level: those made by rays of each level (index = level);
    unfinished: pixel rays that used up ``max_steps`` (reported as misses)."""

    depth: torch.Tensor
    hit: torch.Tensor
    queries: int
    queries_per_level: list[int]
    unfinished: int


@dataclass
class _Rays:
    """Rays of one level: pixel blocks [x0, x1) × [y0, y1), depth t, field value f at t·d, steps."""

    x0: torch.Tensor
    x1: torch.Tensor
    y0: torch.Tensor
    y1: torch.Tensor
    t: torch.Tensor
    f: torch.Tensor
    steps: torch.Tensor
    alpha: torch.Tensor
    exact: torch.Tensor  # False: f is only a lower bound of the distance (inherited from the parent)

    def select(self, mask: torch.Tensor) -> "_Rays":
        return _Rays(*(getattr(self, k)[mask] for k in _FIELDS))


_FIELDS = ("x0", "x1", "y0", "y1", "t", "f", "steps", "alpha", "exact")


class _Tracer:
    """One tracing run: the camera, the field (counting queries) and the output maps."""

    def __init__(self, field: Field, width: int, height: int, intrinsics: tuple[float, float, float, float],
                 config: TraceConfig, device: torch.device, dtype: torch.dtype) -> None:
        self.field, self.width, self.height, self.config = field, width, height, config
        self.fx, self.fy, self.cx, self.cy = (float(v) for v in intrinsics)
        self.device, self.dtype = device, dtype
        self.depth = torch.full((height, width), float("nan"), dtype=torch.float32, device=device)
        self.hit = torch.zeros((height, width), dtype=torch.bool, device=device)
        self.queries = [0] * (config.start_level + 1)
        self.unfinished = 0
        self.footprint = config.eps_pixels / max(self.fx, self.fy)  # ε(t) = footprint · t

    def geometry(self, r: _Rays) -> tuple[torch.Tensor, torch.Tensor]:
        """Block-centre directions (R, 3) (z = 1) and cone radii per unit depth (R,)."""
        xc, yc = (r.x0 + r.x1).to(self.dtype) / 2, (r.y0 + r.y1).to(self.dtype) / 2
        d = torch.stack(((xc - self.cx) / self.fx, (yc - self.cy) / self.fy, torch.ones_like(xc)), dim=-1)
        hx, hy = (r.x1 - r.x0 - 1).to(self.dtype) / 2, (r.y1 - r.y0 - 1).to(self.dtype) / 2
        return d, torch.sqrt((hx / self.fx) ** 2 + (hy / self.fy) ** 2)

    def query(self, points: torch.Tensor, level: int) -> torch.Tensor:
        self.queries[level] += len(points)
        return self.field(points).to(self.dtype) if len(points) else points.new_zeros(0)

    def record_hits(self, r: _Rays) -> None:
        """Pixel rays (1×1 blocks) that converged: their depth (misses stay NaN / not hit)."""
        self.depth[r.y0, r.x0], self.hit[r.y0, r.x0] = r.t.to(torch.float32), True

    def step(self, r: _Rays, d: torch.Tensor, e: torch.Tensor, level: int) -> None:
        """One aggressive step with the safe fallback for every ray of ``r`` (in place). A ray whose
        safe step passes z_far is free up to there: it moves without a query (and then misses)."""
        norm = torch.linalg.vector_norm(d, dim=-1)
        safe = ((r.f.abs() - r.t * e) / (norm + e)).clamp_min(0)
        beyond = r.t + safe > self.config.z_far
        trial = r.t + r.alpha * safe
        tried = ~beyond & (trial <= self.config.z_far)  # a trial past z_far is not worth a query
        f_trial = torch.full_like(r.f, float("nan"))
        f_trial[tried] = self.query(trial[tried, None] * d[tried], level)
        back = ((f_trial.abs() - trial * e) / norm).clamp_min(0)
        ok = tried & ((r.alpha == 1) | ((f_trial > 0) & (safe + back >= r.alpha * safe)))
        bad = ~ok & ~beyond
        fallback = r.t[bad] + safe[bad]
        f_fallback = self.query(fallback[:, None] * d[bad], level)
        r.t, r.f = torch.where(ok, trial, r.t), torch.where(ok, f_trial, r.f)
        r.t[bad], r.f[bad] = fallback, f_fallback
        r.t[beyond], r.f[beyond] = r.t[beyond] + safe[beyond], float("inf")
        r.alpha[bad] = 1.0  # a ray whose aggressive step failed continues with safe steps
        r.exact[:] = True
        r.steps += 1

    def march(self, r: _Rays, level: int) -> _Rays:
        """March one level's rays until each hits, misses or (coarse) stalls; returns the stalled ones."""
        stalled = []
        while len(r.t):
            d, e = self.geometry(r)
            far = r.t > self.config.z_far
            if level == 0:
                done = r.exact & (r.f < self.footprint * r.t) & ~far
                out = r.steps >= self.config.max_steps
                self.record_hits(r.select(done))
                self.unfinished += int((out & ~done & ~far).sum())
                keep = ~(done | far | out)
            else:
                split = ((r.f < self.config.split_ratio * r.t * e) | (r.steps >= self.config.max_steps)) & ~far
                stalled.append(r.select(split))
                keep = ~(split | far)  # beyond z_far the whole cone is free: its pixels miss
            r, d, e = r.select(keep), d[keep], e[keep]
            if len(r.t):
                self.step(r, d, e, level)
        return _cat(stalled) if stalled else r

    def split(self, r: _Rays, level: int) -> _Rays:
        """The 2×2 children (blocks of 2^level pixels, fewer at the image edge) at their parent's
        depth. No query: a child's free radius there is at least the parent's |f| less the distance
        between the two points (1-Lipschitz), a lower bound its first step uses; the step measures f."""
        d_parent, _ = self.geometry(r)
        half = 1 << level
        parts = []
        for ox in (0, half):
            for oy in (0, half):
                x0, y0 = r.x0 + ox, r.y0 + oy
                k = (x0 < r.x1) & (y0 < r.y1)
                parts.append(_Rays(x0[k], torch.minimum(x0 + half, r.x1)[k], y0[k], torch.minimum(y0 + half, r.y1)[k],
                                   r.t[k], r.f[k].abs(), torch.zeros_like(r.steps[k]),
                                   torch.full_like(r.t[k], self.config.alpha), torch.zeros_like(r.exact[k])))
                parts[-1].f = parts[-1].f - r.t[k] * torch.linalg.vector_norm(
                    self.geometry(parts[-1])[0] - d_parent[k], dim=-1)
        child = _cat(parts)
        child.f = child.f.clamp_min(0)
        return child

    def start(self) -> _Rays:
        """The first level's rays at z_near, one per 2^L × 2^L block."""
        b = 1 << self.config.start_level
        ys, xs = torch.meshgrid(torch.arange(0, self.height, b, device=self.device),
                                torch.arange(0, self.width, b, device=self.device), indexing="ij")
        x0, y0 = xs.reshape(-1), ys.reshape(-1)
        r = _Rays(x0, (x0 + b).clamp_max(self.width), y0, (y0 + b).clamp_max(self.height),
                  torch.full(x0.shape, self.config.z_near, dtype=self.dtype, device=self.device),
                  torch.zeros(x0.shape, dtype=self.dtype, device=self.device), torch.zeros_like(x0),
                  torch.full(x0.shape, self.config.alpha, dtype=self.dtype, device=self.device),
                  torch.ones(x0.shape, dtype=torch.bool, device=self.device))
        d, _ = self.geometry(r)
        r.f = self.query(r.t[:, None] * d, self.config.start_level)
        return r


def _cat(parts: list[_Rays]) -> _Rays:
    return _Rays(*(torch.cat([getattr(p, k) for p in parts]) for k in _FIELDS))


def trace(field: Field, width: int, height: int, intrinsics: tuple[float, float, float, float],
          config: TraceConfig = TraceConfig(), *, device: str | torch.device = "cpu",
          dtype: torch.dtype = torch.float32) -> TraceResult:
    """Sphere-trace ``field`` through every pixel centre (module docstring for the schedule).

    Args:
        field: signed distance at (N, 3) camera-frame points, metres (:data:`Field`).
        width, height: image size in pixels; intrinsics: fx, fy, cx, cy in pixels (OpenCV).
        config: the schedule (``TraceConfig(start_level=0, alpha=1)`` is plain per-pixel tracing).
        device, dtype: where and in which precision rays are held and the field is queried.
    Returns:
        :class:`TraceResult` (depth, hit mask, query counts).
    """
    tracer = _Tracer(field, width, height, intrinsics, config, torch.device(device), dtype)
    with torch.no_grad():
        rays = tracer.start()
        for level in range(config.start_level, -1, -1):
            stalled = tracer.march(rays, level)
            if level:
                rays = tracer.split(stalled, level - 1)
    return TraceResult(tracer.depth, tracer.hit, sum(tracer.queries), tracer.queries, tracer.unfinished)


def footprint_epsilon(depth: float, intrinsics: tuple[float, float, float, float], eps_pixels: float = 0.5) -> float:
    """ε(t) of the stop test: ``eps_pixels`` pixel widths at z-depth ``depth`` (metres)."""
    return eps_pixels * depth / max(float(intrinsics[0]), float(intrinsics[1]))


def pixel_rays(width: int, height: int, intrinsics: tuple[float, float, float, float],
               dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(H, W, 3) directions through pixel centres with z = 1 (the tracer's rays, module docstring)."""
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=dtype) + 0.5, torch.arange(width, dtype=dtype) + 0.5,
                            indexing="ij")
    return torch.stack(((xs - cx) / fx, (ys - cy) / fy, torch.ones_like(xs)), dim=-1)
