# Training: `dgs train` (or torchrun with train.nproc processes) on the prepared ScanNet train split,
# validating on val. A run folder WORK/models/<experiment>/ holds the config, scalars.csv, tb/
# (scalars, validation images and meshes), checkpoints/ and final.pt; a killed job resumes from its
# newest checkpoint when rerun (--resume auto). docs/training.md.


rule train_dgs:
    """Train the configured experiment (train.experiment, default dgs): models/<experiment>/final.pt."""
    input:
        WORK / "models" / config["train"]["experiment"] / "final.pt",


rule train_experiment:
    """Train config/experiments/{experiment}.yaml (after the overlay) into models/{experiment}/final.pt."""
    input:
        train=split_manifest("scannet", "train"),
        val=split_manifest("scannet", "val"),
        configs=lambda wc: train_configs(wc.experiment),
    output:
        WORK / "models" / "{experiment}" / "final.pt",
    log:
        LOGS / "train" / "{experiment}.log",
    benchmark:
        LOGS / "benchmarks" / "train" / "{experiment}.tsv"
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    conda:
        "../envs/dgs.yaml"
    threads: 2
    resources:
        gpu=train_gpus(),
    params:
        launcher=train_launcher(),
        out=lambda wc: WORK / "models" / wc.experiment,
        device=config["train"]["device"],
        flags=train_flags(),
        overrides="",  # extra shell-quoted `--set KEY=VALUE` arguments (train_seeded sets the seed)
    shell:
        "{params.launcher} --config {input.configs:q} --train-manifest {input.train:q}"
        " --val-manifest {input.val:q} --out {params.out:q} --resume auto --device {params.device:q}"
        " --threads {threads}{params.flags}{params.overrides} > {log:q} 2>&1"


rule train_ablation:
    """Every experiment of train.ablation (paper Tab. 1/6: dgs, nograd, fixed_encoder, numerical, autograd)."""
    input:
        [WORK / "models" / name / "final.pt" for name in config["train"]["ablation"]],
