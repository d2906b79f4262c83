"""``dgs <command> [options]``: the dispatcher of the toolkit's commands.

Each command is a ``main(argv)`` function named by a ``"module:function"`` string in
:data:`COMMANDS` and imported only when it runs, so ``dgs --help`` is fast and this module imports
nothing of the packages. Adding a command is one line in :data:`COMMANDS`. Every command runs
through :func:`pipeline.errors.run_main`: an expected error (bad input, configuration or file)
prints one line ``dgs <command>: error: …`` and exits 2; ``--debug`` shows its traceback.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable, NamedTuple, Sequence


class Command(NamedTuple):
    target: str  # "module:function" of a main(argv) -> int | None
    summary: str  # one line for `dgs --help`


COMMANDS: dict[str, Command] = {
    "check-root": Command("pipeline.check_root:main", "is this a complete ScanNet / Matterport3D root? what is missing"),
    "synth": Command("pipeline.synthetic.cli:main", "generate the synthetic ScanNet / Matterport3D roots"),
    "prepare": Command("pipeline.prepare:main", "prepare scenes into per-frame HDF5 shards + manifest"),
    "manifest": Command("pipeline.manifest:main", "merge or summarise manifests"),
    "train": Command("dgs.training:main", "train an experiment (TensorBoard scalars, images, meshes)"),
    "predict": Command("dgs_core.infer:main", "occupancy grids of a test manifest's frames"),
    "evaluate": Command("benchmark.evaluate:main", "score predictions: per-frame metrics, meshes, figures"),
    "report": Command("benchmark.report:main", "tables and histograms from per-frame metrics"),
    "ablation": Command("benchmark.ablation:main", "the ablation table and loss curves"),
    "curves": Command("benchmark.ablation:curves_main", "training-loss curves of run folders (PNG)"),
    "sdf-study": Command("benchmark.sdf_study:main", "the miniature SDF study: val accuracy vs training wall time"),
    "inspect": Command("benchmark.inspector:main", "look at a shard's frame or a prediction: PNG panel + PLY"),
    "synth-objects": Command("pipeline.synthetic.objects:main", "generate synthetic objects in the ShapeNetCore v2 layout"),
    "prepare-objects": Command("pipeline.prepare_objects:main", "object occupancy samples and views into object shards"),
    "predict-objects": Command("dgs_core.infer_objects:main", "occupancy grids over the normalised cube of test objects"),
    "evaluate-objects": Command("benchmark.objects:main", "the object protocol: IoU, Chamfer-L1/L2, normal consistency"),
    "predict-image": Command("dgs.predict_image:main", "any photo in, mesh out: depth, coloured mesh, picture"),
    "convert-release": Command("dgs_core.release:main", "the DGS release weights -> a toolkit checkpoint"),
    "export-release": Command("dgs_core.release:export_main", "a release-architecture checkpoint -> the release's two files"),
    "run": Command("dgs.run:main", "run the Snakemake workflow (its Snakefile, from any folder)"),
}
"""Every ``dgs`` sub-command, in the order ``dgs --help`` lists them."""


def load(name: str) -> Callable[[list[str]], int | None]:
    """The ``main`` function of command ``name`` (its module imported now)."""
    module, _, function = COMMANDS[name].target.partition(":")
    return getattr(importlib.import_module(module), function)


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: dgs <command> [options]   (dgs <command> --help: its options and defaults)", "",
             "Single-view 3D scene reconstruction with Differentiable Gradient Sampling: data, training,",
             "evaluation. Add --debug to any command to see the traceback of an error.", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {command.summary}" for name, command in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to a command; returns the exit status."""
    from pipeline.errors import EXIT_USER_ERROR, run_main

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else EXIT_USER_ERROR
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"dgs: error: unknown command {name!r}; the commands are: {', '.join(COMMANDS)}", file=sys.stderr)
        return EXIT_USER_ERROR
    return run_main(load(name), rest, prog=f"dgs {name}")

