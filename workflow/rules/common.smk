# Shared helpers of the workflow: where each dataset lives, which scenes a split holds, and the
# commands and inputs the rules share. Every helper function lives here (the rule files hold rules
# only). The workflow only orchestrates: parsing is done by the pipeline package's readers.
import json
import shlex
from pathlib import Path

from pipeline.datasets import DATASETS

DATASET_NAMES = "|".join(DATASETS)  # wildcard constraint: one of the registered datasets
SCENE_IDS = "|".join(f"(?:{d.id_pattern})" for d in DATASETS.values())  # a scene id of any dataset
# Every path, param and wildcard in a `shell:` is quoted ({x:q}), or built here with shlex.quote,
# so folders with spaces or non-ASCII letters work and no id read from a dataset file reaches a shell.
WORK = Path(config["work_root"])
SYNTHETIC = Path(config["synthetic"]["root"])
LOGS = WORK / "logs"  # per work root: two configs (demo, ablation) never mix logs
ABLATION = WORK / "ablation"
EXPERIMENTS = Path(workflow.basedir) / "config" / "experiments"  # found from the Snakefile, not the cwd


# -- datasets --------------------------------------------------------------------------------------
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


def evaluated_models():
    """evaluate.experiments as {name: (checkpoint, label)}: a trained experiment's models/<name>/final.pt,
    or the external checkpoint an item names (e.g. the converted DGS release) with its report label."""
    models = {}
    for item in config["evaluate"]["experiments"]:
        if isinstance(item, str):
            models[item] = (WORK / "models" / item / "final.pt", item)
        else:
            models[item["name"]] = (Path(item["checkpoint"]), item.get("label", item["name"]))
    return models


def model_checkpoint(name):
    """The checkpoint that `predict` runs for `name` (an external one of evaluate.experiments, else the
    trained models/<name>/final.pt, also for the ablation's seeded runs) and its report label."""
    return evaluated_models().get(name, (WORK / "models" / name / "final.pt", name))


def scene_done_markers(dataset, split):
    """The `done` markers of every scene of a dataset's split (the merged manifest's inputs)."""
    return [WORK / dataset / split / scene / "done" for scene in dataset_scenes(dataset, split)]


def split_manifest(dataset, split):
    """The merged manifest of a dataset's split."""
    return WORK / dataset / split / "manifest.parquet"


def test_manifest(dataset):
    """The merged test manifest of `dataset`."""
    return split_manifest(dataset, "test")


# -- prepare ---------------------------------------------------------------------------------------
def prepare_options():
    """The `prepare` config section as one shell-quoted JSON argument."""
    return shlex.quote(json.dumps(config["prepare"], sort_keys=True))


def dask_option():
    """`--dask-scheduler ADDRESS` when an existing Dask cluster is configured, else nothing."""
    address = config["dask_scheduler"]
    return f"--dask-scheduler {shlex.quote(address)}" if address else ""


# -- train -----------------------------------------------------------------------------------------
def train_overlay():
    """The names of train.overlay (a name, a list or null) as a list."""
    overlay = config["train"]["overlay"] or []
    return [overlay] if isinstance(overlay, str) else list(overlay)


def train_configs(experiment):
    """Experiment files of a run: the overlay(s) (train.overlay, e.g. tiny) first, then the mode file."""
    return [EXPERIMENTS / f"{name}.yaml" for name in [*train_overlay(), experiment]]


def train_launcher():
    """One process, or torchrun with train.nproc processes (DDP; the global batch is split);
    a shell-quoted command prefix. Both run `dgs train` (python -m dgs train)."""
    n = config["train"]["nproc"]
    if n == 1:
        return "python -m dgs train"
    return shlex.join(["torchrun", "--standalone", "--nproc_per_node", str(int(n)), "-m", "dgs", "train"])


def train_gpus():
    """GPUs a training job asks for (the `gpu` resource the SLURM plugin turns into --gpus): one per
    torchrun process, none when train.device is cpu."""
    return 0 if config["train"]["device"] == "cpu" else config["train"]["nproc"]


def train_flags():
    """`--allow-cpu` when train.allow_cpu is set (a release-size model on a CPU is refused otherwise)."""
    return " --allow-cpu" if config["train"]["allow_cpu"] else ""


# -- evaluate and report ---------------------------------------------------------------------------
def evaluate_command(methods, datasets, protocols, out, figures=0):
    """The `dgs evaluate` command (shell-quoted) scoring `methods` (name -> folder) on the test
    sets of `datasets` under `protocols` (names, or inline parameter sets passed as JSON) into `out`.
    Points per mesh and which meshes are written come from the `evaluate` section, so every rule that
    scores predictions scores them the same way."""
    ev = config["evaluate"]
    words = ["python -m dgs evaluate"]
    words += [f"--method {shlex.quote(f'{name}={folder}')}" for name, folder in methods.items()]
    for dataset in datasets:
        words.append(f"--manifest {shlex.quote(f'{dataset}={test_manifest(dataset)}')}")
        words.append(f"--root {shlex.quote(f'{dataset}={dataset_root(dataset)}')}")
    words.append(
        "--protocols "
        + " ".join(shlex.quote(p if isinstance(p, str) else json.dumps(p, sort_keys=True)) for p in protocols)
    )
    words.append(f"--figures {int(figures)} --save-meshes {shlex.quote(ev['save_meshes'])}")
    words.append(f"--depth-source {shlex.quote(ev['depth_source'])}")
    if ev["samples"] is not None:
        words.append(f"--samples {int(ev['samples'])}")
    words.append(f"--out {shlex.quote(str(out))}")
    return " ".join(words)


def statistics_options(reference):
    """`--reference NAME --bootstrap B` of the report and ablation tables (evaluate section)."""
    return f"--reference {shlex.quote(reference)} --bootstrap {int(config['evaluate']['bootstrap'])}"


def trained_experiments():
    """The items of evaluate.experiments trained here (not external checkpoints)."""
    return [item for item in config["evaluate"]["experiments"] if isinstance(item, str)]


def evaluation_methods():
    """Method name (an experiment's report label) -> prediction folder: the configured experiments
    and external checkpoints (evaluated_models), then the external prediction folders."""
    methods = {label: WORK / "predictions" / name for name, (_, label) in evaluated_models().items()}
    methods.update({name: Path(folder) for name, folder in config["evaluate"]["methods"].items()})
    return methods


def prediction_markers(runs, datasets):
    """The `done` markers of the predictions of `runs` (model names) on the test sets of `datasets`."""
    return [WORK / "predictions" / run / d / "done" for run in runs for d in datasets]


def ablation_runs():
    """Run names `<experiment>-s<seed>` of the configured experiments × seeds."""
    return [f"{e}-s{s}" for e in config["train"]["ablation"] for s in config["ablation"]["seeds"]]


def demo_folders():
    """The folders the demo target lists for the user."""
    ev = WORK / "evaluation"
    return [
        WORK / "models" / config["train"]["experiment"],
        WORK / "predictions",
        ev / "meshes",
        ev / "figures",
        WORK / "report",
    ]


# -- objects ---------------------------------------------------------------------------------------
OBJECT_DATASET = "shapenet"
OBJECT_SPLITS = ["train", "val", "test"]


def objects_root():
    """The ShapeNet-layout root: shapenet_root, or the synthetic objects."""
    root = config["shapenet_root"]
    return Path(root) if root else SYNTHETIC / OBJECT_DATASET


def objects_ready():
    """The generator's completion marker when the synthetic objects stand in for ShapeNet."""
    return [] if config["shapenet_root"] else [SYNTHETIC / f"{OBJECT_DATASET}.complete"]


def object_manifest(split):
    return WORK / OBJECT_DATASET / split / "manifest.parquet"
