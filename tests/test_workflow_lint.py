"""The workflow is lint-clean and formatted, runs from any folder, and its rules' conda environment
lists the toolkit's runtime dependencies as environment.yml does."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(REPO))
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def test_snakemake_lint_passes() -> None:
    done = _run([sys.executable, "-m", "snakemake", "--lint", "-s", str(REPO / "Snakefile")], REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Congratulations" in done.stdout + done.stderr


def test_snakefmt_check_passes() -> None:
    files = [str(REPO / "Snakefile"), str(REPO / "workflow")]
    done = _run([str(BIN / "snakefmt"), "--check", "--config", str(REPO / "pyproject.toml"), *files], REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dry_run_from_another_folder(tmp_path: Path) -> None:
    """`snakemake -n -s <repo>/Snakefile --directory <tmp>` started elsewhere: the configs, schema and
    experiment files come from the repository, the outputs are planned under the working directory."""
    elsewhere, work = tmp_path / "elsewhere", tmp_path / "scratch run"
    elsewhere.mkdir()
    done = _run([sys.executable, "-m", "snakemake", "-n", "-p", "-s", str(REPO / "Snakefile"), "--directory",
                 str(work), "--cores", "1", "train_dgs"], elsewhere)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "synthesize" in done.stdout and "train_experiment" in done.stdout
    assert str(REPO / "config" / "experiments" / "dgs.yaml") in done.stdout  # the experiment file, found
    assert "data/prepared/models/dgs/final.pt" in done.stdout  # relative to the working directory
    assert not (elsewhere / "data").exists() and not (elsewhere / ".snakemake").exists()


def test_dgs_run_plans_the_workflow_from_another_folder(tmp_path: Path) -> None:
    done = _run([sys.executable, "-m", "dgs", "run", "-n", "demo", "--configfile", str(REPO / "config" / "demo.yaml"),
                 "--directory", str(tmp_path / "run")], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo" in done.stdout and "loss_curves" in done.stdout
    missing = _run([sys.executable, "-m", "dgs", "run", "--workflow", str(tmp_path), "-n"], tmp_path)
    assert missing.returncode == 2 and "no workflow here" in missing.stderr, missing.stderr


def _requirements(entries: list) -> dict[str, str]:
    out = {}
    for item in entries:
        for entry in (item["pip"] if isinstance(item, dict) else [item]):
            text = entry.split("#")[0].strip()
            if text.startswith("-") or text.split("=")[0] in ("python", "pip", "libusb"):
                continue
            req = Requirement(text)
            out[f"{canonicalize_name(req.name)};{req.marker}"] = str(req.specifier)
    return out


def test_rule_environment_matches_environment_yml() -> None:
    rules = _requirements(yaml.safe_load((REPO / "workflow" / "envs" / "dgs.yaml").read_text())["dependencies"])
    full = _requirements(yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"])
    different = {k: (v, full.get(k)) for k, v in rules.items() if full.get(k) != v}
    assert not different, f"workflow/envs/dgs.yaml vs environment.yml: {different}"
    runtime = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    conda_names = {"snakemake": "snakemake-minimal"}
    names = {k.split(";")[0] for k in rules}
    lacking = [r for r in runtime if conda_names.get(canonicalize_name(Requirement(r).name),
                                                     canonicalize_name(Requirement(r).name)) not in names]
    assert not lacking, f"workflow/envs/dgs.yaml lacks runtime dependencies {lacking}"
