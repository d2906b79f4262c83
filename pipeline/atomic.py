"""Atomic file writes: a reader never sees a half-written file, a crash never leaves one.

Every writer of the toolkit (shards, manifests, meshes, ``.sens`` files, checkpoints, predictions,
CSV reports, figures) writes through this module. The pattern is always the same: write to a
temporary sibling ``<name>.<pid>.partial[suffix]`` in the same folder, flush and ``fsync`` it, rename
it over the final name (``os.replace``, atomic on POSIX within one file system), then ``fsync`` the
folder so the rename itself survives a power loss. On an exception the temporary file is removed
and the final name is untouched. The process id in the temporary name keeps two processes that
write the same file (e.g. two predict jobs writing one ``method.json``) out of each other's way.

    with atomic_path(path, suffix=".png") as tmp:   # for libraries that take a file name
        fig.savefig(tmp)
    with atomic_open(path, "w") as f:                # for code that writes to a file object
        f.write(text)
    write_text_atomic(path, text)
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

PARTIAL = ".partial"
"""Every temporary file name contains this; leftovers of a killed writer match ``*.partial*``."""


def temporary_sibling(path: str | os.PathLike, suffix: str = "") -> Path:
    """``<folder>/<name>.<pid>.partial<suffix>``: where ``path`` is written before it is committed.

    ``suffix`` lets libraries that pick a format from the extension (matplotlib) see the right one.
    """
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}{PARTIAL}{suffix}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some file systems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Make the finished temporary file ``tmp`` visible as ``path``: fsync, rename, fsync the folder."""
    tmp, path = Path(tmp), Path(path)
    _fsync_file(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return path


@contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; commit it when the block ends without error.

    The parent folder is created. On an exception the temporary file is deleted and re-raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path, suffix)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = None,
                newline: str | None = None) -> Iterator[IO]:
    """``open(temporary_sibling(path), mode)``, committed to ``path`` when the block ends cleanly."""
    if not mode.startswith("w"):
        raise ValueError(f"atomic_open: mode must write a new file ('w', 'wb'), got {mode!r}")
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=encoding, newline=newline) as f:
            yield f


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)
