# Shared helpers of the workflow: where each dataset lives and which scenes a split holds.
# The workflow only orchestrates; parsing is done by the pipeline package's readers.
import json
import shlex
from pathlib import Path

from pipeline.datasets import DATASETS

DATASET_NAMES = "|".join(DATASETS)  # wildcard constraint: one of the registered datasets
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
        checkpoints.synthesize.get(dataset=dataset)


def dataset_scenes(dataset, split):
    """Scene (house) ids of a dataset's split, as its reader lists them (pipeline.datasets)."""
    _wait_for_generator(dataset)
    return DATASETS[dataset].scenes(dataset_root(dataset), split)


def test_manifest(dataset):
    """The merged test manifest of `dataset`."""
    return WORK / dataset / "test" / "manifest.parquet"


def evaluate_command(methods, datasets, protocols, out, figures=0):
    """The benchmark.evaluate command (shell-quoted) scoring `methods` (name -> folder) on the test
    sets of `datasets` under `protocols` into `out`. Points per mesh and GT clipping come from the
    `evaluate` section, so every rule that scores predictions scores them the same way."""
    ev = config["evaluate"]
    words = ["python -m benchmark.evaluate"]
    words += [f"--method {shlex.quote(f'{name}={folder}')}" for name, folder in methods.items()]
    for dataset in datasets:
        words.append(f"--manifest {shlex.quote(f'{dataset}={test_manifest(dataset)}')}")
        words.append(f"--root {shlex.quote(f'{dataset}={dataset_root(dataset)}')}")
    words.append("--protocols " + " ".join(shlex.quote(p) for p in protocols))
    words.append(f"--figures {int(figures)} --samples {int(ev['samples'])}")
    words.append(f"--depth-source {shlex.quote(ev['depth_source'])}")
    if not ev["clip_gt"]:
        words.append("--no-clip-gt")
    words.append(f"--out {shlex.quote(str(out))}")
    return " ".join(words)


def prepare_options():
    """The `prepare` config section as one shell-quoted JSON argument."""
    return shlex.quote(json.dumps(config["prepare"], sort_keys=True))


def dask_option():
    """`--dask-scheduler ADDRESS` when an existing Dask cluster is configured, else nothing."""
    address = config["dask_scheduler"]
    return f"--dask-scheduler {shlex.quote(address)}" if address else ""
