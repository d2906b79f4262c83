"""One prepared GPU check: the CUDA paths verified and timed in a single short run (≤ 5 min, one GPU).

    python benchmarks/gpu_check.py --out DIR               # on a machine with one CUDA GPU
    python benchmarks/gpu_check.py --cpu-smoke --out DIR   # the same code paths on CPU, tiny (CI runs it)

Parts, each in a fresh process with a time limit; a part that fails is recorded and the next runs:

  tests   ``pytest -m cuda`` on the test files holding ``cuda``-marked tests (Triton kernels vs the
          float64 reference, the 3-D op, every gradient mode vs autograd, AMP steps, resume): the
          outcome of each test. Without a GPU they are skipped, and recorded as skipped.
  op      bench_dgs_op's cases (DGS fwd+bwd vs grid_sample fwd+bwd and its double backward) on the
          finest feature map of a release batch, and the DGS kernels' bandwidth vs the device's peak.
  train   one training step per gradient mode (dgs_core.train.build + train_step, AMP as the
          experiment says) on a synthetic release-size batch: ms/step, gradient-term overhead over
          nograd, peak memory (CUDA allocator; peak RSS on CPU), loss.
  infer   the 128³ grid of one synthetic frame with the release model (random weights), dense and
          coarse to fine, float32 and bfloat16 autocast: seconds and network queries.

The model and the sizes come from the experiment: ``--config``/``--set`` as for ``dgs_core.train``
(default: the release, SPEC §3), so ``--config config/experiments/<x>.yaml`` checks another encoder.
``--cpu-smoke`` applies ``config/experiments/tiny.yaml`` and tiny sizes. Writes ``DIR/gpu_check.json``
and ``DIR/gpu_check.md`` after every part (a killed run leaves what it had) and the tests' output in
``DIR/cuda_tests.log``; exits 0 when every part that ran is ok. docs/gpu_check.md explains the output.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import torch

if __package__:  # python -m benchmarks.gpu_check, or imported by a test
    from . import bench_dgs_op, bench_train_step, common
    from . import gpu_check_report as report
else:  # python benchmarks/gpu_check.py: this folder is sys.path[0]
    import bench_dgs_op
    import bench_train_step
    import common
    import gpu_check_report as report

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("tests", "op", "train", "infer")
TIME_LIMIT_S = {"tests": 120, "op": 45, "train": 90, "infer": 45}
"""Seconds each part may take on the GPU (300 in all); --cpu-smoke allows 300 s per part."""
SMOKE_CONFIG = [str(ROOT / "config" / "experiments" / "tiny.yaml")]
SMOKE_SETS = ["optim.batch_size=2", "data.near_points=64", "data.non_points=16"]
BOX = ((-2.0, -1.5, 0.5), (2.0, 1.5, 5.0))
"""The synthetic frame's grid box (camera frame, metres): a room seen from inside."""


@dataclasses.dataclass
class Sizes:
    """How large and how often each part measures (``for_args`` derives them)."""

    device: str
    image: tuple[int, int]                # encoder input (H, W) of training and inference
    op_shape: tuple[int, int, int, int, int]  # B, C, H, W, Q of the op part
    runs: int                             # timed calls per op case
    warmup: int                           # untimed training steps per mode
    steps: int                            # timed training steps per mode
    resolution: int | None                # inference grid cells per axis (None: the evaluation's, 128)
    repeats: int                          # timed grids per inference variant


def load_experiment_for(args: argparse.Namespace):
    """The experiment of the check: the release defaults, ``--config`` files, ``--set`` overrides
    (``--cpu-smoke`` puts tiny.yaml and small point counts first)."""
    from dgs_core.experiment import load_experiment

    files = (SMOKE_CONFIG if args.cpu_smoke else []) + list(args.config)
    sets = (SMOKE_SETS if args.cpu_smoke else []) + list(args.sets)
    return load_experiment(files, sets)


def for_args(args: argparse.Namespace, exp) -> Sizes:
    """GPU: the release frame (the prepare stage's virtual camera) and batch; the op on the finest
    map (stride 2) with every training point; the evaluation grid (128³, resolved by the infer part,
    so that the other parts do not import the inference stack). CPU smoke: 48×64, 16³, one repeat."""
    from pipeline.prepare_config import PrepareConfig

    cam = PrepareConfig()
    h, w = (48, 64) if args.cpu_smoke else (cam.height, cam.width)
    shape = (exp.optim.batch_size, exp.model.encoder.out_channels[0], h // 2, w // 2,
             exp.data.near_points + exp.data.non_points)
    if args.cpu_smoke:
        return Sizes("cpu", (h, w), shape, runs=1, warmup=1, steps=1, resolution=16, repeats=1)
    return Sizes("cuda", (h, w), shape, runs=10, warmup=2, steps=3, resolution=None, repeats=2)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    else:
        common.reset_peak_rss()


def _peak_mib(device: str) -> float:
    """Peak since :func:`_reset_peak`: CUDA allocator bytes, or the process's peak RSS on CPU."""
    return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else common.peak_rss_kib() / 1024


def _model_summary(config) -> dict:
    """Parameter count and configuration of the model ``config`` (built on the meta device: no memory)."""
    from dgs_core.experiment import to_dict
    from dgs_core.model import DGSNet

    with torch.device("meta"):
        net = DGSNet(config)
    return {"parameters": sum(p.numel() for p in net.parameters()), "config": to_dict(config)}


# ------------------------------------------------------------------------------------------ parts
def op_part(args: argparse.Namespace, exp, sizes: Sizes) -> dict:
    """bench_dgs_op's cases and the DGS kernels' bandwidth at ``sizes.op_shape`` (float32)."""
    inputs = bench_dgs_op.make_inputs(*sizes.op_shape, device=sizes.device)
    cuda = sizes.device == "cuda"
    times, failed = bench_dgs_op.time_cases(inputs, sizes.runs, cuda)
    feats, pts, intr, _, grad4 = inputs
    return {"shape": dict(zip("BCHWQ", sizes.op_shape)), "runs": sizes.runs,
            "cases": {name: {"median_ms": statistics.median(t), "min_ms": min(t)} for name, t in times.items()},
            "failed": failed, "bandwidth": bench_dgs_op.bandwidth(feats, pts, intr, grad4, sizes.runs,
                                                                  args.peak_gbs, cuda)}


def _train_mode(exp, mode: str, sizes: Sizes, batch) -> dict:
    """Build the seeded model for ``mode`` and time ``sizes.steps`` steps after ``sizes.warmup``
    (the peak counts from before the build: weights, Adam state, activations; a failed mode's
    memory is released by the next mode's reset)."""
    from dgs_core.distributed import Rank, amp_dtype
    from dgs_core.train import build, train_step

    device = torch.device(sizes.device)
    mode_exp = dataclasses.replace(exp, loss=bench_train_step.loss_config(mode, exp.loss))
    _reset_peak(sizes.device)
    net, module, opt, scaler = build(mode_exp, device, Rank())
    amp = amp_dtype(exp.optim.amp, device)
    times, out = [], {}
    for i in range(sizes.warmup + sizes.steps):
        _sync(sizes.device)
        start = time.perf_counter()
        out = train_step(module, opt, scaler, batch, mode_exp, amp)
        _sync(sizes.device)
        if i >= sizes.warmup:
            times.append(1e3 * (time.perf_counter() - start))
    return {"median_ms": statistics.median(times), "min_ms": min(times), "peak_mib": _peak_mib(sizes.device),
            "loss": out["loss"], "grad_norm": out["grad_norm"], "amp": str(amp).replace("torch.", "")}


def train_part(args: argparse.Namespace, exp, sizes: Sizes) -> dict:
    """One training step per gradient mode on one synthetic batch; a mode that fails is recorded."""
    from dgs_core.data import to_device

    b, (h, w) = exp.optim.batch_size, sizes.image
    batch = to_device(bench_train_step.synthetic_batch(b, h, w, exp.data.near_points, exp.data.non_points),
                      sizes.device, exp.model.input_norm)
    modes = {}
    for mode in args.modes:
        try:
            modes[mode] = _train_mode(exp, mode, sizes, batch)
        except Exception as exc:  # an unsupported op or out of memory in one mode must not end the part
            modes[mode] = {"error": f"{type(exc).__name__}: {next(iter(str(exc).strip().splitlines()), '')}"}
    return {"batch": b, "image": [h, w], "points": [exp.data.near_points, exp.data.non_points],
            "warmup": sizes.warmup, "steps": sizes.steps, "model": _model_summary(exp.model), "modes": modes}


def synthetic_frame(image: tuple[int, int]) -> tuple:
    """A seeded random uint8 (3, H, W) image, pixel intrinsics (fx, fy, cx, cy) of the virtual camera
    scaled to its width (SPEC §1), and :data:`BOX`."""
    import numpy as np

    from pipeline.prepare_config import PrepareConfig

    cam = PrepareConfig()
    h, w = image
    focal = cam.focal * w / cam.width
    pixels = np.random.default_rng(0).integers(0, 256, (3, h, w), dtype=np.uint8)
    return pixels, np.array([focal, focal, w / 2, h / 2]), np.array(BOX[0]), np.array(BOX[1])


def infer_part(args: argparse.Namespace, exp, sizes: Sizes) -> dict:
    """The evaluation grid of one frame: dense and coarse to fine, float32 and bf16 autocast."""
    from dgs_core.grid_refine import RefineStats
    from dgs_core.infer import GRIDS, RESOLUTION, predict_grid
    from dgs_core.model import DGSNet

    torch.manual_seed(0)
    net = DGSNet(exp.model).to(sizes.device).eval()
    frame = synthetic_frame(sizes.image)
    run = dict(resolution=sizes.resolution or RESOLUTION, device=sizes.device)
    predict_grid(net, *frame, grid="dense", **run)  # warm-up: allocator, kernels
    variants = []
    for amp in (False, True):
        for grid in GRIDS:
            stats, times = RefineStats(), []
            _reset_peak(sizes.device)
            for _ in range(sizes.repeats):
                _sync(sizes.device)
                start = time.perf_counter()
                predict_grid(net, *frame, grid=grid, amp=amp, stats=stats, **run)
                _sync(sizes.device)
                times.append(time.perf_counter() - start)
            variants.append({"grid": grid, "amp": amp, "min_s": min(times), "median_s": statistics.median(times),
                             "peak_mib": _peak_mib(sizes.device), **dataclasses.asdict(stats)})
    return {"resolution": run["resolution"], "image": list(sizes.image), "weights": "random (seed 0)",
            "model": _model_summary(exp.model), "repeats": sizes.repeats, "variants": variants}


def cuda_test_files() -> list[str]:
    """The test files (relative to the repository) that mark tests ``pytest.mark.cuda``."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                  if "pytest.mark.cuda" in p.read_text())


def tests_part(out: Path, env: dict[str, str], timeout: float) -> dict:
    """``pytest -m cuda`` on :func:`cuda_test_files` (collecting only those: the rest of the suite
    needs packages a GPU image may lack); each test's outcome."""
    files = cuda_test_files()
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-m", "cuda", "-p", "no:cacheprovider", "--tb=short",
               "--continue-on-collection-errors", f"--junitxml={junit}", *files]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        log = proc.stdout + proc.stderr
        tests = _junit_outcomes(junit) if junit.exists() else []
    from pipeline.atomic import write_text_atomic

    write_text_atomic(out / "cuda_tests.log", log)
    counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failed", "error", "skipped")}
    if not tests:
        raise RuntimeError(f"pytest collected no cuda test (exit {proc.returncode}): {log[-1500:]}")
    return {"files": files, "exit_code": proc.returncode, "counts": counts, "tests": tests,
            "status": "ok" if proc.returncode == 0 else "failed"}


def _junit_outcomes(path: Path) -> list[dict]:
    """(id, outcome, message, seconds) of every test case of a pytest JUnit XML report."""
    found = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            node = case.find(tag)
            if node is not None:
                lines = (node.get("message") or "").strip().splitlines()
                outcome, message = name, (lines[0] if lines else "")
                break
        found.append({"id": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome,
                      "message": message[:300], "seconds": float(case.get("time") or 0)})
    return found


WORKERS = {"op": op_part, "train": train_part, "infer": infer_part}


# ---------------------------------------------------------------------------------- orchestration
def environment(cpu_smoke: bool) -> dict:
    """When, where and with what the check ran."""
    from importlib import metadata

    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "mode": "cpu-smoke" if cpu_smoke else "gpu", "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "cpus": os.cpu_count()}
    try:
        info["triton"] = metadata.version("triton")
    except metadata.PackageNotFoundError:
        info["triton"] = None
    try:
        from dgs_core.checkpoint import code_version
        info["code_version"] = code_version()
    except ImportError as exc:  # the parts will report the missing package too
        info["code_version"] = f"unknown ({exc})"
    if cpu_smoke:
        info["device"] = f"CPU ({platform.machine()}, {torch.get_num_threads()} torch threads)"
    else:
        props = torch.cuda.get_device_properties(0)
        info["device"], info["device_memory_gib"] = props.name, round(props.total_memory / 2**30, 1)
    return info


def run_part(part: str, argv: list[str], out: Path, cpu_smoke: bool) -> dict:
    """Run one part in its own process within its time limit; any failure becomes the part's record."""
    limit = 300 if cpu_smoke else TIME_LIMIT_S[part]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    try:
        if part == "tests":
            result = tests_part(out, env, limit)
        else:
            result = {"status": "ok", **common.run_worker(__file__, [*argv, "--worker", part], env=env, timeout=limit)}
    except subprocess.TimeoutExpired:
        result = {"status": "timeout", "error": f"stopped at the part's time limit of {limit} s"}
    except Exception as exc:  # recorded, and the next part runs
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[-3000:]}
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python benchmarks/gpu_check.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json, gpu_check.md, cuda_tests.log")
    ap.add_argument("--cpu-smoke", action="store_true", help="run every part on CPU at a tiny size (CI)")
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), metavar="PART",
                    help=f"run only these parts ({', '.join(PARTS)}); the others are recorded as not run")
    ap.add_argument("--skip-tests", action="store_true", help="leave out the tests part")
    ap.add_argument("--config", nargs="+", default=[], metavar="YAML",
                    help="experiment files over the release defaults: the model (encoder), batch, points, AMP")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="sets",
                    help="experiment overrides, e.g. model.d_hidden=256 optim.amp=fp16")
    ap.add_argument("--modes", nargs="+", default=list(bench_train_step.MODES), choices=bench_train_step.MODES,
                    help="gradient modes of the train part")
    ap.add_argument("--peak-gbs", type=float, default=None, help="the device's peak memory bandwidth (GB/s), "
                    "when its properties do not give it or give another figure than the datasheet")
    ap.add_argument("--worker", choices=tuple(WORKERS), help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.worker:  # inside a part's own process: measure, print the record as the last line
        exp = load_experiment_for(args)
        print(json.dumps(WORKERS[args.worker](args, exp, for_args(args, exp))))
        return 0
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible (torch.cuda.is_available() is False). On a machine "
              "without a GPU run it with --cpu-smoke.", file=sys.stderr)
        return 2
    parts = [p for p in args.only if not (args.skip_tests and p == "tests")]
    args.out.mkdir(parents=True, exist_ok=True)
    data = {"meta": {**environment(args.cpu_smoke), "command": " ".join(["python benchmarks/gpu_check.py", *argv])},
            "parts": {p: {"status": "not run"} for p in PARTS}}
    report.write(args.out, data)
    for part in parts:
        print(f"gpu_check: {part} ...", file=sys.stderr, flush=True)
        data["parts"][part] = run_part(part, argv, args.out, args.cpu_smoke)
        print(f"gpu_check: {part}: {data['parts'][part]['status']} ({data['parts'][part]['seconds']} s)",
              file=sys.stderr, flush=True)
        report.write(args.out, data)
    print(report.markdown(data))
    return 0 if all(data["parts"][p]["status"] == "ok" for p in parts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
