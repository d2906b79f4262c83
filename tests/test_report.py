"""Report aggregation: NaN-aware means in paper units, NaN counts, best-value marking, files."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.report import aggregate, main, paper_table, reason_counts, to_latex, to_markdown
from pipeline.errors import run_main


def per_frame() -> pd.DataFrame:
    """Two methods × two frames, release protocol; method B's second frame has no prediction."""
    rows = [
        dict(method="A", dataset="scannet", protocol="release", scene_id="s0", frame_index=0,
             fit_acc=0.10, fit_f1=0.40, fit_depth_abs_rel=0.20, fit_reason=""),
        dict(method="A", dataset="scannet", protocol="release", scene_id="s1", frame_index=5,
             fit_acc=0.20, fit_f1=0.60, fit_depth_abs_rel=0.10, fit_reason=""),
        dict(method="B", dataset="scannet", protocol="release", scene_id="s0", frame_index=0,
             fit_acc=0.05, fit_f1=0.30, fit_depth_abs_rel=0.30, fit_reason=""),
        dict(method="B", dataset="scannet", protocol="release", scene_id="s1", frame_index=5,
             fit_acc=np.nan, fit_f1=np.nan, fit_depth_abs_rel=np.nan, fit_reason="empty_prediction"),
    ]
    return pd.DataFrame(rows)


def test_means_are_nan_aware_in_paper_units_with_nan_counts():
    table = aggregate(per_frame()).set_index("method")
    assert table.loc["A", "fit_acc"] == pytest.approx(15.0)      # cm: mean(0.10, 0.20) × 100
    assert table.loc["A", "fit_f1"] == pytest.approx(50.0)       # %
    assert table.loc["A", "fit_depth_abs_rel"] == pytest.approx(0.15)  # unitless, as stored
    assert table.loc["B", "fit_acc"] == pytest.approx(5.0)       # the NaN frame is skipped...
    assert table.loc["B", "fit_acc_nan"] == 1                    # ...and counted
    assert table.loc["A", "fit_acc_nan"] == 0
    assert table.loc["B", "frames"] == 2


def test_reason_counts_name_the_reason():
    counts = reason_counts(per_frame())
    assert counts.to_dict("records") == [dict(method="B", dataset="scannet", protocol="release",
                                              column="fit_reason", reason="empty_prediction", frames=1)]


def test_best_value_is_bold_in_the_right_direction():
    table = paper_table(aggregate(per_frame()))
    lines = to_markdown(table).splitlines()
    header = [h.strip() for h in lines[0].strip("|").split("|")]
    cells = {row[0]: dict(zip(header, row)) for row in
             ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])}
    # Acc and AbsRel: lower is better; F1: higher is better.
    assert cells["B"]["Acc [cm]"] == "**5.0**" and cells["A"]["Acc [cm]"] == "15.0"
    assert cells["A"]["F1 [%]"] == "**50.0**" and cells["B"]["F1 [%]"] == "30.0"
    assert cells["A"]["AbsRel"].startswith("**") and not cells["B"]["AbsRel"].startswith("**")
    latex = to_latex(table)
    assert "\\toprule" in latex and "\\textbf{50.0}" in latex and "\\textbf{5.0}" in latex
    assert "\\textbf{15.0}" not in latex  # A's Acc is not the best


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="protocol"):
        aggregate(per_frame().drop(columns="protocol"))


def test_command_line_writes_every_table(tmp_path):
    csv = tmp_path / "per_frame.csv"
    per_frame().to_csv(csv, index=False)
    assert main([str(csv), "--out", str(tmp_path / "report")]) == 0
    names = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert names == ["aggregated.csv", "f1_histogram.png", "per_scene.csv", "reasons.csv",
                     "table_fit.md", "table_fit.tex"]
    scenes = pd.read_csv(tmp_path / "report" / "per_scene.csv")
    row = scenes[(scenes.method == "A") & (scenes.scene_id == "s1")].iloc[0]
    assert math.isclose(row["F1 [%]"], 60.0)
    assert run_main(main, [str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r2")]) == 2
