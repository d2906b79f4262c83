"""Is this folder a complete dataset root? (``dgs check-root ROOT``)

Runs the layout check of each registered dataset (:data:`pipeline.datasets.DATASETS`; or only
``--dataset``) on ROOT. A complete root prints its scene count per split and exits 0; otherwise
every missing file is listed with how to get it, and the command exits 2. With the default
``--dataset auto`` the dataset whose check finds the fewest problems is the one reported.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from pipeline.cli import command_parser
from pipeline.datasets import DATASETS, DatasetSpec
from pipeline.errors import InputError, UserError, run_main


def closest_dataset(root: Path, names: Sequence[str]) -> tuple[DatasetSpec, list[str]]:
    """The dataset of ``names`` whose layout check finds the fewest problems in ``root``, and those
    problems (ties go to the first name)."""
    checked = [(DATASETS[name], DATASETS[name].check_layout(root)) for name in names]
    return min(checked, key=lambda pair: len(pair[1]))


def scene_counts(spec: DatasetSpec, root: Path) -> dict[str, int]:
    """Scenes per split of a complete root, as the workflow will list them."""
    return {split: len(spec.scenes(root, split)) for split in spec.splits}


def main(argv: Sequence[str] | None = None) -> int:
    ap = command_parser("python -m pipeline.check_root", __doc__.split("\n")[0])
    ap.add_argument("root", type=Path, help="the dataset root folder to check")
    ap.add_argument("--dataset", default="auto", choices=["auto", *DATASETS],
                    help="the layout to check against; auto = whichever fits best")
    args = ap.parse_args(argv)
    names = list(DATASETS) if args.dataset == "auto" else [args.dataset]
    spec, problems = closest_dataset(args.root, names)
    if problems:
        print(f"{args.root}: not a complete {spec.title} root ({len(problems)} problems):")
        for problem in problems:
            print(f"  - {problem}")
        raise InputError(f"{args.root} is not a complete {spec.title} root: fix the {len(problems)} "
                         f"problems listed above (docs/formats.md describes the layout)")
    try:
        counts = scene_counts(spec, args.root)
    except UserError as exc:  # the files exist but a split list or house folder is malformed
        raise InputError(f"{args.root}: {exc}") from exc
    listed = ", ".join(f"{n} {split}" for split, n in counts.items())
    print(f"{args.root}: a complete {spec.title} root ({listed} scenes); "
          f"prepare it with --config {spec.name}_root={args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m pipeline.check_root"))
