# Evaluation and reports: score every experiment's predictions and every external method
# folder on the test frames of each dataset (benchmark.evaluate), then aggregate the per-frame rows
# into tables (benchmark.report). Predictions come from the `predict` rule (predict.smk).


def evaluation_methods():
    """Method name (an experiment's report label) -> prediction folder: the configured experiments
    and external checkpoints (evaluated_models), then the external prediction folders."""
    methods = {label: WORK / "predictions" / name for name, (_, label) in evaluated_models().items()}
    methods.update({name: Path(folder) for name, folder in config["evaluate"]["methods"].items()})
    return methods


rule evaluate:
    """Score every method on every test frame under each protocol: per-frame CSV, meshes, figures."""
    input:
        predictions=[
            WORK / "predictions" / e / d / "done"
            for e in evaluated_models()
            for d in config["evaluate"]["datasets"]
        ],
        manifests=[test_manifest(d) for d in config["evaluate"]["datasets"]],
    output:
        WORK / "evaluation" / "per_frame.csv",
    log:
        LOGS / "evaluate.log",
    benchmark:
        LOGS / "benchmarks" / "evaluate.tsv"
    threads: 4
    params:
        command=evaluate_command(evaluation_methods(), config["evaluate"]["datasets"],
                                 config["evaluate"]["protocols"], WORK / "evaluation",
                                 figures=config["evaluate"]["figures"]),
    shell:
        "{params.command} --workers {threads} > {log:q} 2>&1"


rule report:
    """Aggregate the per-frame metrics into CSV / LaTeX / Markdown tables (N, failed frames, 95 % intervals,
    paired differences against evaluate.reference), per-scene tables and the F1 histogram."""
    input:
        rules.evaluate.output,
    output:
        WORK / "report" / "table_fit.md",
    log:
        LOGS / "report.log",
    params:
        out=WORK / "report",
        options=statistics_options(config["evaluate"]["reference"] or next(iter(evaluated_models()))),
    shell:
        "python -m benchmark.report {input:q} --out {params.out:q} {params.options} > {log:q} 2>&1"
