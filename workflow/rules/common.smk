# Shared helpers of the workflow: where each dataset lives and which scenes a split holds.
# The workflow only orchestrates; parsing is done by the pipeline package's readers.
import json
import shlex
from pathlib import Path

from pipeline.formats.scannet import read_split
from pipeline.formats.matterport import list_houses

WORK = Path(config["work_root"])
SYNTHETIC = Path(config["synthetic"]["root"])
LOGS = WORK / "logs"  # per work root: two configs (demo, ablation) never mix logs


def uses_synthetic(dataset):
    """True when the dataset root is unset, so the generated scenes stand in for the download."""
    return config[f"{dataset}_root"] is None


def dataset_root(dataset):
    """Root folder of `dataset` ("scannet" | "matterport"): the configured one or the synthetic one."""
    if uses_synthetic(dataset):
        return SYNTHETIC / dataset
    return Path(config[f"{dataset}_root"])


def dataset_ready(dataset):
    """Input that must exist before a dataset can be listed: the generator's completion marker."""
    if uses_synthetic(dataset):
        return [SYNTHETIC / f"{dataset}.complete"]
    return []


def _wait_for_generator(dataset):
    # The synthetic scene list is only known once the generator checkpoint has run.
    if uses_synthetic(dataset):
        getattr(checkpoints, f"synthesize_{dataset}").get()


def scannet_scenes(split):
    """Scene ids of a ScanNet split, read from scannetv2_<split>.txt."""
    _wait_for_generator("scannet")
    return read_split(dataset_root("scannet"), split)


def matterport_houses():
    """House ids found under the Matterport root."""
    _wait_for_generator("matterport")
    return list_houses(dataset_root("matterport"))


def prepare_options():
    """The `prepare` config section as one shell-quoted JSON argument."""
    return shlex.quote(json.dumps(config["prepare"], sort_keys=True))


def dask_option():
    """`--dask-scheduler ADDRESS` when an existing Dask cluster is configured, else nothing."""
    address = config["dask_scheduler"]
    return f"--dask-scheduler {shlex.quote(address)}" if address else ""
