# Evaluation and reports (issue 4): score every experiment's predictions and every external method
# folder on the test frames of each dataset (benchmark.evaluate), then aggregate the per-frame rows
# into tables (benchmark.report). Predictions come from the `predict` rule (predict.smk).


def evaluation_methods():
    """Method name -> prediction folder: the configured experiments, then the external methods."""
    methods = {e: WORK / "predictions" / e for e in config["evaluate"]["experiments"]}
    methods.update({name: Path(folder) for name, folder in config["evaluate"]["methods"].items()})
    return methods


def evaluation_arguments():
    """--method/--manifest/--root options of benchmark.evaluate, shell-quoted."""
    pairs = [("--method", name, folder) for name, folder in evaluation_methods().items()]
    for dataset in config["evaluate"]["datasets"]:
        pairs.append(("--manifest", dataset, test_manifest(dataset)))
        pairs.append(("--root", dataset, dataset_root(dataset)))
    return " ".join(f"{option} {shlex.quote(f'{key}={value}')}" for option, key, value in pairs)


def test_manifest(dataset):
    """The merged test manifest of `dataset`."""
    return WORK / dataset / "test" / "manifest.parquet"


rule evaluate:
    """Score every method on every test frame under each protocol: per-frame CSV, meshes, figures."""
    input:
        predictions=[
            WORK / "predictions" / e / d / "done"
            for e in config["evaluate"]["experiments"]
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
        arguments=evaluation_arguments(),
        protocols=" ".join(config["evaluate"]["protocols"]),
        figures=config["evaluate"]["figures"],
        samples=config["evaluate"]["samples"],
        clip="" if config["evaluate"]["clip_gt"] else "--no-clip-gt",
        out=WORK / "evaluation",
    shell:
        "python -m benchmark.evaluate {params.arguments} --protocols {params.protocols}"
        " --figures {params.figures} --samples {params.samples} {params.clip} --workers {threads}"
        " --out {params.out} > {log} 2>&1"


rule report:
    """Aggregate the per-frame metrics into CSV / LaTeX / Markdown tables, per-scene tables and the F1 histogram."""
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
