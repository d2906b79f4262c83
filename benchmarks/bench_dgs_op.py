"""Speed of the DGS op vs ``grid_sample`` (CPU, or CUDA when asked and available).

Cases, all forward + backward to the features on the same shapes:
  dgs (fast kernel)          dgs_sample -> (B,Q,4,C), backward of a random (B,Q,4,C) gradient
  dgs (reference)            the pure-torch reference, same work
  grid_sample value          grid_sample -> (B,C,Q), backward (its natural use: value only)
  grid_sample double bwd     value + spatial gradient of one vector-Jacobian product by autograd
                             (create_graph) and the backward through both: the cost of the
                             "autograd" gradient mode
On CUDA also the achieved memory bandwidth of the DGS kernels vs the device's peak.

The two grid_sample cases are :func:`grid_sample_value` and :func:`grid_sample_value_and_uv_gradient`;
``tests/test_bench_references.py`` checks that they compute what the DGS op computes (its value and
its image-plane derivatives), so the ratios compare equal work.

Usage: python benchmarks/bench_dgs_op.py [--runs 10] [--threads 2] [--device cpu|cuda]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from dgs_core.ops import dgs_sample, dgs_sample_reference


def _timer(fn: Callable[[], None], runs: int, cuda: bool) -> list[float]:
    """Wall times in ms of ``runs`` calls after two warm-up calls (synchronising on CUDA)."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(runs):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def make_inputs(b: int, c: int, h: int, w: int, q: int, device: str = "cpu", seed: int = 0,
                dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    """Random benchmark inputs ``[features, points, intrinsics, uv, grad4]``.

    features (B, C, H, W); points (B, Q, 3) camera frame, metres, z in [1, 4]; intrinsics (B, 4)
    normalised, the virtual camera (SPEC §1); uv (B, Q, 2) the points' normalised image coordinates,
    uniform in [-1.05, 1.05] (a band outside the image included); grad4 (B, Q, 4, C) an upstream
    gradient of the op's output.
    """
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(b, c, h, w, generator=g, dtype=dtype)
    z = 1 + 3 * torch.rand(b, q, generator=g, dtype=dtype)
    uv = 2.1 * torch.rand(b, q, 2, generator=g, dtype=dtype) - 1.05
    intr = torch.tensor([[1.8, 2.4, 0.0, 0.0]], dtype=dtype).expand(b, 4).contiguous()
    pts = torch.cat([uv * z[..., None] / intr[:, None, :2], z[..., None]], -1)
    grad4 = torch.randn(b, q, 4, c, generator=g, dtype=dtype)
    return [t.to(device) for t in (feats, pts, intr, uv, grad4)]


def grid_sample_value(features: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """The baseline: ``F.grid_sample`` of ``features`` (B, C, H, W) at ``uv`` (B, Q, 2) normalised
    image coordinates (bilinear, border padding, align_corners=False, as the DGS op's value).

    Returns (B, C, Q, 1), differentiable w.r.t. ``features`` and ``uv`` by autograd.
    """
    return F.grid_sample(features, uv[:, :, None, :], mode="bilinear", padding_mode="border",
                         align_corners=False)


def grid_sample_value_and_uv_gradient(features: torch.Tensor, uv: torch.Tensor, weights: torch.Tensor
                                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """What the "autograd" gradient mode does: the value and, by ``torch.autograd.grad`` with
    ``create_graph=True``, the vector-Jacobian product of the value with ``weights`` w.r.t. ``uv``.

    features (B, C, H, W); uv (B, Q, 2) normalised; weights (B, C, Q, 1). Returns the value
    (B, C, Q, 1) and ``Σ_c weights_c · ∂value_c/∂(u, v)`` (B, Q, 2), both differentiable w.r.t.
    ``features`` (backward through them is grid_sample's double backward). ``uv`` is detached.
    """
    uv = uv.detach().requires_grad_(True)
    value = grid_sample_value(features, uv)
    (duv,) = torch.autograd.grad(value, uv, weights, create_graph=True)
    return value, duv


def _cases(feats, pts, intr, uv, grad4) -> dict[str, Callable[[], None]]:
    gval = grad4[..., 0, :].transpose(1, 2)[..., None].contiguous()  # (B, C, Q, 1)
    guv = torch.randn_like(uv)

    def dgs(fn):
        def run():
            f = feats.detach().requires_grad_(True)
            fn(f, pts, intr).backward(grad4)
        return run

    def gs_value():
        f = feats.detach().requires_grad_(True)
        grid_sample_value(f, uv).backward(gval)

    def gs_double():
        f = feats.detach().requires_grad_(True)
        val, duv = grid_sample_value_and_uv_gradient(f, uv, gval)
        ((val * gval).sum() + (duv * guv).sum()).backward()

    h, w = feats.shape[2:]
    return {"dgs fwd+bwd (fast kernel)": dgs(dgs_sample),
            "  of which forward (op only)": lambda: torch.ops.dgs.sample(feats, pts, intr, True),
            "  of which backward (op only)": lambda: torch.ops.dgs.sample_backward(grad4, pts, intr, h, w),
            "dgs fwd+bwd (reference)": dgs(dgs_sample_reference),
            "grid_sample fwd+bwd (value)": gs_value, "grid_sample double bwd (autograd mode)": gs_double}


def _peak_bandwidth_gbs(device: torch.device) -> float | None:
    """DRAM peak in GB/s from the CUDA device properties (2 transfers per memory clock), if exposed."""
    props = torch.cuda.get_device_properties(device)
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", None), getattr(props, "memory_bus_width", None)
    if not clock_khz or not bus_bits:
        return None
    return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9


def bandwidth(feats, pts, intr, grad4, runs: int, peak_override: float | None = None, cuda: bool = True) -> dict:
    """Achieved bandwidth of the DGS forward and backward ops alone (the minimum bytes each must move).

    Returns ``{"device", "peak_gbs", "peak_source", "forward": {...}, "backward": {...}}`` with ``ms``
    (median), ``gbs`` and ``fraction`` of the peak (None when the peak is unknown, e.g. on CPU).
    """
    es = feats.element_size()
    b, c, h, w = feats.shape
    q = pts.shape[1]
    fwd_bytes = 2 * b * c * h * w * es + b * q * 4 * c * es + pts.numel() * es  # layout copy, gather, write
    bwd_bytes = b * q * 4 * c * es + 2 * b * c * h * w * es + pts.numel() * es  # read grad, zero + write grad
    t_f = statistics.median(_timer(lambda: torch.ops.dgs.sample(feats, pts, intr, False), runs, cuda))
    t_b = statistics.median(_timer(lambda: torch.ops.dgs.sample_backward(grad4, pts, intr, h, w), runs, cuda))
    peak = peak_override or (_peak_bandwidth_gbs(feats.device) if cuda else None)
    source = "--peak-gbs" if peak_override else ("device properties" if peak else None)
    out = {"device": torch.cuda.get_device_name(feats.device) if cuda else "cpu", "peak_gbs": peak,
           "peak_source": source}
    for name, nbytes, t in (("forward", fwd_bytes, t_f), ("backward", bwd_bytes, t_b)):
        gbs = nbytes / (t * 1e-3) / 1e9
        out[name] = {"ms": t, "gbs": gbs, "fraction": None if peak is None else gbs / peak}
    return out


def _print_bandwidth(bw: dict) -> None:
    peak = bw["peak_gbs"]
    print(f"\nCUDA bandwidth ({bw['device']}, peak {'unknown' if peak is None else f'{peak:.0f} GB/s'}):")
    for name in ("forward", "backward"):
        r = bw[name]
        frac = "" if r["fraction"] is None else f"  ({100 * r['fraction']:.0f} % of peak)"
        print(f"  dgs {name:10s} {r['ms']:8.3f} ms  {r['gbs']:8.1f} GB/s{frac}")


def time_cases(inputs: list[torch.Tensor], runs: int, cuda: bool) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Wall times (ms) of every case on ``inputs`` (:func:`make_inputs`), and the cases that failed
    with the first line of their error (e.g. a double backward a torch build does not implement)."""
    results, failed = {}, {}
    for name, fn in _cases(*inputs).items():
        try:
            results[name] = _timer(fn, runs, cuda)
        except RuntimeError as exc:
            failed[name] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return results, failed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2, help="torch (and Numba) CPU threads")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--shape", type=int, nargs=5, default=[8, 256, 48, 64, 2560], metavar=("B", "C", "H", "W", "Q"))
    ap.add_argument("--peak-gbs", type=float, default=None, help="override the device's peak bandwidth (GB/s)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_dgs_op: --device cuda asked for, but torch.cuda.is_available() is False.")
    torch.set_num_threads(args.threads)
    b, c, h, w, q = args.shape
    inputs = make_inputs(b, c, h, w, q, args.device)
    cuda = args.device == "cuda"
    print(f"DGS op benchmark: B={b} C={c} H={h} W={w} Q={q}, float32, device={args.device}, "
          f"threads={torch.get_num_threads()}, torch {torch.__version__}, median/min of {args.runs} runs")
    results, failed = time_cases(inputs, args.runs, cuda)
    for name, msg in failed.items():
        print(f"  {name}: failed: {msg}")
    base = "grid_sample fwd+bwd (value)"
    print(f"\n{'case':42s} {'median ms':>10s} {'min ms':>10s} {'median / grid_sample':>22s}")
    for name, ts in results.items():
        ratio = statistics.median(ts) / statistics.median(results[base]) if base in results else float("nan")
        print(f"{name:42s} {statistics.median(ts):10.2f} {min(ts):10.2f} {ratio:22.2f}x")
    fast, dbl = "dgs fwd+bwd (fast kernel)", "grid_sample double bwd (autograd mode)"
    if fast in results and dbl in results:
        print(f"\ndgs fast / grid_sample double backward: "
              f"{statistics.median(results[fast]) / statistics.median(results[dbl]):.2f}x (median)")
    if cuda:
        feats, pts, intr, _, grad4 = inputs
        _print_bandwidth(bandwidth(feats, pts, intr, grad4, args.runs, args.peak_gbs))


if __name__ == "__main__":
    main()
