"""``dgs run [TARGET …] [snakemake options]``: run the workflow from any folder.

Calls Snakemake with the toolkit's ``Snakefile`` (``-s``) and, unless given, ``--cores all``;
every other argument is passed through, e.g. ``dgs run demo --configfile config/demo.yaml -n`` or
``dgs run evaluate --directory /scratch/run``. The workflow resolves its own files (configs,
schema, experiment files) from its location, so the working directory only holds the outputs
(``work_root`` and the synthetic data, relative paths of the config are relative to it).

The Snakefile is found next to the installed packages: a source checkout (``git clone``; ``make
setup`` installs it editable) holds ``Snakefile``, ``workflow/`` and ``config/`` beside ``dgs/``.
A wheel installs the libraries and commands only (docs/running.md says why): then ``--workflow``
names the checkout to run.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from pipeline.errors import InputError

CHECKOUT = Path(__file__).resolve().parents[1]
"""Where a source checkout keeps the Snakefile: the folder above this package."""


def find_snakefile(checkout: Path | None = None) -> Path:
    """The workflow's ``Snakefile`` in ``checkout`` (default: the one this package lives in)."""
    folder = Path(checkout) if checkout is not None else CHECKOUT
    snakefile = folder / "Snakefile"
    if not (snakefile.is_file() and (folder / "workflow" / "rules").is_dir()):
        raise InputError(f"{folder}: no workflow here (Snakefile and workflow/rules/); this toolkit was "
                         f"installed without its workflow (a wheel): clone the repository and give "
                         f"--workflow CLONE, or run snakemake -s CLONE/Snakefile")
    return snakefile


def snakemake_command(args: Sequence[str], snakefile: Path) -> list[str]:
    """The snakemake argv: ``-s snakefile``, ``--cores all`` unless cores are given, then ``args``."""
    args = list(args)
    cores = any(a in ("-c", "--cores", "-j", "--jobs") or a.startswith(("--cores=", "--jobs=")) for a in args)
    return [sys.executable, "-m", "snakemake", "-s", str(snakefile), *([] if cores else ["--cores", "all"]), *args]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    checkout = None
    if "--workflow" in args:
        at = args.index("--workflow")
        if at + 1 >= len(args):
            raise InputError("--workflow needs the folder of a checkout of the toolkit")
        checkout = Path(args[at + 1])
        del args[at:at + 2]
    command = snakemake_command(args, find_snakefile(checkout))
    if shutil.which("python") is None:
        raise InputError("no `python` on PATH: the workflow's jobs run `python -m dgs …`; activate the "
                         "toolkit's environment first")
    return subprocess.call(command)
