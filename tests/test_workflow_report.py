"""`snakemake --report report.html` is a results page: the benchmark table, the F1 histogram, the
Fig. 5-style figures and the loss curves are in it.

Running the workflow for real takes minutes, so the outputs of the evaluate, report and loss_curves
jobs are written here by the same commands the rules run (dgs report, dgs curves) from small
per-frame rows and a training log, the upstream files as empty stand-ins; Snakemake then finds the
targets up to date and builds the report from the files on disk (5 s)."""
from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import yaml

from dgs.cli import main as dgs

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCENES = {"train": "scene0000_00", "val": "scene0001_00", "test": "scene0707_00"}


def _png(path: Path, colour: str) -> None:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.fill([0, 1, 1], [0, 0, 1], color=colour)
    fig.savefig(path)
    plt.close(fig)


def _workspace(base: Path) -> Path:
    """A work root whose evaluate/report/loss_curves outputs exist; returns the config file."""
    synthetic, work = base / "synthetic", base / "work"
    (synthetic / "scannet").mkdir(parents=True)
    (synthetic / "scannet.complete").write_text("")
    for split, scene in SCENES.items():
        (synthetic / "scannet" / f"scannetv2_{split}.txt").write_text(scene + "\n")
        (work / "scannet" / split / scene).mkdir(parents=True)
        (work / "scannet" / split / scene / "done").write_text("")
        (work / "scannet" / split / "manifest.parquet").write_text("")
    run = work / "models" / "dgs"
    run.mkdir(parents=True)
    (run / "final.pt").write_text("")
    (run / "config.yaml").write_text(yaml.safe_dump({"optim": {"batch_size": 8}}))
    steps = np.arange(1, 41)
    log = pd.concat([pd.DataFrame({"step": steps, "tag": "train/loss", "value": 1.0 / steps}),
                     pd.DataFrame({"step": steps, "tag": "train/samples_per_s", "value": 40.0})])
    log.to_csv(run / "scalars.csv", index=False)
    (work / "predictions" / "dgs" / "scannet").mkdir(parents=True)
    (work / "predictions" / "dgs" / "scannet" / "done").write_text("")
    evaluation = work / "evaluation"
    (evaluation / "figures").mkdir(parents=True)
    _png(evaluation / "figures" / "dgs_scannet_scene0707_00_000000.png", "tab:green")
    rows = [dict(method="dgs", dataset="scannet", protocol="release", scene_id=SCENES["test"], frame_index=i,
                 fit_acc=0.1 + 0.01 * i, fit_f1=0.4 + 0.05 * i, fit_reason="") for i in range(4)]
    pd.DataFrame(rows).to_csv(evaluation / "per_frame.csv", index=False)
    assert dgs(["report", str(evaluation / "per_frame.csv"), "--out", str(work / "report")]) == 0
    assert dgs(["curves", "dgs", "--runs", str(work / "models"), "--out", str(work / "report" / "loss_curves.png")]) == 0
    config = base / "config.yaml"
    config.write_text(yaml.safe_dump({"synthetic": {"root": str(synthetic)}, "work_root": str(work),
                                      "evaluate": {"datasets": ["scannet"], "experiments": ["dgs"]}}))
    return config


def test_report_html_holds_the_table_and_the_figures(tmp_path: Path) -> None:
    config = _workspace(tmp_path)
    html = tmp_path / "report.html"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                           str(config), "--report", str(html), "evaluate", "report", "loss_curves"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    text = html.read_text()
    report = tmp_path / "work" / "report"
    table = pd.read_csv(report / "aggregated.csv")
    assert table["fit_f1"].iloc[0] == 47.5  # mean of 40, 45, 50, 55 (%), as dgs report computes it
    embedded = _embedded(text)
    assert embedded["aggregated.csv"] == (report / "aggregated.csv").read_bytes()  # the benchmark table
    figures = {"f1_histogram.png": report / "f1_histogram.png", "loss_curves.png": report / "loss_curves.png",
               "dgs_scannet_scene0707_00_000000.png": tmp_path / "work" / "evaluation" / "figures" /
               "dgs_scannet_scene0707_00_000000.png"}
    for name, path in figures.items():
        assert embedded[name] == path.read_bytes(), name
    for caption in ("Benchmark table", "Fig. 5-style renders", "Training loss", "per-frame F1"):
        assert caption in text, caption
    assert "Differentiable Gradient Sampling" in text  # the workflow description page


def _embedded(html: str) -> dict[str, bytes]:
    """The files a Snakemake report embeds (base64 data URIs), by file name."""
    found = re.findall(r"data:[\w/+.-]+;(?:charset=[\w-]+;)?filename=([^;\"]+);base64,([A-Za-z0-9+/=]+)", html)
    return {name: base64.b64decode(data) for name, data in found}
