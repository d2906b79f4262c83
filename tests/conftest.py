"""Shared pytest setup: quiet, single-threaded numerics so xdist workers do not oversubscribe."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

def pytest_collection_modifyitems(config, items) -> None:
    """Skip the ``cuda``-marked tests, with the reason, where no CUDA device is visible."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU: torch.cuda.is_available() is False "
                                   "(python benchmarks/gpu_check.py runs these on a GPU machine)")
    for item in cuda_items:
        item.add_marker(skip)


TINY_OPTIONS = {"near_surface_points": 128, "non_surface_points": 32, "frames_per_shard": 4,
                "width": 64, "height": 48, "focal": 57.6}
"""Prepare options of :func:`prepared_tiny`: a 64×48 virtual camera with the protocol's field of view."""


@dataclass(frozen=True)
class PreparedTiny:
    """Generated raw datasets and their prepared shards (layout of a workflow's ``work_root``)."""

    scannet_root: Path
    matterport_root: Path
    work: Path

    def manifest(self, dataset: str, split: str) -> Path:
        """The merged manifest of ``dataset``/``split`` (``work/<dataset>/<split>/manifest.parquet``)."""
        return self.work / dataset / split / "manifest.parquet"


@pytest.fixture(scope="session")
def prepared_tiny(tmp_path_factory) -> PreparedTiny:
    """One train, val and test ScanNet scene and one Matterport house, generated and prepared once."""
    import json

    from pipeline.formats import matterport as mp
    from pipeline.formats import scannet as sn
    from pipeline.manifest import merge_manifests
    from pipeline.prepare import main as prepare_main
    from pipeline.prepare import scene_dir
    from pipeline.synthetic.config import preset
    from pipeline.synthetic.generate import generate_matterport, generate_scannet

    base = tmp_path_factory.mktemp("prepared_tiny")
    cfg = preset("tiny", frames_per_scene=12, scannet_train=1, scannet_val=1, scannet_test=1,
                 panoramas_per_house=2, invalid_pose_fraction=0.0)
    scannet = generate_scannet(base / "raw" / "scannet", cfg, progress=False)
    matterport = generate_matterport(base / "raw" / "matterport", cfg, progress=False)
    work = base / "prepared"
    jobs = [("scannet", scannet, split, scene) for split in ("train", "val", "test")
            for scene in sn.read_split(scannet, split)]
    jobs += [("matterport", matterport, "test", house) for house in mp.list_houses(matterport)]
    for dataset, root, split, scene in jobs:
        assert prepare_main(["--dataset", dataset, "--root", str(root), "--split", split, "--scene", scene,
                             "--out", str(work), "--workers", "0", "--options", json.dumps(TINY_OPTIONS)]) == 0
    for dataset, split in {(d, s) for d, _, s, _ in jobs}:
        scenes = [scene_dir(work, d, s, sc) / "manifest.parquet" for d, _, s, sc in jobs if (d, s) == (dataset, split)]
        merge_manifests(scenes, work / dataset / split / "manifest.parquet")
    return PreparedTiny(scannet, matterport, work)


@pytest.fixture
def as_version_1():
    """A function turning a shard into what a version-1 writer made: no field added later, no
    ``n_surface`` attribute (the reader must read it with those fields absent)."""
    import h5py

    from pipeline.shards import ARRAY_FIELDS, STRING_FIELDS

    def strip(path: Path) -> None:
        with h5py.File(path, "a") as f:
            for fld in STRING_FIELDS + ARRAY_FIELDS:
                if fld.since > 1:
                    del f[fld.path]
            del f["surface"], f.attrs["n_surface"]
            f.attrs["schema_version"] = 1

    return strip
