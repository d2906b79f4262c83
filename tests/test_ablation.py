"""benchmark.ablation: runs × seeds → mean ± std table and loss curves, on hand-made logs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.ablation import main, split_run


def write_run(runs: Path, name: str, losses: list[float], samples_per_s: float | list[float],
              batch: int = 4) -> None:
    run = runs / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"optim:\n  batch_size: {batch}\n")
    rates = samples_per_s if isinstance(samples_per_s, list) else [samples_per_s] * len(losses)
    rows = [(s + 1, tag, v) for s, (loss, rate) in enumerate(zip(losses, rates))
            for tag, v in (("train/loss", loss), ("train/bce", loss / 2), ("train/samples_per_s", rate),
                           ("val/loss", 9.0), ("val/bce", loss / 3), ("val/accuracy", 0.5 + s / 10))]
    pd.DataFrame(rows, columns=["step", "tag", "value"]).to_csv(run / "scalars.csv", index=False)


def test_table_and_curves(tmp_path: Path) -> None:
    runs = tmp_path / "models"
    f1 = {"dgs-s0": 0.5, "dgs-s1": 0.3, "nograd-s0": 0.2, "nograd-s1": 0.2}
    for name in f1:
        write_run(runs, name, [1.0, 0.5, 0.25], samples_per_s=2.0)
    # Two test scenes of two frames each; "paper" rows (the old alias) must not enter the table.
    per_frame = pd.DataFrame([{"method": m, "protocol": p, "dataset": "scannet", "scene_id": f"s{k // 2}",
                               "frame_index": k, "fit_f1": f + (0.1 if p == "paper" else 0) + d,
                               "fit_chamfer": 0.1}
                              for m, f in f1.items() for p in ("release", "paper")
                              for k, d in enumerate((-0.05, 0.05, -0.05, 0.05))])
    csv = tmp_path / "per_frame.csv"
    per_frame.to_csv(csv, index=False)
    assert main([str(csv), "--runs", str(runs), "--out", str(tmp_path / "out"), "--bootstrap", "300"]) == 0
    table = pd.read_csv(tmp_path / "out" / "ablation.csv", index_col=0)
    assert list(table.index) == ["dgs", "nograd"]  # best F1 first
    assert table.loc["dgs", "fit_f1_mean"] == pytest.approx(40.0)  # release rows only, in %
    assert table.loc["dgs", "fit_f1_std"] == pytest.approx(np.std([50, 30], ddof=1))
    assert table.loc["nograd", "fit_chamfer_mean"] == pytest.approx(10.0)  # cm
    assert table.loc["dgs", "loss_mean"] == pytest.approx(np.mean([1.0, 0.5, 0.25]))
    assert table.loc["dgs", "seconds_mean"] == pytest.approx(3 * 4 / 2.0)  # 3 steps of batch 4 at 2 samples/s
    assert table.loc["dgs", "val_bce_mean"] == pytest.approx(0.25 / 3)  # the last validation, not the mean
    assert table.loc["nograd", "val_accuracy_mean"] == pytest.approx(70.0)  # %
    # Seeds × scenes bootstrap: dgs's seeds (50 and 30) make its interval wide; nograd's seeds agree,
    # its ±5 frame noise is the same in every scene. The difference −20 has dgs's seed spread.
    assert table.loc["dgs", "fit_f1_lo"] < 35 and table.loc["dgs", "fit_f1_hi"] > 45
    assert table.loc["nograd", "fit_f1_lo"] > 14 and table.loc["nograd", "fit_f1_hi"] < 26
    assert table.loc["nograd", "d_fit_f1"] == pytest.approx(-20.0)
    assert table.loc["nograd", "d_fit_chamfer"] == pytest.approx(0.0)
    text = (tmp_path / "out" / "ablation.md").read_text()
    assert "40.0 ± 14.1 [" in text and "Δ F1 vs dgs" in text
    assert "Resolved (the interval excludes 0)" in text and "Not resolved: " in text
    assert "nograd Chamfer +0.0 cm" in text.split("Not resolved: ")[1]
    assert (tmp_path / "out" / "loss_curves.png").stat().st_size > 0


def test_run_names_and_missing_logs(tmp_path: Path) -> None:
    assert split_run("fixed_encoder-s12") == ("fixed_encoder", 12)
    with pytest.raises(ValueError, match="<experiment>-s<seed>"):
        split_run("dgs")
    csv = tmp_path / "per_frame.csv"
    pd.DataFrame([{"method": "dgs-s0", "protocol": "release", "fit_f1": 0.5, "fit_chamfer": 0.1}]).to_csv(csv)
    with pytest.raises(FileNotFoundError, match="scalars.csv"):
        main([str(csv), "--runs", str(tmp_path), "--out", str(tmp_path / "out")])


def test_wall_time_ignores_a_load_spike(tmp_path: Path) -> None:
    """Wall seconds are steps × the median step time: one step slowed 100× by other load does not count."""
    from benchmark.ablation import training_curves

    write_run(tmp_path, "dgs-s0", [1.0, 0.9, 0.8, 0.7, 0.6], samples_per_s=[4.0, 4.0, 0.04, 4.0, 4.0])
    curves = training_curves(tmp_path, ["dgs-s0"])
    np.testing.assert_allclose(curves.seconds, [1.0, 2.0, 3.0, 4.0, 5.0])  # batch 4 at 4 samples/s
