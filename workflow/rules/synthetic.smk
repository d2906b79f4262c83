# The embedded default: when a dataset root is unset, generate that dataset in its genuine file
# formats. A checkpoint, because the scene list is only known once the files exist. The generator
# writes `<root>.complete` last, so a killed run is regenerated rather than trusted.


checkpoint synthesize:
    """Generate the synthetic root of {dataset} (ScanNet v2: scans/, scans_test/, label table, split
    lists; Matterport3D: houses + metadata/category_mapping.tsv)."""
    output:
        SYNTHETIC / "{dataset}.complete",
    log:
        LOGS / "synthetic" / "{dataset}.log",
    wildcard_constraints:
        dataset=DATASET_NAMES,
    conda:
        "../envs/dgs.yaml"
    params:
        root=SYNTHETIC,
        preset=config["synthetic"]["preset"],
        seed=config["synthetic"]["seed"],
    shell:
        "python -m dgs synth --root {params.root:q} --dataset {wildcards.dataset:q}"
        " --preset {params.preset:q} --seed {params.seed:q} > {log:q} 2>&1"
