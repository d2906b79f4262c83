# Evaluation and reports (issue 4). The metric library and the report aggregation exist in
# `benchmark/`; the stage that runs the trained model over the test frames needs training (issue 6)
# and says so when run.


rule evaluate:
    """Run the trained model on the ScanNet test frames and score them (not available yet: issue 4)."""
    input:
        model=rules.train_dgs.output,
        test=lambda wc: scannet_split_manifest("test"),
    output:
        WORK / "evaluation" / "per_frame.csv",
    log:
        LOGS / "evaluate.log",
    shell:
        "python workflow/scripts/unavailable.py evaluate 'issue 4 (evaluate stage)' {input} 2> {log}"


rule report:
    """Aggregate the per-frame metrics into CSV / LaTeX / Markdown tables and the F1 histogram."""
    input:
        rules.evaluate.output,
    output:
        WORK / "report" / "table_fit.md",
    log:
        LOGS / "report.log",
    params:
        out=WORK / "report",
    shell:
        "python -m benchmark.report {input} --out {params.out} > {log} 2>&1"
