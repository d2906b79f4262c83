"""benchmark.sdf_study: validation accuracy against wall time, on hand-made run logs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.sdf_study import main
from pipeline.errors import run_main


def write_run(runs: Path, name: str, accuracies: list[float], samples_per_s: float, batch: int = 4,
              every: int = 10) -> None:
    """A run of len(accuracies)·every steps, validated every ``every`` steps (accuracy as a fraction)."""
    run = runs / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"optim:\n  batch_size: {batch}\n")
    steps = every * len(accuracies)
    rows = [(s, tag, v) for s in range(1, steps + 1) for tag, v in (("train/loss", 1 / s),
                                                                    ("train/samples_per_s", samples_per_s))]
    rows += [(every * (i + 1), "val/accuracy", a) for i, a in enumerate(accuracies)]
    pd.DataFrame(rows, columns=["step", "tag", "value"]).to_csv(run / "scalars.csv", index=False)


def test_accuracy_at_budgets_time_to_target_and_spread(tmp_path: Path) -> None:
    runs = tmp_path / "models"
    # baseline: 40 steps of batch 4 at 2 samples/s = 2 s/step, validations at 20, 40, 60, 80 s
    write_run(runs, "dgs-s0", [0.5, 0.6, 0.7, 0.8], 2.0)
    write_run(runs, "dgs-s1", [0.5, 0.6, 0.7, 0.6], 2.0)
    # twice as fast per step (1 s), learns faster per step too: reaches the target (70 %) at 10 s and 20 s
    write_run(runs, "sdf-s0", [0.7, 0.9, 0.9, 0.9], 4.0)
    write_run(runs, "sdf-s1", [0.6, 0.8, 0.85, 0.9], 4.0)
    names = ["dgs-s0", "dgs-s1", "sdf-s0", "sdf-s1"]
    out = tmp_path / "out"
    assert run_main(main, ["--runs", str(runs), "--names", *names, "--baseline", "dgs", "--out", str(out)]) == 0
    table = pd.read_csv(out / "sdf_study.csv", index_col=0)
    assert list(table.index) == ["sdf", "dgs"]  # best final accuracy first
    assert table.loc["dgs", "seconds_mean"] == pytest.approx(80.0)
    assert table.loc["dgs", "final_mean"] == pytest.approx(70.0) and table.loc["dgs", "final_std"] == pytest.approx(
        np.std([80, 60], ddof=1))
    assert table.loc["dgs", "at_25_mean"] == pytest.approx(50.0)   # budget 80 s: at 20 s the first validation
    assert table.loc["sdf", "at_25_mean"] == pytest.approx(85.0)   # at 20 s: its second validations 0.9, 0.8
    assert table.loc["sdf", "at_100_mean"] == pytest.approx(90.0)  # past its own 20 s: its last validation
    assert table.loc["dgs", "to_target_mean"] == pytest.approx(60.0) and table.loc["dgs", "reached"] == 2
    assert table.loc["sdf", "to_target_mean"] == pytest.approx((10 + 20) / 2)
    assert table.loc["sdf", "step_seconds_mean"] == pytest.approx(1.0)
    text = (out / "sdf_study.md").read_text()
    assert "val acc. at 20 s [%]" in text and "s to 70.0 %" in text and "(2/2)" in text and "never" not in text
    assert (out / "val_curves.png").stat().st_size > 0


def test_missing_baseline_or_log_is_a_clear_error(tmp_path: Path, capsys) -> None:
    write_run(tmp_path, "sdf-s0", [0.5], 1.0)
    assert run_main(main, ["--runs", str(tmp_path), "--names", "sdf-s0", "--baseline", "dgs", "--out", str(tmp_path / "o")]) == 2
    assert "baseline experiment 'dgs'" in capsys.readouterr().err
    assert run_main(main, ["--runs", str(tmp_path), "--names", "nope-s0", "--baseline", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "scalars.csv" in capsys.readouterr().err


def test_step_seconds_from_a_round_robin_timing_replace_each_runs_own(tmp_path: Path) -> None:
    """Two runs of one experiment that ran under different loads (2 and 4 s/step by their own logs)
    get the same wall-time axis from the measured step time."""
    import json

    runs = tmp_path / "models"
    write_run(runs, "dgs-s0", [0.5, 0.6], 2.0)   # 2 s/step
    write_run(runs, "dgs-s1", [0.5, 0.7], 1.0)   # 4 s/step: a busier machine
    times = tmp_path / "steps.json"
    times.write_text(json.dumps({"dgs": 0.5}))
    out = tmp_path / "out"
    assert run_main(main, ["--runs", str(runs), "--names", "dgs-s0", "dgs-s1", "--baseline", "dgs", "--out", str(out),
                 "--step-seconds", str(times)]) == 0
    table = pd.read_csv(out / "sdf_study.csv", index_col=0)
    assert table.loc["dgs", "seconds_mean"] == pytest.approx(10.0) and table.loc["dgs", "seconds_std"] == 0
    assert "never (0/2)" not in (out / "sdf_study.md").read_text()
    write_run(runs, "slow-s0", [0.1, 0.2], 1.0)  # never reaches the baseline's final accuracy
    assert run_main(main, ["--runs", str(runs), "--names", "dgs-s0", "dgs-s1", "slow-s0", "--baseline", "dgs", "--out",
                 str(out), "--step-seconds", str(times)]) == 2  # no step time for "slow"
    times.write_text(json.dumps({"dgs": 0.5, "slow": 0.5}))
    assert run_main(main, ["--runs", str(runs), "--names", "dgs-s0", "dgs-s1", "slow-s0", "--baseline", "dgs", "--out",
                 str(out), "--step-seconds", str(times)]) == 0
    assert "never (0/1)" in (out / "sdf_study.md").read_text()
    times.write_text(json.dumps({"sdf": 0.5}))
    assert run_main(main, ["--runs", str(runs), "--names", "dgs-s0", "--baseline", "dgs", "--out", str(out),
                 "--step-seconds", str(times)]) == 2
