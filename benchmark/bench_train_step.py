"""Training-step benchmark of the gradient modes (issue 3): ms/step, peak memory, gradient-term overhead.

Release shapes scaled to CPU: batch 8, 2048 near-surface + 512 non-surface points per image, five
feature maps of C=64 (strides 2…32), a 5-block × 128 decoder, 2 torch threads. The encoder input is
96×128 by default (finest map 48×64, the op benchmark's shape), not 192×256: at full resolution the
CPU encoder alone takes ~0.7–0.9 s per step here and buries the gradient term in noise
(``--height 192 --width 256`` runs the full size). One
step = encode + Eq. 1 loss (BCE + λ·gradient term + depth L1) + backward + Adam update. Each mode runs
in a fresh subprocess so that its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own;
the table also gives the peak above the RSS measured just before the first step. Time is the minimum
over the timed steps after warm-up. The gradient-term overhead of a mode is its step time minus the
``nograd`` step time.

    python -m benchmark.bench_train_step [--modes nograd dgs autograd numerical dgs_forward] [--steps 5]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

MODES = ("nograd", "dgs", "autograd", "numerical", "dgs_forward")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _op_implementation() -> str:
    try:
        from dgs_core.ops import registry
    except ImportError:
        return "unknown"
    return (registry.__doc__ or "").strip().splitlines()[0][:100]


def worker(args: argparse.Namespace) -> dict:
    """Time one mode in this process; returns the measurements as a dict."""
    from dgs_core.losses import Batch, LossConfig, training_loss
    from dgs_core.model.encoder import EncoderConfig
    from dgs_core.model.net import DGSNet, ModelConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    enc = EncoderConfig(widths=tuple(args.widths), blocks=(1, 1, 1, 1), out_channels=(args.channels,) * 5)
    net = DGSNet(ModelConfig(encoder=enc, d_hidden=args.hidden, n_blocks=5, zero_init=False))
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    b, h, w = args.batch, args.height, args.width

    def pts(q: int) -> torch.Tensor:
        z = 1 + 3 * torch.rand(b, q, 1, generator=gen)
        xy = (torch.rand(b, q, 2, generator=gen) * 2 - 1) * z * torch.tensor([1 / 1.8, 1 / 2.4])
        return torch.cat((xy, z), dim=-1)

    batch = Batch(images=torch.randn(b, 3, h, w, generator=gen), intrinsics=torch.tensor([[1.8, 2.4, 0.0, 0.0]] * b),
                  near_points=pts(args.near), near_labels=(torch.rand(b, args.near, generator=gen) > 0.5).float(),
                  far_points=pts(args.far), depth=1 + 3 * torch.rand(b, h, w, generator=gen))
    cfg = LossConfig(gradient_mode=args.worker)
    rss0, times = _rss_mib(), []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = training_loss(net, batch, cfg)
        loss.backward()
        opt.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    return {"mode": args.worker, "ms": 1e3 * min(times), "median_ms": 1e3 * sorted(times)[len(times) // 2],
            "peak_mib": _rss_mib(), "peak_above_start_mib": _rss_mib() - rss0, "loss": float(loss)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--near", type=int, default=2048)
    ap.add_argument("--far", type=int, default=512)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--widths", type=int, nargs=5, default=[16, 16, 32, 64, 128],
                    help="encoder stem + stage widths (small by default so the decoder/gradient term is visible)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    if "--modes" in passthrough:  # the worker gets one mode, not the list
        i = passthrough.index("--modes")
        j = i + 1
        while j < len(passthrough) and not passthrough[j].startswith("--"):
            j += 1
        passthrough = passthrough[:i] + passthrough[j:]
    print(f"torch {torch.__version__}, {args.threads} threads; batch {args.batch}, {args.near}+{args.far} points, "
          f"5 maps × C={args.channels}, decoder 5×{args.hidden}, image {args.height}×{args.width}, encoder widths "
          f"{args.widths}; min of {args.steps} steps after {args.warmup} warm-up")
    print(f"dgs_sample implementation: {_op_implementation()}")
    rows = {}
    for mode in args.modes:
        out = subprocess.run([sys.executable, "-m", "benchmark.bench_train_step", *passthrough, "--worker", mode],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"bench_train_step: worker for mode {mode!r} failed:\n{out.stderr[-2000:]}")
        rows[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    base = rows.get("nograd", {}).get("ms")
    print(f"{'mode':<12}{'ms/step':>10}{'median':>10}{'overhead':>10}{'peak MiB':>10}{'+MiB':>8}")
    for mode, r in rows.items():
        ov = f"{r['ms'] - base:10.1f}" if base is not None else f"{'-':>10}"
        print(f"{mode:<12}{r['ms']:10.1f}{r['median_ms']:10.1f}{ov}{r['peak_mib']:10.0f}{r['peak_above_start_mib']:8.0f}")
    if base is not None and "dgs" in rows and "autograd" in rows:
        ratio = (rows["dgs"]["ms"] - base) / (rows["autograd"]["ms"] - base)
        print(f"dgs overhead / autograd overhead = {ratio:.2f} (goal ≤ 1.0, stretch ≤ 0.8)")


if __name__ == "__main__":
    main()
