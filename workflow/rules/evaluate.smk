# Evaluation and reports: score every experiment's predictions and every external method folder on
# the test frames of each dataset (dgs evaluate), then aggregate the per-frame rows into tables
# (dgs report) and plot the training curves (dgs curves). Predictions come from the `predict` rule
# (predict.smk). Outputs marked report(...) are the pages of `snakemake --report report.html`.


rule evaluate:
    """Score every method on every test frame under each protocol: per-frame CSV, meshes, figures."""
    input:
        predictions=prediction_markers(evaluated_models(), config["evaluate"]["datasets"]),
        manifests=[test_manifest(d) for d in config["evaluate"]["datasets"]],
    output:
        per_frame=WORK / "evaluation" / "per_frame.csv",
        figures=report(
            directory(WORK / "evaluation" / "figures"),
            patterns=["{figure}_{frame,[0-9]+}.png"],  # the per-frame renders (not the F1 histogram)
            caption="../report/figures.rst",
            category="Results",
            subcategory="Fig. 5-style renders",
        ),
    log:
        LOGS / "evaluate.log",
    benchmark:
        LOGS / "benchmarks" / "evaluate.tsv"
    conda:
        "../envs/dgs.yaml"
    threads: 4
    params:
        command=evaluate_command(
            evaluation_methods(),
            config["evaluate"]["datasets"],
            config["evaluate"]["protocols"],
            WORK / "evaluation",
            figures=config["evaluate"]["figures"],
        ),
    shell:
        # evaluate.figures = 0 writes no figure: the (empty) folder is still the rule's output
        "{params.command} --workers {threads} > {log:q} 2>&1 && mkdir -p {output.figures:q}"


rule report:
    """Aggregate the per-frame metrics into CSV / LaTeX / Markdown tables (N, failed frames, 95 % intervals,
    paired differences against evaluate.reference), per-scene tables and the F1 histogram."""
    input:
        rules.evaluate.output.per_frame,
    output:
        table=report(
            WORK / "report" / "aggregated.csv",
            caption="../report/table.rst",
            category="Results",
            subcategory="Tables",
        ),
        markdown=WORK / "report" / "table_fit.md",
        histogram=report(
            WORK / "report" / "f1_histogram.png",
            caption="../report/histogram.rst",
            category="Results",
            subcategory="Tables",
        ),
    log:
        LOGS / "report.log",
    conda:
        "../envs/dgs.yaml"
    params:
        out=WORK / "report",
        options=statistics_options(config["evaluate"]["reference"] or next(iter(evaluated_models()))),
    shell:
        "python -m dgs report {input:q} --out {params.out:q} {params.options} > {log:q} 2>&1"


rule loss_curves:
    """Training-loss curves of the scored experiments (vs step and vs wall time)."""
    input:
        [WORK / "models" / e / "final.pt" for e in trained_experiments()],
    output:
        report(
            WORK / "report" / "loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Training",
        ),
    log:
        LOGS / "loss_curves.log",
    conda:
        "../envs/dgs.yaml"
    params:
        runs=WORK / "models",
        names=trained_experiments(),
    shell:
        "python -m dgs curves {params.names:q} --runs {params.runs:q} --out {output:q} > {log:q} 2>&1"
