"""Cross-references in code and docs resolve: every "SPEC §n" names a section of docs/spec.md, and no
comment or help text points to the issue tracker (which is not part of the repository)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "docs" / "spec.md"
REFERENCE = re.compile(r"SPEC §(\d+(?:\.\d+)?)")
TRACKER = re.compile(r"\b(?:issue|INTERFACES)\s*§?\s*#?\d+", re.IGNORECASE)
# Other projects' issue trackers are citations, not references to ours.
EXTERNAL = re.compile(r"Atlas issue|its issue")


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.smk", "*.yaml", "*.rst", "Snakefile",
                          "Makefile"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / line for line in out.splitlines() if (REPO / line).is_file()]


def _sections() -> set[str]:
    heads = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)[. ]", SPEC.read_text(), flags=re.MULTILINE)
    return set(heads)


def test_every_spec_reference_has_a_section() -> None:
    sections = _sections()
    assert {"1", "2", "3", "4", "5", "6"} <= sections
    dangling = [f"{p.relative_to(REPO)}: SPEC §{ref}" for p in _tracked_text_files()
                for ref in REFERENCE.findall(p.read_text(errors="replace")) if ref.rstrip(".") not in sections]
    assert not dangling, dangling


def test_no_reference_to_the_issue_tracker() -> None:
    found = []
    for path in _tracked_text_files():
        if path.name == "test_docs.py":
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if TRACKER.search(line) and not EXTERNAL.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, found
