"""benchmarks/bench_worlds.py: its measures on hand-made inputs, and a tiny end-to-end run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import bench_worlds as bw
from dgs_core.infer import main as infer_main
from dgs_core.train import train
from pipeline.geometry.scene import SceneGeometry
from test_train import fast


def test_amodal_cut_counts_pixels_nearer_than_the_farthest_hit():
    far = np.array([[2.0, 3.0], [np.nan, 4.0]])
    amodal = np.array([[2.0, 2.5], [np.nan, np.nan]])
    assert bw.amodal_cut(amodal, far) == (3, 1)  # 3 pixels hit; only 2.5 < 3 is cut (NaN never is)


def test_farthest_hits_of_two_parallel_planes():
    """A camera at the origin looking along +z through planes z = 1 and z = 3: farthest hit 3."""
    v = np.array([[-5, -5, 1], [5, -5, 1], [5, 5, 1], [-5, 5, 1]], float)
    v = np.concatenate([v, v + [0, 0, 2]])
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    far = bw.farthest_hits(SceneGeometry.from_mesh(v, f, None, ()), np.eye(4), np.array([4.0, 4.0, 4.0, 3.0]), 8, 6)
    np.testing.assert_allclose(far, 3.0, rtol=1e-6)


def test_protocol_difference_and_mean_f1():
    rows = [("m", "a", "s", 0, "dgs-release", 0.5), ("m", "a", "s", 0, "dgs-paper", 0.5),
            ("m", "a", "s", 1, "dgs-release", 0.4), ("m", "a", "s", 1, "dgs-paper", 0.6),
            ("m", "b", "s", 0, "dgs-release", np.nan), ("m", "b", "s", 0, "dgs-paper", 0.2),
            ("n", "a", "s", 0, "dgs-release", np.nan), ("n", "a", "s", 0, "dgs-paper", np.nan)]
    table = pd.DataFrame(rows, columns=["method", "dataset", "scene_id", "frame_index", "protocol", "fit_f1"])
    assert bw.protocols_differ(table, "m").to_dict() == {"a": 0.5, "b": 1.0}
    assert bw.mean_f1(table, "m", "dgs-release").to_dict() == pytest.approx({"a": 0.45, "b": 0.0})
    assert bw.mean_f1(table, "n", "dgs-paper").to_dict() == {"a": 0.0}  # empty prediction: F1 0


def test_bench_worlds_runs_on_the_tiny_workflow(prepared_tiny, tmp_path: Path):
    """A 2-step model as the 'trained' experiment, its 16³ predictions, the Matterport test frames."""
    torch.set_num_threads(1)
    work = tmp_path / "work"
    work.mkdir()
    (work / "matterport").symlink_to(prepared_tiny.work / "matterport")
    run = work / "models" / "dgs"
    final = train(fast("optim.iterations=2"), prepared_tiny.manifest("scannet", "train"),
                  prepared_tiny.manifest("scannet", "val"), run, device="cpu")
    root = prepared_tiny.matterport_root
    assert infer_main(["--checkpoint", str(final), "--manifest", str(work / "matterport" / "test" / "manifest.parquet"),
                       "--root", str(root), "--out", str(work / "predictions" / "dgs"), "--name", "dgs",
                       "--resolution", "16", "--device", "cpu"]) == 0
    table = bw.run(work, {"matterport": root}, "dgs", resolution=16, samples=2000, workers=1)
    assert list(table["test set"]) == ["matterport", "all"] and table.frames.tolist() == [10, 10]
    assert (table["amodal < farthest hit [%]"] > 0).all()  # labelled houses: the amodal scope cuts
    # with labels, the shards' amodal depth is the layout's first structure hit: the same share
    np.testing.assert_allclose(table["… with the layout's structure [%]"], table["amodal < farthest hit [%]"], atol=0.5)
    assert table[["F1 fit, trained [%]", "F1 fit, at init [%]"]].notna().all().all()
    per_frame = pd.read_csv(work / "bench_worlds" / "per_frame.csv")
    assert set(per_frame.method) == {"dgs", "init"} and set(per_frame.protocol) == {"dgs-release", "dgs-paper"}
