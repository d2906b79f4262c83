# Training (issue 6). The rule already wires the inputs the trainer consumes, so `snakemake -n
# train_dgs` shows the preparation it depends on; the trainer itself has not landed yet and the
# job says so instead of failing obscurely.


rule train_dgs:
    """Train the DGS model on the prepared ScanNet train/val shards (not available yet: issue 6)."""
    input:
        train=lambda wc: scannet_split_manifest("train"),
        val=lambda wc: scannet_split_manifest("val"),
    output:
        WORK / "models" / "dgs" / "final.pt",
    log:
        LOGS / "train_dgs.log",
    shell:
        "python workflow/scripts/unavailable.py train_dgs 'issue 6 (training loop)' {input} 2> {log}"
