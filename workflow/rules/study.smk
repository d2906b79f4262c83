# The miniature SDF study (docs/sdf_study.md): every experiment of `train.ablation` trained with
# every seed of `ablation.seeds` exactly as the ablation trains them (rule train_seeded, run folders
# models/<experiment>-s<seed>/), then their validation accuracy against training wall time
# (benchmark.sdf_study). The first experiment of `train.ablation` is the baseline.


rule sdf_study:
    """Val near-surface accuracy vs training wall time of train.ablation × ablation.seeds."""
    input:
        [WORK / "models" / run / "final.pt" for run in ablation_runs()],
    output:
        WORK / "sdf_study" / "sdf_study.md",
        WORK / "sdf_study" / "val_curves.png",
    log:
        LOGS / "sdf_study.log",
    params:
        runs=WORK / "models",
        names=ablation_runs(),
        baseline=config["train"]["ablation"][0],
        out=WORK / "sdf_study",
    shell:
        "python -m benchmark.sdf_study --runs {params.runs:q} --names {params.names:q} --baseline {params.baseline:q}"
        " --out {params.out:q} > {log:q} 2>&1 && cat {output[0]:q}"
