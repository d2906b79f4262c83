# Inference: a trained experiment's occupancy grids on one dataset's test frames, one
# `.npz` per frame (dgs_core.infer; docs/inference.md). The evaluate stage meshes and scores them.
# The job is resumable: frames already written are kept, `done` appears once all are there.


rule predict:
    """Run models/{experiment}/final.pt on the evaluate.resolution³ grid (128³) of every ok test frame of {dataset}."""
    input:
        model=WORK / "models" / "{experiment}" / "final.pt",
        manifest=WORK / "{dataset}" / "test" / "manifest.parquet",
    output:
        WORK / "predictions" / "{experiment}" / "{dataset}" / "done",
    log:
        LOGS / "predict" / "{experiment}" / "{dataset}.log",
    benchmark:
        LOGS / "benchmarks" / "predict" / "{experiment}" / "{dataset}.tsv"
    wildcard_constraints:
        dataset=DATASET_NAMES,
    threads: 4
    params:
        root=lambda wc: dataset_root(wc.dataset),
        out=lambda wc: WORK / "predictions" / wc.experiment,
        resolution=config["evaluate"]["resolution"],
        grid=config["evaluate"]["grid"],
        depth_source=config["evaluate"]["depth_source"],
    shell:
        "python -m dgs_core.infer --checkpoint {input.model} --manifest {input.manifest}"
        " --root {params.root} --out {params.out} --name {wildcards.experiment} --resolution {params.resolution}"
        " --grid {params.grid} --depth-source {params.depth_source}"
        " --device auto --threads {threads} > {log} 2>&1"
