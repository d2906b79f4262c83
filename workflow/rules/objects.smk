# The object-level protocol (SPEC §5.13): single objects in the ShapeNetCore v2 layout (the generated
# synthetic objects when shapenet_root is null), prepared into object shards, a model trained on
# them per experiment of objects.experiments, its grids over the normalised cube, and the scores
# (IoU, Chamfer-L1/L2, normal consistency; mean and median). Commands: dgs synth-objects,
# prepare-objects, train, predict-objects, evaluate-objects (helpers in common.smk).


rule synthesize_objects:
    """Generate synthetic single objects (composite chairs, tables, lamps, ...) in the ShapeNetCore v2
    layout, with rendered views and train/val/test lists."""
    output:
        SYNTHETIC / f"{OBJECT_DATASET}.complete",
    log:
        LOGS / "synthetic" / f"{OBJECT_DATASET}.log",
    conda:
        "../envs/dgs.yaml"
    params:
        root=SYNTHETIC / OBJECT_DATASET,
        preset=config["synthetic"]["preset"],
        seed=config["synthetic"]["seed"],
    shell:
        "python -m dgs synth-objects --root {params.root:q} --preset {params.preset:q}"
        " --seed {params.seed:q} --quiet > {log:q} 2>&1"


rule prepare_object_split:
    """Occupancy samples (uniform + near-surface, labelled by the watertight mesh) and the views of every
    model of one split, into object shards and a manifest."""
    input:
        objects_ready(),
    output:
        WORK / OBJECT_DATASET / "{split}" / "manifest.parquet",
    log:
        LOGS / "prepare" / OBJECT_DATASET / "{split}.log",
    benchmark:
        LOGS / "benchmarks" / "prepare" / OBJECT_DATASET / "{split}.tsv"
    wildcard_constraints:
        split="|".join(OBJECT_SPLITS),
    conda:
        "../envs/dgs.yaml"
    params:
        dataset=OBJECT_DATASET,
        root=objects_root(),
        out=WORK,
        options=json.dumps(config["objects"]["prepare"], sort_keys=True),
    shell:
        "python -m dgs prepare-objects --dataset {params.dataset:q} --root {params.root:q}"
        " --split {wildcards.split:q} --out {params.out:q} --options {params.options:q} --quiet > {log:q} 2>&1"


rule prepare_objects:
    """Object shards and manifests of every split."""
    input:
        [object_manifest(split) for split in OBJECT_SPLITS],


rule train_object_experiment:
    """Train config/experiments/{experiment}.yaml (after train.overlay) on the object shards."""
    input:
        train=object_manifest("train"),
        val=object_manifest("val"),
        configs=lambda wc: train_configs(wc.experiment),
    output:
        WORK / "object_models" / "{experiment}" / "final.pt",
    log:
        LOGS / "train_objects" / "{experiment}.log",
    benchmark:
        LOGS / "benchmarks" / "train_objects" / "{experiment}.tsv"
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    conda:
        "../envs/dgs.yaml"
    threads: 2
    resources:
        gpu=train_gpus(),
    params:
        launcher=train_launcher(),
        out=lambda wc: WORK / "object_models" / wc.experiment,
        device=config["train"]["device"],
    shell:
        "{params.launcher} --config {input.configs:q} --train-manifest {input.train:q} --val-manifest {input.val:q}"
        " --out {params.out:q} --resume auto --device {params.device:q} --threads {threads} > {log:q} 2>&1"


rule predict_objects:
    """Occupancy grids of a trained object experiment over the normalised cube, one per test model."""
    input:
        model=WORK / "object_models" / "{experiment}" / "final.pt",
        manifest=object_manifest("test"),
    output:
        WORK / "object_predictions" / "{experiment}" / OBJECT_DATASET / "done",
    log:
        LOGS / "predict_objects" / "{experiment}.log",
    benchmark:
        LOGS / "benchmarks" / "predict_objects" / "{experiment}.tsv"
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
    conda:
        "../envs/dgs.yaml"
    threads: 4
    params:
        out=lambda wc: WORK / "object_predictions" / wc.experiment,
        resolution=config["objects"]["resolution"],
        grid=config["evaluate"]["grid"],
    shell:
        "python -m dgs predict-objects --checkpoint {input.model:q} --manifest {input.manifest:q}"
        " --out {params.out:q} --name {wildcards.experiment:q} --resolution {params.resolution:q}"
        " --grid {params.grid:q} --device auto --threads {threads} > {log:q} 2>&1"


rule objects:
    """The object protocol: IoU, Chamfer-L1/L2 and normal consistency of every objects.experiments model
    on the test objects (per-model CSV, mean/median summary)."""
    input:
        predictions=[
            WORK / "object_predictions" / e / OBJECT_DATASET / "done" for e in config["objects"]["experiments"]
        ],
        manifest=object_manifest("test"),
        ready=objects_ready(),
    output:
        WORK / "objects_evaluation" / "summary.md",
    log:
        LOGS / "objects_evaluation.log",
    benchmark:
        LOGS / "benchmarks" / "objects_evaluation.tsv"
    conda:
        "../envs/dgs.yaml"
    params:
        methods=[f"{e}={WORK / 'object_predictions' / e}" for e in config["objects"]["experiments"]],
        root=objects_root(),
        samples=config["objects"]["samples"],
        out=WORK / "objects_evaluation",
    shell:
        "python -m dgs evaluate-objects --method {params.methods:q} --manifest {input.manifest:q} --root {params.root:q}"
        " --samples {params.samples:q} --out {params.out:q} > {log:q} 2>&1 && cat {output:q}"
