# Inference: a model's occupancy grids on one dataset's test frames, one `.npz` per frame
# (dgs_core.infer; docs/inference.md). The model is a trained experiment's final.pt or an external
# checkpoint named in evaluate.experiments (e.g. the converted DGS release). The evaluate stage
# meshes and scores them. The job is resumable: frames already written are kept, `done` appears
# once all are there.


rule predict:
    """Run {experiment}'s checkpoint on the evaluate.resolution³ grid (128³) of every ok test frame of {dataset}."""
    input:
        model=lambda wc: model_checkpoint(wc.experiment)[0],
        manifest=WORK / "{dataset}" / "test" / "manifest.parquet",
    output:
        WORK / "predictions" / "{experiment}" / "{dataset}" / "done",
    log:
        LOGS / "predict" / "{experiment}" / "{dataset}.log",
    benchmark:
        LOGS / "benchmarks" / "predict" / "{experiment}" / "{dataset}.tsv"
    wildcard_constraints:
        dataset=DATASET_NAMES,
    conda:
        "../envs/dgs.yaml"
    threads: 4
    params:
        root=lambda wc: dataset_root(wc.dataset),
        out=lambda wc: WORK / "predictions" / wc.experiment,
        resolution=config["evaluate"]["resolution"],
        grid=config["evaluate"]["grid"],
        label=lambda wc: model_checkpoint(wc.experiment)[1],
        depth_source=config["evaluate"]["depth_source"],
    shell:
        "python -m dgs predict --checkpoint {input.model:q} --manifest {input.manifest:q}"
        " --root {params.root:q} --out {params.out:q} --name {params.label:q}"
        " --resolution {params.resolution:q} --grid {params.grid:q} --depth-source {params.depth_source:q}"
        " --device auto --threads {threads} > {log:q} 2>&1"
