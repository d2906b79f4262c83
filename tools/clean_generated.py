"""Remove what the workflow generated for the shipped configurations, and nothing else.

    make clean-data        (= python tools/clean_generated.py)
    python tools/clean_generated.py --dry-run

The folders are the ``work_root`` and ``synthetic.root`` of every config/*.yaml (default, demo,
tiny, ablation), plus Snakemake's own ``.snakemake/`` state. A dataset a user keeps elsewhere under
data/ (e.g. data/ScanNet) is never touched. Paths outside the repository are refused: clean those
by hand.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def generated_folders() -> list[Path]:
    """The work roots and synthetic roots named by config/*.yaml, and .snakemake/, sorted."""
    folders = {REPO / ".snakemake"}
    for path in sorted((REPO / "config").glob("*.yaml")):
        config = yaml.safe_load(path.read_text()) or {}
        if config.get("work_root"):
            folders.add(REPO / config["work_root"])
        if (config.get("synthetic") or {}).get("root"):
            folders.add(REPO / config["synthetic"]["root"])
    return sorted(folders)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed")
    args = parser.parse_args(argv)
    for folder in generated_folders():
        resolved = folder.resolve()
        if REPO not in resolved.parents:
            print(f"clean-data: skipping {folder}: outside the repository", file=sys.stderr)
            continue
        if resolved.exists():
            print(f"{'would remove' if args.dry_run else 'removing'} {folder.relative_to(REPO)}")
            if not args.dry_run:
                shutil.rmtree(resolved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
