"""Report aggregation: means in paper units, N and failed frames, bootstrap intervals, paired
differences, bold within a (dataset, protocol) block, captions, files."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark import bootstrap
from benchmark.aggregate import aggregate, differences, reason_counts
from benchmark.report import main
from benchmark.tables import block_tables
from pipeline.errors import run_main


def per_frame() -> pd.DataFrame:
    """Two methods × two frames, dgs-release; method B's second frame is an empty prediction, here
    recorded as a ``drop`` protocol records it (NaN metrics, reason empty_prediction)."""
    base = dict(dataset="scannet", protocol="dgs-release", protocol_hash="abcd1234", missing="drop",
                structure="inferred")
    rows = [
        dict(method="A", scene_id="s0", frame_index=0, fit_acc=0.10, fit_f1=0.40, fit_depth_abs_rel=0.20,
             fit_depth_sq_rel=0.01, fit_reason=""),
        dict(method="A", scene_id="s1", frame_index=5, fit_acc=0.20, fit_f1=0.60, fit_depth_abs_rel=0.10,
             fit_depth_sq_rel=0.03, fit_reason=""),
        dict(method="B", scene_id="s0", frame_index=0, fit_acc=0.05, fit_f1=0.30, fit_depth_abs_rel=0.30,
             fit_depth_sq_rel=0.02, fit_reason=""),
        dict(method="B", scene_id="s1", frame_index=5, fit_acc=np.nan, fit_f1=np.nan, fit_depth_abs_rel=np.nan,
             fit_depth_sq_rel=np.nan, fit_reason="empty_prediction"),
    ]
    return pd.DataFrame([{**base, **r} for r in rows])


def _cells(markdown: str, block: str) -> dict[str, dict[str, str]]:
    """method -> header -> cell of the first table after the line starting with ``block``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(block))
    table = [line for line in lines[start:] if line.startswith("|")]
    header = [h.strip() for h in table[0].strip("|").split("|")]
    out = {}
    for line in table[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(header) or not cells[0] or cells[0] in out:
            break
        out[cells[0]] = dict(zip(header, cells))
    return out


def test_means_in_paper_units_with_n_failed_and_nan_counts():
    table = aggregate(per_frame(), n_boot=0).set_index("method")
    assert table.loc["A", "fit_acc"] == pytest.approx(15.0)             # cm: mean(0.10, 0.20) × 100
    assert table.loc["A", "fit_f1"] == pytest.approx(50.0)              # %
    assert table.loc["A", "fit_depth_abs_rel"] == pytest.approx(15.0)   # ×100, as the DGS release
    assert table.loc["A", "fit_depth_sq_rel"] == pytest.approx(2.0)
    assert table.loc["B", "fit_acc"] == pytest.approx(5.0)              # the dropped frame is left out...
    assert (table.loc["B", "fit_N"], table.loc["B", "fit_failed"]) == (1, 1)  # ...and counted
    assert (table.loc["A", "fit_N"], table.loc["A", "fit_failed"]) == (2, 0)
    assert table.loc["B", "fit_acc_nan"] == 1 and table.loc["B", "frames"] == 2
    assert table.loc["A", "protocol_hash"] == "abcd1234" and table.loc["A", "structure"] == "inferred 2"


def test_one_empty_prediction_penalized_or_dropped_and_the_table_says_so():
    """Method B: one perfect frame and one empty prediction, scored by benchmark.scoring under the
    penalizing dgs-release and under its drop variant; A is perfect on both frames."""
    from benchmark.protocols import resolve
    from benchmark.render import render_depth
    from benchmark.scoring import evaluate_frame, to_row

    # The tilted plane z = 2 + 0.3·x, |x|, |y| ≤ 0.5 m, seen by a 64 × 48 camera at the origin.
    s = np.linspace(-0.5, 0.5, 11)
    xx, yy = np.meshgrid(s, s)
    gt_v = np.stack([xx.ravel(), yy.ravel(), 2.0 + 0.3 * xx.ravel()], axis=1)
    idx = np.arange(121).reshape(11, 11)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    gt_f = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    depth = render_depth(gt_v, gt_f, 57.6, 57.6, 32.0, 24.0, 64, 48)
    kw = dict(intrinsics=np.array([57.6, 57.6, 32.0, 24.0]), camera_to_world=np.eye(4))
    rows = []
    for protocol in (resolve("dgs-release", n_samples=5_000),
                     {"name": "release-drop", "base": "dgs-release", "missing": "drop", "n_samples": 5_000}):
        for method, scene, empty in (("A", "s0", False), ("A", "s1", False), ("B", "s0", False), ("B", "s1", True)):
            faces = gt_f[:0] if empty else gt_f
            row = to_row(evaluate_frame(gt_v, faces, gt_v, gt_f, depth, **kw, protocol=protocol))
            rows.append({"method": method, "dataset": "scannet", "scene_id": scene, "frame_index": 0,
                         "structure": "labels", **row})
    table = pd.DataFrame(rows)
    agg = aggregate(table, n_boot=50).set_index(["protocol", "method"])
    assert agg.loc[("dgs-release", "B"), "fit_f1"] == pytest.approx(50.0, abs=0.5)  # (100 + 0)/2
    assert agg.loc[("dgs-release", "B"), "fit_acc"] > 50.0  # the 100 cm penalty is in the mean
    assert (agg.loc[("dgs-release", "B"), "fit_N"], agg.loc[("dgs-release", "B"), "fit_failed"]) == (2, 1)
    assert agg.loc[("release-drop", "B"), "fit_f1"] == pytest.approx(100.0, abs=0.5)
    assert (agg.loc[("release-drop", "B"), "fit_N"], agg.loc[("release-drop", "B"), "fit_failed"]) == (1, 1)
    markdown, latex = block_tables(agg.reset_index(), differences(table, "A", n_boot=50), "fit", n_boot=50)
    penalized, dropped = _cells(markdown, "### scannet · dgs-release"), _cells(markdown, "### scannet · release-drop")
    assert (penalized["B"]["N"], penalized["B"]["failed"]) == ("2", "1")
    assert penalized["B"]["F1 [%]"].startswith("50.0") and penalized["A"]["F1 [%]"].startswith("**100.0")
    assert (dropped["B"]["N"], dropped["B"]["failed"]) == ("1", "1")
    assert dropped["B"]["F1 [%]"].startswith("**100.0")  # a tie with A, bold in its own block
    assert "failed frames penalized and counted in N" in markdown
    assert "failed frames dropped: N excludes them" in markdown
    assert "Acc = Compl = Chamfer = 100 cm" in markdown and "release-drop \\#" in latex


def test_bold_only_within_a_dataset_and_protocol_block():
    frames = per_frame().fillna({"fit_f1": 0.0})
    other = frames.assign(dataset="matterport", fit_f1=frames["fit_f1"] + 0.3)  # better everywhere
    markdown, latex = block_tables(aggregate(pd.concat([frames, other]), n_boot=0), pd.DataFrame(), "fit")
    scannet, matterport = _cells(markdown, "### scannet"), _cells(markdown, "### matterport")
    assert scannet["A"]["F1 [%]"] == "**50.0**" and scannet["B"]["F1 [%]"] == "15.0"
    assert matterport["A"]["F1 [%]"] == "**80.0**"
    assert scannet["B"]["Acc [cm]"] == "**5.0**" and scannet["A"]["Acc [cm]"] == "15.0"  # lower is better
    assert scannet["A"]["AbsRel [%]"] == "**15.0**" and "SqRel [×100]" in scannet["A"]
    assert "ScanNet v2 · dgs-release #abcd1234" in markdown and "structure: inferred 2 frames" in markdown
    assert "\\toprule" in latex and "\\textbf{50.0}" in latex and "\\textbf{15.0}" in latex


def test_bootstrap_resamples_scenes_then_frames():
    scenes = ["a", "a", "a", "b", "c", "c"]
    weights = bootstrap.frame_weights(scenes, 400, np.random.default_rng(0))
    assert weights.shape == (400, 6) and np.all(weights.sum(axis=1) > 0)
    # Per replicate, each drawn scene contributes as many frames as it has: total = Σ over draws.
    per_scene = np.stack([weights[:, :3].sum(1), weights[:, 3], weights[:, 4:].sum(1)], axis=1)
    assert np.all(per_scene % np.array([3, 1, 2]) == 0)
    assert np.all((per_scene / np.array([3, 1, 2])).sum(axis=1) == 3)  # 3 scenes drawn
    # A constant metric has a zero-width interval; a scene effect widens it.
    values = np.array([[[1.0], [1.0], [1.0], [1.0], [1.0], [1.0]]])
    lo, hi = bootstrap.interval(bootstrap.replicate_means(values, weights))
    assert lo[0] == hi[0] == 1.0
    values = np.array([[[0.0], [0.0], [0.0], [1.0], [2.0], [2.0]]])
    lo, hi = bootstrap.interval(bootstrap.replicate_means(values, weights))
    assert lo[0] < values.mean() < hi[0]
    assert bootstrap.resolved(0.1, 0.5) and not bootstrap.resolved(-0.1, 0.5)
    # The draws depend on the frames only: the same numbers under two protocols, the same interval.
    frames = per_frame().fillna({"fit_f1": 0.0})
    table = aggregate(pd.concat([frames, frames.assign(protocol="dgs-paper")]), n_boot=100)
    release, paper = (table[table.protocol == p].set_index("method") for p in ("dgs-release", "dgs-paper"))
    assert release.loc["A", "fit_f1_lo"] < release.loc["A", "fit_f1_hi"]
    assert (release.loc["A", "fit_f1_lo"], release.loc["A", "fit_f1_hi"]) == (paper.loc["A", "fit_f1_lo"], paper.loc["A", "fit_f1_hi"])


def test_paired_difference_against_the_reference():
    frames = per_frame().fillna({"fit_f1": 0.0, "fit_acc": 1.0})
    diffs = differences(frames, "A", n_boot=200).set_index("method")
    assert diffs.loc["B", "fit_f1"] == pytest.approx(((0.30 - 0.40) + (0.0 - 0.60)) / 2 * 100)
    assert diffs.loc["B", "N"] == 2 and diffs.loc["B", "reference"] == "A"
    assert diffs.loc["B", "fit_f1_lo"] <= diffs.loc["B", "fit_f1"] <= diffs.loc["B", "fit_f1_hi"]


def test_reason_counts_name_the_reason():
    counts = reason_counts(per_frame())
    assert counts.to_dict("records") == [dict(method="B", dataset="scannet", protocol="dgs-release",
                                              column="fit_reason", reason="empty_prediction", frames=1)]


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="protocol"):
        aggregate(per_frame().drop(columns="protocol"))


def test_command_line_writes_every_table(tmp_path):
    csv = tmp_path / "per_frame.csv"
    per_frame().to_csv(csv, index=False)
    assert main([str(csv), "--out", str(tmp_path / "report"), "--bootstrap", "50", "--reference", "A"]) == 0
    names = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert names == ["aggregated.csv", "differences.csv", "f1_histogram.png", "per_scene.csv", "reasons.csv",
                     "table_fit.md", "table_fit.tex"]
    scenes = pd.read_csv(tmp_path / "report" / "per_scene.csv")
    row = scenes[(scenes.method == "A") & (scenes.scene_id == "s1")].iloc[0]
    assert math.isclose(row["fit_f1"], 60.0) and row["N"] == 1
    aggregated = pd.read_csv(tmp_path / "report" / "aggregated.csv")
    assert {"fit_f1_lo", "fit_f1_hi", "fit_N", "fit_failed"} <= set(aggregated.columns)
    assert "Paired differences against `A`" in (tmp_path / "report" / "table_fit.md").read_text()
    assert run_main(main, [str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r2")]) == 2
