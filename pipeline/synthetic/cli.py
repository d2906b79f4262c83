"""`dgs-synth` / `python -m pipeline.synthetic`: generate the embedded synthetic datasets.

Writes `<root>/scannet/` and/or `<root>/matterport/`, each marked finished by
`<root>/<dataset>.complete`. A dataset already complete with the same config is left alone
(use --force to rebuild it).
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from pipeline.cli import command_parser
from pipeline.errors import run_main

from .config import PRESETS, preset
from .generate import generate_matterport, generate_scannet, is_complete

_GENERATORS = {"scannet": generate_scannet, "matterport": generate_matterport}


def _parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return key.strip(), value.strip()  # a bare word stays a string


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("dgs-synth", __doc__)
    parser.add_argument("--root", type=Path, required=True, help="output folder, e.g. data/synthetic")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny",
                        help="scene count and sizes (docs/synthetic.md)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same bytes)")
    parser.add_argument("--dataset", choices=["scannet", "matterport", "both"], default="both",
                        help="which dataset root(s) to write")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        type=_parse_override,
                        help="override a GeneratorConfig field, e.g. --set frames_per_scene=30 "
                             "--set color_size=(320,240); repeatable")
    parser.add_argument("--force", action="store_true", help="regenerate even if complete")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 on success, 2 on a bad option)."""
    args = build_parser().parse_args(argv)
    try:
        config = preset(args.preset, seed=args.seed, **dict(args.overrides))
    except (ValueError, TypeError) as exc:
        print(f"dgs-synth: {exc}", file=sys.stderr)
        return 2
    names = ["scannet", "matterport"] if args.dataset == "both" else [args.dataset]
    for name in names:
        target = args.root / name
        if not args.force and is_complete(target, config):
            print(f"{target}: already complete for this config (use --force to rebuild)")
            continue
        _GENERATORS[name](target, config, progress=not args.quiet)
        print(f"{target}: written")
    return 0


def console() -> int:
    """The ``dgs-synth`` / ``python -m pipeline.synthetic`` command: :func:`main` through
    :func:`pipeline.errors.run_main` (expected errors exit 2 with one line)."""
    return run_main(main, prog="dgs-synth")


if __name__ == "__main__":
    sys.exit(console())
