"""The Snakemake workflow: every named target parses and plans, and bad configuration is refused
with a message that names the key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
TARGETS = ["prepare_scannet", "prepare_matterport", "train_dgs", "train_ablation", "evaluate", "report", "ablation",
           "demo"]


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
    assert "synthesize_scannet" in job_table and "synthesize_matterport" in job_table


def test_config_schema_rejects_bad_values(tmp_path: Path) -> None:
    result = _snakemake(tmp_path, "--dry-run", "prepare_scannet", "--config", "dask_scheduler=localhost:8786")
    assert result.returncode != 0
    assert "dask_scheduler" in result.stdout + result.stderr


def test_config_file_matches_schema_defaults() -> None:
    """The shipped config states the schema's defaults, so reading either tells the truth."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())

    def check(values: dict, properties: dict, where: str) -> None:
        for key, value in values.items():
            spec = properties[key]
            if spec.get("type") == "object":
                check(value, spec["properties"], f"{where}{key}.")
            else:
                assert value == spec["default"], f"{where}{key}: config {value!r} != schema default {spec['default']!r}"

    check(config, schema["properties"], "")


def test_every_prepare_key_reaches_the_prepare_job() -> None:
    """Each key the schema accepts under `prepare` is a field the prepare job uses (none is
    silently ignored), and the schema's defaults are the job's defaults."""
    import dataclasses

    from pipeline.frames import PrepareConfig
    from pipeline.prepare import JobOptions

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    properties = schema["properties"]["prepare"]["properties"]
    fields = {f.name: f.default for cls in (PrepareConfig, JobOptions) for f in dataclasses.fields(cls)}
    for key, spec in properties.items():
        assert key in fields, f"prepare.{key} is accepted by the schema but used by no job"
        default = spec["default"]
        expected = tuple(default) if isinstance(default, list) else default
        assert fields[key] == expected, f"prepare.{key}: schema default {default!r} != job default {fields[key]!r}"
