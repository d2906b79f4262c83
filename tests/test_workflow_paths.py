"""The workflow in folders whose names hold a space and an accented letter: every shell command
Snakemake would run splits back (shlex) into the intended arguments, and real jobs (the synthetic
generator, one prepare job) run there and write their outputs and logs where they belong."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.formats.scannet import read_split

REPO = Path(__file__).resolve().parents[1]
TINY_PREPARE = {"width": 64, "height": 48, "focal": 57.6, "near_surface_points": 128,
                "non_surface_points": 32, "frames_per_shard": 4}


def _snakemake(config: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO),
         "--cores", "2", *args, "--configfile", str(REPO / "config" / "config.yaml"), str(config)],
        capture_output=True, text=True, timeout=300, env=env)


def _shell_commands(dry_run_output: str) -> list[list[str]]:
    """The argv of every job's command in a `snakemake -n -p` listing (``Shell command: ...``)."""
    prefix = "Shell command: "
    lines = [line[len(prefix):] for line in dry_run_output.splitlines() if line.startswith(prefix)]
    return [shlex.split(line) for line in lines if line != "None"]  # None: a target rule, no command


def _value(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


@pytest.fixture(scope="module")
def spaced(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(config file, synthetic root, work root) under a folder named 'my wörk' (space + umlaut),
    with the tiny synthetic ScanNet generated there by the workflow's own rule."""
    base = tmp_path_factory.mktemp("paths") / "my wörk"
    synthetic, work = base / "synthetic dätä", base / "pre pared"
    config = base / "over ride.yaml"
    base.mkdir(parents=True)
    config.write_text(yaml.safe_dump({
        "synthetic": {"root": str(synthetic), "preset": "tiny", "seed": 0}, "work_root": str(work),
        "prepare": TINY_PREPARE,
        "evaluate": {"datasets": ["scannet"], "methods": {"other méthod": str(base / "other preds")}},
        "ablation": {"datasets": ["scannet"]}}, allow_unicode=True))
    generated = _snakemake(config, str(synthetic / "scannet.complete"))  # the generator's rule, for real
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return config, synthetic, work


def test_real_jobs_run_in_a_folder_with_a_space_and_an_accent(spaced) -> None:
    config, synthetic, work = spaced
    assert (synthetic / "scannet.complete").is_file()
    assert (work / "logs" / "synthetic" / "scannet.log").is_file()
    scene = read_split(synthetic / "scannet", "val")[0]
    done = work / "scannet" / "val" / scene / "done"
    prepared = _snakemake(config, str(done))  # one prepare job
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    assert done.is_file() and (done.parent / "manifest.parquet").is_file()
    log = work / "logs" / "prepare" / "scannet" / "val" / f"{scene}.log"
    assert "frames:" in log.read_text()  # the job's own summary reached its log, not a stray file
    strays = [p for p in REPO.iterdir() if "wörk" in p.name or p.name in ("my", "wörk/pre")]
    assert not strays


def test_every_planned_command_splits_into_the_intended_arguments(spaced) -> None:
    config, synthetic, work = spaced
    planned = _snakemake(config, "-n", "-p", "prepare_scannet", "train_dgs", "evaluate", "report", "loss_curves",
                         "ablation")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    commands = _shell_commands(planned.stdout)
    assert all(argv[:3] == ["python", "-m", "dgs"] for argv in commands), commands  # every job is a dgs command
    programs = {argv[3] for argv in commands}
    assert {"prepare", "manifest", "train", "predict", "evaluate", "report", "curves", "ablation"} <= programs, programs
    base = str(config.parent)
    for argv in commands:
        # a path under the spaced folder is always one whole argument, never split at the space
        for word in argv:
            if "wörk" in word or "dätä" in word:
                assert base in word, (word, argv)
        redirect = argv.index(">")  # every job's output goes to its log under work_root, whole
        assert argv[redirect + 1].startswith(str(work / "logs")) and argv[redirect + 2] == "2>&1", argv
    prepare = next(a for a in commands if a[3] == "prepare" and _value(a, "--split") == "train")
    assert _value(prepare, "--root") == str(synthetic / "scannet") and _value(prepare, "--out") == str(work)
    assert yaml.safe_load(_value(prepare, "--options"))["width"] == TINY_PREPARE["width"]
    evaluate = next(a for a in commands if a[3] == "evaluate" and "other méthod" in " ".join(a))
    assert f"other méthod={config.parent / 'other preds'}" in evaluate
    assert _value(evaluate, "--out") == str(work / "evaluation")
