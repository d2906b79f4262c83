# The miniature ablation (paper Tab. 1/6): every experiment of `train.ablation`
# trained with every seed of `ablation.seeds` (run folders models/<experiment>-s<seed>/), each
# predicted and scored on the `ablation.datasets` test sets, then one table and the loss curves
# (dgs ablation). Uses the same training, inference and evaluation entry points as the
# main targets; only the run names and the seed differ.


# train_experiment with optim.seed = {seed}, into models/{experiment}-s{seed}/ (same inputs, command
# and resources; only the run name and the seed differ).
use rule train_experiment as train_seeded with:
    output:
        WORK / "models" / "{experiment}-s{seed}" / "final.pt",
    log:
        LOGS / "train" / "{experiment}-s{seed}.log",
    benchmark:
        LOGS / "benchmarks" / "train" / "{experiment}-s{seed}.tsv"
    wildcard_constraints:
        experiment="[A-Za-z0-9_]+",
        seed="[0-9]+",
    params:
        launcher=train_launcher(),
        out=lambda wc: WORK / "models" / f"{wc.experiment}-s{wc.seed}",
        device=config["train"]["device"],
        flags=train_flags(),
        overrides=lambda wc: f" --set {shlex.quote(f'optim.seed={wc.seed}')}",


rule evaluate_ablation:
    """Score every ablation run's predictions on the ablation test sets (one per-frame CSV)."""
    input:
        predictions=prediction_markers(ablation_runs(), config["ablation"]["datasets"]),
        manifests=[test_manifest(d) for d in config["ablation"]["datasets"]],
    output:
        ABLATION / "per_frame.csv",
    log:
        LOGS / "ablation" / "evaluate.log",
    conda:
        "../envs/dgs.yaml"
    threads: 4
    params:
        command=evaluate_command(
            {run: WORK / "predictions" / run for run in ablation_runs()},
            config["ablation"]["datasets"],
            [config["ablation"]["protocol"]],
            ABLATION,
        ),
    shell:
        "{params.command} --workers {threads} > {log:q} 2>&1"


rule ablation:
    """The ablation table (F1 / Chamfer mean ± std over seeds, 95 % intervals over seeds × scenes, differences
    to the first experiment of train.ablation) and the training-loss curves."""
    input:
        rules.evaluate_ablation.output,
    output:
        table=report(
            ABLATION / "ablation.csv",
            caption="../report/ablation.rst",
            category="Ablation",
        ),
        markdown=ABLATION / "ablation.md",
        curves=report(
            ABLATION / "loss_curves.png",
            caption="../report/ablation_curves.rst",
            category="Ablation",
        ),
    log:
        LOGS / "ablation" / "table.log",
    conda:
        "../envs/dgs.yaml"
    params:
        runs=WORK / "models",
        protocol=config["ablation"]["protocol"],
        options=statistics_options(config["train"]["ablation"][0]),
        out=ABLATION,
    shell:
        "python -m dgs ablation {input:q} --runs {params.runs:q} --protocol {params.protocol:q}"
        " {params.options} --out {params.out:q} > {log:q} 2>&1 && cat {output.markdown:q}"
