# DGS toolkit workflow. Targets (see README):
#   prepare_scannet, prepare_matterport   per-frame training/test shards
#   train_dgs, evaluate, report           model training, benchmark, tables
#   ablation                              miniature gradient-mode ablation (table + loss curves)
#   prepare_objects, objects              object-level protocol (IoU, Chamfer-L1/L2, normal consistency)
#   sdf_study                             occupancy vs SDF, embeddings, schedules: val accuracy vs time
#   demo                                  everything available, on the embedded synthetic default
# Every file of the workflow (configs, schema, experiment files, scripts) is found from this file's
# folder, so `snakemake -s /path/to/repo/Snakefile --directory /scratch/run` works from anywhere; the
# working directory holds the outputs (relative work_root / synthetic.root are relative to it).
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")


configfile: Path(workflow.basedir) / "config" / "config.yaml"


validate(config, Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/objects.smk"
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
        rules.loss_curves.output,
    log:
        LOGS / "demo.log",
    conda:
        "workflow/envs/dgs.yaml"
    params:
        script=Path(workflow.basedir) / "workflow" / "scripts" / "list_outputs.py",
        folders=demo_folders(),
    shell:
        "python {params.script:q} {input:q} {params.folders:q} 2>&1 | tee {log:q}"
