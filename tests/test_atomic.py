"""pipeline.atomic: the one helper every writer uses (temporary sibling, fsync, rename)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.atomic import (PARTIAL, atomic_open, atomic_path, temporary_sibling,
                             write_bytes_atomic, write_text_atomic)


def test_success_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "table.csv"  # the folder is created
    write_text_atomic(target, "old\n")
    with atomic_open(target, "w") as f:
        f.write("new\n")
        assert target.read_text() == "old\n"  # readers see the old file until the commit
    assert target.read_text() == "new\n"
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]


def test_error_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    write_bytes_atomic(target, b"good")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_temporary_name_is_a_sibling_with_pid_and_suffix(tmp_path: Path) -> None:
    tmp = temporary_sibling(tmp_path / "fig.png", suffix=".png")
    assert tmp.parent == tmp_path
    assert tmp.name == f"fig.png.{os.getpid()}{PARTIAL}.png"


def test_file_gets_the_umask_mode(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "x.txt", "x")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_atomic_open_refuses_read_or_append_modes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "x", "a"):
            pass
