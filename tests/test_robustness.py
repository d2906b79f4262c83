"""Scale-out and robustness of the prepare job through its command line: SIGKILLed runs leave no
finished-looking file that is incomplete and rerun to the same bytes as an uninterrupted run; an
existing Dask cluster addressed by `--dask-scheduler tcp://...` gives those bytes too.

The kill/rerun helpers are tools/kill_rerun.py's (the full run: `python tools/kill_rerun.py`)."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.prepare import main as prepare_main

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("kill_rerun", REPO / "tools" / "kill_rerun.py")
kill_rerun = sys.modules.setdefault("kill_rerun", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(kill_rerun)  # registered first: its dataclasses look their module up


def sha256s(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[Path, str, Path]:
    """(root, scene id, scene folder of an uninterrupted in-process --workers 0 run): 48 frames,
    4 frames per shard, some invalid poses. Enough frames that the job writes shards for a few
    tenths of a second, so a kill lands mid-run even on a fast machine."""
    base = tmp_path_factory.mktemp("robust")
    root = base / "synthetic" / "scannet"
    scene_id = kill_rerun.make_scene(root, frames=48, seed=3)
    assert prepare_main(kill_rerun.prepare_argv(root, scene_id, base / "reference", workers=0)) == 0
    reference = kill_rerun.scene_dir(base / "reference", scene_id)
    names = {p.name for p in reference.iterdir()}
    assert {"done", "manifest.parquet", "shard_00000.h5", "shard_00001.h5"} <= names  # several shards
    return root, scene_id, reference


def test_sigkill_then_rerun_gives_the_uninterrupted_bytes(scene, tmp_path: Path) -> None:
    root, scene_id, reference = scene
    expected = sha256s(reference)
    argv = kill_rerun.prepare_argv(root, scene_id, tmp_path, workers=0)
    directory = kill_rerun.scene_dir(tmp_path, scene_id)
    interrupted = 0
    for delay in np.random.default_rng(0).uniform(0.0, 0.08, size=2):
        exit_code = kill_rerun.kill_while_writing(argv, directory, float(delay), tmp_path / "job.log")
        assert exit_code in (None, 0), (tmp_path / "job.log").read_text()
        found = kill_rerun.inspect(directory, expected)
        assert not found.problems, found.problems
        if exit_code is None and not found.done:
            interrupted += 1
            assert set(found.finished_shards) <= {n for n in expected if n.startswith("shard_")}
        assert prepare_main(argv) == 0  # the rerun (in-process: the same entry point, no re-import)
        assert sha256s(directory) == expected
    assert interrupted >= 1, "no kill landed before the job finished; nothing was tested"


def test_inspect_flags_a_truncated_shard_and_a_premature_marker(scene, tmp_path: Path) -> None:
    _, _, reference = scene
    expected = sha256s(reference)
    debris = tmp_path / "debris"
    shutil.copytree(reference, debris)
    assert kill_rerun.inspect(debris, expected).problems == []
    shard = debris / "shard_00001.h5"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    problems = kill_rerun.inspect(debris, expected).problems
    assert any(p.startswith("shard_00001.h5 looks finished but does not read") for p in problems)
    assert any("'done' exists but the folder differs" in p for p in problems)
    (debris / "done").unlink()
    assert len(kill_rerun.inspect(debris, expected).problems) == 1


def test_cli_on_an_existing_dask_cluster_by_tcp_address(scene, tmp_path: Path) -> None:
    from distributed import LocalCluster

    root, scene_id, reference = scene
    # in-process workers keep the test fast; the job connects by address, as to a remote cluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        argv = kill_rerun.prepare_argv(root, scene_id, tmp_path, workers=0)
        assert prepare_main([*argv, "--dask-scheduler", address]) == 0
        frames_run = sum(w.state.executed_count for w in cluster.workers.values())
        assert len(cluster.workers) == 2  # the job closed its client, not the cluster
    directory = kill_rerun.scene_dir(tmp_path, scene_id)
    assert sha256s(directory) == sha256s(reference)
    assert frames_run >= json.loads((directory / "done").read_text())["ok"] > 0  # frames ran there
