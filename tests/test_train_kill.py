"""SIGKILL robustness of the CLI: kill -9 a training run after its first checkpoint, rerun the same
command (--resume auto, as a rerun Snakemake job does) and get the uninterrupted run's losses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dgs_core.train_log import read_scalars
from test_train import FAST, TINY, losses, run

STEPS = 12


def _cli(prepared, out: Path) -> list[str]:
    return [sys.executable, "-m", "dgs_core.train", "--config", *map(str, TINY),
            "--train-manifest", str(prepared.manifest("scannet", "train")),
            "--val-manifest", str(prepared.manifest("scannet", "val")), "--out", str(out), "--device", "cpu",
            "--threads", "1", "--set", *FAST, f"optim.iterations={STEPS}", "checkpoint.every=4"]


@pytest.mark.slow
def test_sigkill_then_rerun_matches_the_uninterrupted_run(prepared_tiny, tmp_path: Path) -> None:
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(_cli(prepared_tiny, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = killed / "checkpoints" / "step_0000004.pt"
    deadline = time.monotonic() + 120
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists(), proc.stderr.read().decode()[-2000:]
    assert not (killed / "final.pt").exists()  # killed before the end: nothing looks finished
    rerun = subprocess.run(_cli(prepared_tiny, killed), env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    torch.set_num_threads(1)  # as the CLI's --threads 1: float sums depend on the thread count
    run(prepared_tiny, straight, f"optim.iterations={STEPS}", "checkpoint.every=4")
    assert losses(killed) == losses(straight)
    val = read_scalars(killed / "scalars.csv")
    assert list(val[val.tag == "val/loss"].step) == [4, 8, 12]
