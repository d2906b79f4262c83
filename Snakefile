# DGS toolkit workflow. Targets (see README):
#   prepare_scannet, prepare_matterport   per-frame training/test shards
#   train_dgs, evaluate, report           model training, benchmark, tables
#   ablation                              miniature gradient-mode ablation (table + loss curves)
#   sdf_study                             occupancy vs SDF, embeddings, schedules: val accuracy vs time
#   demo                                  everything available, on the embedded synthetic default
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/study.smk"


rule demo:
    """End to end on the configured (default: synthetic) data: prepare both datasets, train the
    configured experiment, predict and score the test sets, and write the report; lists the outputs."""
    default_target: True
    input:
        rules.prepare_scannet.input,
        rules.prepare_matterport.input,
        rules.train_dgs.input,
        rules.evaluate.output,
        rules.report.output,
    params:
        folders=[WORK / "models" / config["train"]["experiment"], WORK / "predictions", WORK / "evaluation" / "meshes",
                 WORK / "evaluation" / "figures", WORK / "report"],
    shell:
        "python workflow/scripts/list_outputs.py {input} {params.folders}"
