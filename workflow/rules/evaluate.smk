# Evaluation and reports (issue 4). The metric library exists in `benchmark/`; the stages that run
# the trained model over the test frames need training (issue 6) and say so when run.


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
    """Aggregate per-frame metrics into CSV / LaTeX / Markdown tables (not available yet: issue 4)."""
    input:
        rules.evaluate.output,
    output:
        WORK / "report" / "table.md",
    log:
        LOGS / "report.log",
    shell:
        "python workflow/scripts/unavailable.py report 'issue 4 (report stage)' {input} 2> {log}"
