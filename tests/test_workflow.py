"""The Snakemake workflow: every named target parses and plans, and bad configuration is refused
with a message that names the key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TARGETS = ["prepare_scannet", "prepare_matterport", "train_dgs", "train_ablation", "evaluate", "report", "loss_curves",
           "ablation", "sdf_study", "demo", "prepare_objects", "objects"]


def _snakemake(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run snakemake on the repo's Snakefile with all data and outputs redirected under tmp_path.

    Nested keys go through a config file: `--config` would pass them as strings."""
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(yaml.safe_dump({"synthetic": {"root": str(tmp_path / "synthetic")},
                                         "work_root": str(tmp_path / "work")}))
    return subprocess.run(
        [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO), "--cores", "1",
         "--configfile", str(REPO / "config" / "config.yaml"), str(overrides), *args],
        capture_output=True, text=True, timeout=120,
    )


def test_every_named_target_dry_runs(tmp_path: Path) -> None:
    """One planning run over all targets (a broken target fails it as surely as a run of its own)."""
    result = _snakemake(tmp_path, "--dry-run", *TARGETS)
    assert result.returncode == 0, result.stdout + result.stderr
    job_table = result.stdout
    for target in TARGETS:
        assert f"{target} " in job_table, f"{target} missing from the plan:\n{job_table}"
    # With no dataset configured the plan starts from the synthetic generator.
    assert "synthesize " in job_table


def test_config_schema_rejects_bad_values(tmp_path: Path) -> None:
    result = _snakemake(tmp_path, "--dry-run", "prepare_scannet", "--config", "dask_scheduler=localhost:8786")
    assert result.returncode != 0
    assert "dask_scheduler" in result.stdout + result.stderr


def test_an_external_checkpoint_is_predicted_and_reported_under_its_label(tmp_path: Path) -> None:
    """The released model in the benchmark: an evaluate.experiments item naming a checkpoint."""
    release = tmp_path / "models dir" / "dgs_release.pt"  # a space: the path must reach the shell quoted
    release.parent.mkdir()
    release.write_bytes(b"")
    extra = tmp_path / "release.yaml"  # a later --configfile replaces the helper's: restate its keys
    extra.write_text(yaml.safe_dump({"synthetic": {"root": str(tmp_path / "synthetic")},
                                     "work_root": str(tmp_path / "work"), "evaluate": {"experiments": [
        "dgs", {"name": "dgs_release", "checkpoint": str(release), "label": "DGS (release weights)"}]}}))
    result = _snakemake(tmp_path, "--dry-run", "--printshellcmds", "evaluate", "--configfile", str(extra))
    assert result.returncode == 0, result.stdout + result.stderr
    plan = result.stdout + result.stderr
    assert f"--checkpoint '{release}'" in plan and "--name 'DGS (release weights)'" in plan
    assert f"--method 'DGS (release weights)={tmp_path / 'work' / 'predictions' / 'dgs_release'}'" in plan
    assert "train_experiment" in plan  # dgs is still trained; the release is not
    assert "models/dgs_release" not in plan
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"evaluate": {"experiments": [{"name": "dgs_release"}]}}))
    result = _snakemake(tmp_path, "--dry-run", "evaluate", "--configfile", str(bad))
    assert result.returncode != 0 and "experiments" in result.stdout + result.stderr
