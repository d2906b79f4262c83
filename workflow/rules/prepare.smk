# Per-frame training/test data: one job per (dataset, split, scene), Dask inside the job, then
# one merged manifest per split. A scene's folder is complete only once its `done` marker exists.


rule prepare_scene:
    """Prepare every selected frame of one scene (ScanNet) or house (Matterport) into HDF5 shards."""
    input:
        lambda wc: dataset_ready(wc.dataset),
    output:
        WORK / "{dataset}" / "{split}" / "{scene}" / "done",
    log:
        LOGS / "prepare" / "{dataset}" / "{split}" / "{scene}.log",
    benchmark:
        LOGS / "benchmarks" / "prepare" / "{dataset}" / "{split}" / "{scene}.tsv"
    wildcard_constraints:
        dataset=DATASET_NAMES,
        split="train|val|test",
        scene=SCENE_IDS,
    conda:
        "../envs/dgs.yaml"
    threads: 4
    params:
        root=lambda wc: dataset_root(wc.dataset),
        out=WORK,
        options=prepare_options(),
        dask=dask_option(),
    shell:
        "python -m dgs prepare --dataset {wildcards.dataset:q} --root {params.root:q}"
        " --split {wildcards.split:q} --scene {wildcards.scene:q} --out {params.out:q}"
        " --options {params.options} --workers {threads} {params.dask} > {log:q} 2>&1"


rule merge_manifest:
    """One manifest per (dataset, split) listing every frame of every scene, kept or skipped."""
    input:
        lambda wc: scene_done_markers(wc.dataset, wc.split),
    output:
        WORK / "{dataset}" / "{split}" / "manifest.parquet",
    log:
        LOGS / "prepare" / "{dataset}" / "{split}" / "manifest.log",
    wildcard_constraints:
        dataset=DATASET_NAMES,
        split="train|val|test",
    conda:
        "../envs/dgs.yaml"
    shell:
        "python -m dgs manifest merge --out {output:q} {input:q} > {log:q} 2>&1"


rule prepare_scannet:
    """Shards and manifests for the configured ScanNet splits."""
    input:
        [split_manifest("scannet", split) for split in config["scannet_splits"]],


rule prepare_matterport:
    """Shards and manifest for the Matterport3D cross-dataset test set (SPEC §5)."""
    input:
        test_manifest("matterport"),
