"""pipeline.ground_truth: the visible mesh of a prepared frame is what its camera saw."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.render import render_depth
from pipeline.ground_truth import scene_mesh, visible_mesh
from pipeline.shards import ShardReader


@pytest.mark.parametrize("dataset, root_attr", [("scannet", "scannet_root"), ("matterport", "matterport_root")])
def test_visible_mesh_renders_the_stored_depth(prepared_tiny, dataset: str, root_attr: str) -> None:
    manifest = prepared_tiny.manifest(dataset, "test")
    frame = pd.read_parquet(manifest).iloc[2]
    with ShardReader(manifest.parent / frame.shard) as r:
        row = r.read(int(frame.row))
    root = getattr(prepared_tiny, root_attr)
    v, f = visible_mesh(dataset, root, frame.scene_id, row["visible_faces"], row["world_to_camera"])
    assert len(f) == len(row["visible_faces"]) == frame.visible_faces
    assert f.max() == len(v) - 1  # compacted: every kept vertex is used
    h, w = row["rendered_depth"].shape
    depth = render_depth(v, f, *row["intrinsics"], w, h)
    stored = row["rendered_depth"]
    both = np.isfinite(depth) & np.isfinite(stored)
    assert both.mean() > 0.9
    # the visible faces are exactly what the first-hit render saw, so the depths agree
    assert np.median(np.abs(depth[both] - stored[both])) < 1e-4
    all_v, all_f = scene_mesh(dataset, root, frame.scene_id)
    assert len(all_f) > len(f) and not all_v.flags.writeable


def test_face_ids_outside_the_mesh_are_refused(prepared_tiny) -> None:
    root = prepared_tiny.scannet_root
    scene = pd.read_parquet(prepared_tiny.manifest("scannet", "test")).scene_id.iloc[0]
    n = len(scene_mesh("scannet", root, scene)[1])
    with pytest.raises(ValueError, match="different mesh"):
        visible_mesh("scannet", root, scene, np.array([0, n]), np.eye(4))
