"""benchmark.curves: the learning-curve figure of a run folder's scalars.csv."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmark.curves import main, run_curves


def test_curves_of_a_run(tmp_path: Path, capsys) -> None:
    rows = [(s, "train/bce", 0.7 - 0.001 * s) for s in range(1, 101)] + [(s, "train/lr", 1e-3) for s in range(1, 101)]
    rows += [(s, t, v) for s in (50, 100) for t, v in (("val/accuracy", s / 125), ("val/bce", 0.7 - s / 1000))]
    run = tmp_path / "run"
    run.mkdir()
    pd.DataFrame(rows, columns=["step", "tag", "value"]).to_csv(run / "scalars.csv", index=False)
    train, val = run_curves(run)
    assert list(val.index) == [50, 100]
    assert val.loc[100, "accuracy"] == pytest.approx(0.8) and val.loc[50, "bce"] == pytest.approx(0.65)
    assert len(train) == 100 and set(train.columns) == {"bce", "lr"}
    assert main([str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "d.png")]) == 2
    assert "scalars.csv not found" in capsys.readouterr().err
