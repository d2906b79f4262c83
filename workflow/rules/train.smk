# Training: `python -m dgs_core.train` (or torchrun with train.nproc processes) on the
# prepared ScanNet train split, validating on val. A run folder WORK/models/<experiment>/ holds the
# config, scalars.csv, tb/, checkpoints/ and final.pt; a killed job resumes from its newest
# checkpoint when rerun (--resume auto). docs/training.md.


def train_overlay():
    """The names of train.overlay (a name, a list or null) as a list."""
    overlay = config["train"]["overlay"] or []
    return [overlay] if isinstance(overlay, str) else list(overlay)


def train_configs(experiment):
    """Experiment files of a run: the overlay(s) (train.overlay, e.g. tiny) first, then the mode file."""
    return [f"config/experiments/{name}.yaml" for name in [*train_overlay(), experiment]]


def train_launcher():
    """One process, or torchrun with train.nproc processes (DDP; the global batch is split)."""
    n = config["train"]["nproc"]
    if n == 1:
        return "python -m dgs_core.train"
    return f"torchrun --standalone --nproc_per_node {n} -m dgs_core.train"


def train_gpus():
    """GPUs a training job asks for (the `gpu` resource the SLURM plugin turns into --gpus): one per
    torchrun process, none when train.device is cpu."""
    return 0 if config["train"]["device"] == "cpu" else config["train"]["nproc"]


rule train_dgs:
    """Train the configured experiment (train.experiment, default dgs): models/<experiment>/final.pt."""
    input:
        WORK / "models" / config["train"]["experiment"] / "final.pt",


rule train_experiment:
    """Train config/experiments/{experiment}.yaml (after the overlay) into models/{experiment}/final.pt."""
    input:
        train=lambda wc: scannet_split_manifest("train"),
        val=lambda wc: scannet_split_manifest("val"),
        configs=lambda wc: train_configs(wc.experiment),
    output:
        WORK / "models" / "{experiment}" / "final.pt",
    log:
        LOGS / "train" / "{experiment}.log",
    benchmark:
        LOGS / "benchmarks" / "train" / "{experiment}.tsv"
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    threads: 2
    resources:
        gpu=train_gpus(),
    params:
        launcher=train_launcher(),
        out=lambda wc: WORK / "models" / wc.experiment,
        device=config["train"]["device"],
        overrides="",  # extra `--set KEY=VALUE` arguments (train_seeded sets the seed)
    shell:
        "{params.launcher} --config {input.configs} --train-manifest {input.train}"
        " --val-manifest {input.val} --out {params.out} --resume auto --device {params.device}"
        " --threads {threads}{params.overrides} > {log} 2>&1"


rule train_ablation:
    """Every experiment of train.ablation (paper Tab. 1/6: dgs, nograd, fixed_encoder, numerical, autograd)."""
    input:
        [WORK / "models" / name / "final.pt" for name in config["train"]["ablation"]],
