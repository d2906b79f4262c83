# The miniature SDF study (docs/sdf_study.md): every experiment of `train.ablation` trained with
# every seed of `ablation.seeds` exactly as the ablation trains them (rule train_seeded, run folders
# models/<experiment>-s<seed>/), the experiments' step times measured round-robin in one process
# (benchmarks/bench_study_step.py), then validation accuracy against training wall time
# (benchmark.sdf_study). The first experiment of `train.ablation` is the baseline.

STUDY = WORK / "sdf_study"


rule study_step_times:
    """Seconds per training step of each experiment of train.ablation, timed round-robin."""
    input:
        train=split_manifest("scannet", "train"),
        configs=[EXPERIMENTS / f"{name}.yaml" for name in train_overlay() + config["train"]["ablation"]],
    output:
        STUDY / "step_seconds.json",
    log:
        LOGS / "sdf_study" / "step_seconds.log",
    conda:
        "../envs/dgs.yaml"
    threads: 2
    params:
        script=Path(workflow.basedir) / "benchmarks" / "bench_study_step.py",
        overlay=train_overlay(),
        experiments=config["train"]["ablation"],
    shell:
        "python {params.script:q} --manifest {input.train:q} --overlay {params.overlay:q}"
        " --experiments {params.experiments:q} --steps 30 --threads {threads} --json {output:q} > {log:q} 2>&1"


rule sdf_study:
    """Val near-surface accuracy vs training wall time of train.ablation × ablation.seeds."""
    input:
        runs=[WORK / "models" / run / "final.pt" for run in ablation_runs()],
        step_seconds=rules.study_step_times.output,
    output:
        table=STUDY / "sdf_study.md",
        csv=report(
            STUDY / "sdf_study.csv",
            caption="../report/sdf_study.rst",
            category="SDF study",
        ),
        curves=report(
            STUDY / "val_curves.png",
            caption="../report/sdf_study_curves.rst",
            category="SDF study",
        ),
    log:
        LOGS / "sdf_study" / "table.log",
    conda:
        "../envs/dgs.yaml"
    params:
        runs=WORK / "models",
        names=ablation_runs(),
        baseline=config["train"]["ablation"][0],
        out=STUDY,
    shell:
        "python -m dgs sdf-study --runs {params.runs:q} --names {params.names:q} --baseline {params.baseline:q}"
        " --step-seconds {input.step_seconds:q} --out {params.out:q} > {log:q} 2>&1 && cat {output.table:q}"
