"""The Snakemake profiles (profiles/slurm, profiles/local): each parses and plans the prepare and
training targets, and every job in the plan asks for what the profile file says (dry runs only;
nothing is submitted, no `sbatch` is needed)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SPLITS = {"train": ["scene0000_00", "scene0001_00"], "val": ["scene0002_00"], "test": ["scene0707_00"]}


def _dry_run(tmp_path: Path, profile: str, *args: str, config: dict | None = None) -> str:
    """`snakemake --profile profiles/<profile> -n ... prepare_scannet train_dgs` on a fake ScanNet root.

    The root holds only the split lists (all a plan reads), so no checkpoint hides the per-scene jobs;
    every output goes under tmp_path; ``config`` adds workflow config keys. Returns stdout (the job
    list with resources and commands)."""
    root = tmp_path / "scannet"
    root.mkdir()
    for split, scenes in SPLITS.items():
        (root / f"scannetv2_{split}.txt").write_text("".join(f"{s}\n" for s in scenes))
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(yaml.safe_dump({"scannet_root": str(root), "work_root": str(tmp_path / "work"),
                                         "synthetic": {"root": str(tmp_path / "synthetic")}, **(config or {})}))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(REPO / "profiles" / profile),
         "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO), "--dry-run", *args,
         "prepare_scannet", "train_dgs",  # targets before --configfile, which takes several values
         "--configfile", str(REPO / "config" / "config.yaml"), str(overrides)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _jobs(plan: str) -> list[dict]:
    """Each `rule NAME:` block of a dry-run listing → {"rule", "resources": {k: str}, "shell"}."""
    jobs = []
    for block in re.split(r"\n(?=\[.*\]\n(?:rule|checkpoint) )", plan):
        head = re.search(r"^(?:rule|checkpoint) (\w+):", block, re.M)
        if head is None:
            continue
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        shell = re.search(r"^Shell command: (.*)$", block, re.M)
        jobs.append({"rule": head.group(1),
                     "resources": dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {},
                     "shell": shell.group(1) if shell else ""})
    return jobs


def test_slurm_profile_plans_with_per_rule_resources(tmp_path: Path) -> None:
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    # A dry run caps threads at --cores (1 by default); on the cluster nothing caps them.
    jobs = _jobs(_dry_run(tmp_path, "slurm", "--cores", "64"))
    rules = {j["rule"] for j in jobs}
    assert {"prepare_scene", "merge_manifest", "train_experiment"} <= rules, rules
    assert sum(j["rule"] == "prepare_scene" for j in jobs) == sum(map(len, SPLITS.values()))
    for job in jobs:
        expected = {**profile["default-resources"], **profile["set-resources"].get(job["rule"], {})}
        threads = profile["set-threads"].get(job["rule"], 1)
        expected["cpus_per_task"] = threads  # the profile's expression `threads`
        got = job["resources"]
        for key, value in expected.items():
            assert got.get(key) == str(value), f"{job['rule']}: {key}={got.get(key)!r}, profile says {value!r}"
        if job["rule"] == "prepare_scene":  # one Dask worker per requested CPU
            assert f"--workers {threads} " in job["shell"] and threads == 8
    # training asks for train.nproc (default 1) GPUs on the gpu partition; only predict also asks for one
    train_rules = {"train_experiment", "train_seeded"}
    gpu_rules = {r for r, res in profile["set-resources"].items() if "gpu" in res} | train_rules
    assert "predict" in gpu_rules
    assert any(j["resources"].get("gpu") == "1" and j["resources"]["slurm_partition"] == "gpu"
               for j in jobs if j["rule"] in train_rules)
    assert not any("gpu" in j["resources"] for j in jobs if j["rule"] not in gpu_rules)


def test_slurm_training_asks_for_one_gpu_per_torchrun_process(tmp_path: Path) -> None:
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    jobs = _dry_run(tmp_path, "slurm", "--cores", "64", config={"train": {"nproc": 4}})
    train = [j for j in _jobs(jobs) if j["rule"] == "train_experiment"]
    assert train and all(j["resources"]["gpu"] == "4" for j in train)
    assert all("torchrun --standalone --nproc_per_node 4 " in j["shell"] for j in train)


def test_local_profile_caps_threads_at_its_cores(tmp_path: Path) -> None:
    profile = yaml.safe_load((REPO / "profiles" / "local" / "config.yaml").read_text())
    assert profile["rerun-incomplete"] is True and profile["keep-going"] is False
    jobs = _jobs(_dry_run(tmp_path, "local"))
    prepare = [j for j in jobs if j["rule"] == "prepare_scene"]
    assert prepare and all(f"--workers {profile['cores']} " in j["shell"] for j in prepare)
