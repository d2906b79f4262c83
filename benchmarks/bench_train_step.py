"""Training-step benchmark of the gradient modes: ms/step, peak memory, gradient-term overhead.

Release shapes scaled to CPU: batch 8, 2048 near-surface + 512 non-surface points per image, five
feature maps of C=64 (strides 2…32), a 5-block × 128 decoder, 2 torch threads. The encoder input is
96×128 by default (finest map 48×64, the op benchmark's shape), not 192×256: at full resolution the
CPU encoder alone takes ~0.7–0.9 s per step here and buries the gradient term in noise
(``--height 192 --width 256`` runs the full size). One
step = encode + Eq. 1 loss (BCE + λ·gradient term + depth L1) + backward + Adam update. Each mode runs
two steps in a fresh subprocess so that its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
is its own; the table also gives the peak above the RSS measured just before the first step. Times
come from one process that runs the modes round-robin (robust to load from other users of a shared
machine) and report the minimum over the timed rounds after warm-up. The gradient-term overhead of a mode is its step time minus the
``nograd`` step time. The reference the ``dgs`` modes are compared with is ``autograd``
(``grid_sample`` + double backward); :func:`gradient_agreement` prints how closely their parameter
gradients agree, and ``tests/test_bench_references.py`` checks it at a tiny size.

    python benchmarks/bench_train_step.py [--modes nograd dgs autograd numerical dgs_forward] [--steps 5]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
from tqdm import tqdm

if __package__:  # python -m benchmarks.bench_train_step, or imported by a test
    from . import common
else:  # python benchmarks/bench_train_step.py: this folder is sys.path[0]
    import common

MODES = ("nograd", "dgs", "autograd", "numerical", "dgs_forward", "dgs_storeJ")


def loss_config(mode: str, base=None):
    """The :class:`~dgs_core.losses.LossConfig` of a benchmark mode: ``base`` (default: the release
    loss) with its gradient mode set; ``dgs_storeJ`` is ``dgs`` keeping the op's Jacobian for backward
    (``LossConfig.dgs_store_jacobian``)."""
    import dataclasses

    from dgs_core.losses import LossConfig

    base = base if base is not None else LossConfig()
    if mode == "dgs_storeJ":
        return dataclasses.replace(base, gradient_mode="dgs", dgs_store_jacobian=True)
    return dataclasses.replace(base, gradient_mode=mode, dgs_store_jacobian=False)


def synthetic_batch(batch: int, height: int, width: int, near: int, far: int, seed: int = 0):
    """A deterministic random :class:`~dgs_core.data.Batch` with the training shapes (CPU, float32).

    images (B, 3, H, W) normalised-like noise; intrinsics (B, 4) normalised, the virtual camera's
    (SPEC §1); near_points (B, near, 3) and far_points (B, far, 3) camera frame, metres, z in [1, 4],
    inside the image (|u|, |v| < 1); near_labels (B, near) in {0, 1}; depth (B, H, W) metres in [1, 4].
    """
    from dgs_core.losses import Batch

    gen = torch.Generator().manual_seed(seed)

    def pts(q: int) -> torch.Tensor:
        z = 1 + 3 * torch.rand(batch, q, 1, generator=gen)
        xy = (torch.rand(batch, q, 2, generator=gen) * 2 - 1) * z * torch.tensor([1 / 1.8, 1 / 2.4])
        return torch.cat((xy, z), dim=-1)

    return Batch(images=torch.randn(batch, 3, height, width, generator=gen),
                 intrinsics=torch.tensor([[1.8, 2.4, 0.0, 0.0]] * batch), near_points=pts(near),
                 near_labels=(torch.rand(batch, near, generator=gen) > 0.5).float(), far_points=pts(far),
                 depth=1 + 3 * torch.rand(batch, height, width, generator=gen))


def _rss_mib() -> float:
    """Peak RSS of this process so far, MiB."""
    return common.peak_rss_kib() / 1024.0


def _op_implementation() -> str:
    try:
        from dgs_core.ops import registry
    except ImportError:
        return "unknown"
    return (registry.__doc__ or "").strip().splitlines()[0][:100]


def _setup(args: argparse.Namespace):
    """Model, optimiser and one synthetic batch with the benchmark shapes (deterministic from the seed)."""
    from dgs_core.model.encoder import EncoderConfig
    from dgs_core.model.net import DGSNet, ModelConfig

    torch.set_num_threads(args.threads)
    try:  # the CPU op kernels are Numba: same thread budget as torch
        import numba
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass
    try:  # JIT-compile the op now, so compilation is not counted as a mode's step memory or time
        from dgs_core.ops import dgs_sample
        f = torch.zeros(1, 1, 2, 2, requires_grad=True)
        dgs_sample(f, torch.ones(1, 1, 3), torch.ones(1, 4)).sum().backward()
    except ImportError:
        pass
    torch.manual_seed(args.seed)
    enc = EncoderConfig(kind="resnet", widths=tuple(args.widths), blocks=(1, 1, 1, 1), out_channels=(args.channels,) * 5)
    net = DGSNet(ModelConfig(encoder=enc, d_hidden=args.hidden, n_blocks=5, zero_init=False))
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    return net, opt, synthetic_batch(args.batch, args.height, args.width, args.near, args.far, args.seed)


def _step(net, opt, batch, mode: str) -> float:
    """One full training step; returns its wall time in seconds."""
    from dgs_core.losses import training_loss

    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss, _ = training_loss(net, batch, loss_config(mode))
    loss.backward()
    opt.step()
    return time.perf_counter() - t0


def memory_worker(args: argparse.Namespace) -> dict:
    """Peak RSS of training steps in one mode (run in a fresh process)."""
    net, opt, batch = _setup(args)
    rss0 = _rss_mib()
    for _ in range(2):
        _step(net, opt, batch, args.worker)
    return {"peak_mib": _rss_mib(), "peak_above_start_mib": _rss_mib() - rss0}


def gradient_agreement(args: argparse.Namespace, modes: tuple[str, ...] = ("dgs", "dgs_storeJ", "dgs_forward", "numerical")
                       ) -> dict[str, float]:
    """Max |Δ grad| / max |grad| over all parameters of each mode vs the reference, ``autograd``, at
    the shapes of ``args`` (see :func:`build_parser`; float32, same weights and batch, no optimiser
    step). Only the modes also listed in ``args.modes`` are compared."""
    from dgs_core.losses import training_loss

    net, _, batch = _setup(args)

    def grads(mode: str) -> torch.Tensor:
        net.zero_grad(set_to_none=True)
        training_loss(net, batch, loss_config(mode))[0].backward()
        return torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])

    ref = grads("autograd")
    return {m: float((grads(m) - ref).abs().max() / ref.abs().max()) for m in modes if m in args.modes}


def time_modes(args: argparse.Namespace) -> dict[str, list[float]]:
    """Round-robin over the modes (one step each per round) so that load from other processes on a
    shared machine hits every mode alike; returns the timed steps (s) per mode."""
    net, opt, batch = _setup(args)
    times: dict[str, list[float]] = {m: [] for m in args.modes}
    for r in tqdm(range(args.warmup + args.steps), desc="rounds", disable=None):
        for mode in args.modes:
            t = _step(net, opt, batch, mode)
            if r >= args.warmup:
                times[mode].append(t)
    return times


def build_parser() -> argparse.ArgumentParser:
    """The command line; ``build_parser().parse_args([...])`` also gives the shapes for
    :func:`gradient_agreement` and :func:`time_modes` when called from Python."""
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
    return ap


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.worker:
        print(json.dumps(memory_worker(args)))
        return
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    if "--modes" in passthrough:  # the memory worker gets one mode, not the list
        i = passthrough.index("--modes")
        j = i + 1
        while j < len(passthrough) and not passthrough[j].startswith("--"):
            j += 1
        passthrough = passthrough[:i] + passthrough[j:]
    print(f"torch {torch.__version__}, {args.threads} threads; batch {args.batch}, {args.near}+{args.far} points, "
          f"5 maps × C={args.channels}, decoder 5×{args.hidden}, image {args.height}×{args.width}, encoder widths "
          f"{args.widths}; min of {args.steps} round-robin steps after {args.warmup} warm-up")
    print(f"dgs_sample implementation: {_op_implementation()}")
    mem = {}
    for mode in args.modes:
        # glibc returns mmap'ed blocks ≥ 128 KiB to the OS on free, so RSS follows live memory and the
        # peak is reproducible to ~1 MiB (with the default heap it scattered by ±40 MiB between runs).
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
        mem[mode] = common.run_worker(__file__, [*passthrough, "--worker", mode], env=env)
    for mode, err in gradient_agreement(args).items():
        print(f"parameter gradients {mode} vs autograd (float32): max |diff| / max |grad| = {err:.1e}")
    times = time_modes(args)
    ms = {m: 1e3 * min(t) for m, t in times.items()}
    base = ms.get("nograd")
    print(f"{'mode':<12}{'ms/step':>10}{'median':>10}{'overhead':>10}{'peak MiB':>10}{'+MiB':>8}")
    for mode in args.modes:
        med = 1e3 * sorted(times[mode])[len(times[mode]) // 2]
        ov = f"{ms[mode] - base:10.1f}" if base is not None else f"{'-':>10}"
        print(f"{mode:<12}{ms[mode]:10.1f}{med:10.1f}{ov}{mem[mode]['peak_mib']:10.0f}"
              f"{mem[mode]['peak_above_start_mib']:8.0f}")
    if base is not None and "dgs" in ms and "autograd" in ms:
        ratio = (ms["dgs"] - base) / (ms["autograd"] - base)
        print(f"dgs overhead / autograd overhead = {ratio:.2f} (goal ≤ 1.0, stretch ≤ 0.8)")


if __name__ == "__main__":
    main()
