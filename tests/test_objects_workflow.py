"""`snakemake objects` end to end at a tiny size: synthetic objects → object shards → a few training
steps → grids over the cube → the object protocol's tables. The work folder has a space in its name,
so every path the rules pass to a shell must be quoted."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_objects_target_runs_at_a_tiny_size(tmp_path: Path) -> None:
    base = tmp_path / "with space"
    overrides = tmp_path / "objects.yaml"
    overrides.write_text(yaml.safe_dump({
        "synthetic": {"root": str(base / "synthetic"), "preset": "tiny", "seed": 0},
        "work_root": str(base / "work"),
        "train": {"overlay": ["tiny", "smoke"], "device": "cpu"},
        "evaluate": {"grid": "dense"},
        "objects": {"experiments": ["objects"], "prepare": {"uniform_points": 2048, "near_points": 2048},
                    "resolution": 16, "samples": 2000},
    }))
    # the rules run `python`: this interpreter's, whatever PATH the test runner was started with
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO),
         "--cores", "2", "objects", "--configfile", str(REPO / "config" / "config.yaml"), str(overrides)],
        capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = base / "work" / "objects_evaluation"
    per_model = pd.read_csv(out / "per_model.csv")
    assert len(per_model) == 6  # 3 categories × 2 test models of the tiny preset
    assert per_model[["iou", "chamfer_l1", "chamfer_l2", "normal_consistency"]].notna().all().all()
    summary = pd.read_csv(out / "summary.csv")
    assert {"chair", "table", "lamp", "all"} == set(summary.category)
    assert "IoU median" in (out / "summary.md").read_text()
