# The embedded default: when a dataset root is unset, generate that dataset in its genuine file
# formats. Checkpoints, because the scene list is only known once the files exist. The generator
# writes `<root>.complete` last, so a killed run is regenerated rather than trusted.


checkpoint synthesize_scannet:
    """Generate the synthetic ScanNet v2 root (scans/, scans_test/, label table, split lists)."""
    output:
        SYNTHETIC / "scannet.complete",
    log:
        LOGS / "synthetic" / "scannet.log",
    params:
        preset=config["synthetic"]["preset"],
        seed=config["synthetic"]["seed"],
    shell:
        "python -m pipeline.synthetic --root {SYNTHETIC} --dataset scannet"
        " --preset {params.preset} --seed {params.seed} > {log} 2>&1"


checkpoint synthesize_matterport:
    """Generate the synthetic Matterport3D root (houses + metadata/category_mapping.tsv)."""
    output:
        SYNTHETIC / "matterport.complete",
    log:
        LOGS / "synthetic" / "matterport.log",
    params:
        preset=config["synthetic"]["preset"],
        seed=config["synthetic"]["seed"],
    shell:
        "python -m pipeline.synthetic --root {SYNTHETIC} --dataset matterport"
        " --preset {params.preset} --seed {params.seed} > {log} 2>&1"
