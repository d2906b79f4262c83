"""One job per output folder: an exclusive ``flock`` on a lock file beside the folder.

Two prepare jobs writing the same scene folder would trip over each other's temporary files and
HDF5 locks; the second one to start fails at once with the first one's process id instead. The lock
file ``<parent>/.<folder>.lock`` lies beside the folder (not in it, so the folder's bytes stay those
of the job) and holds the owner's PID. The kernel releases the lock when the owner exits in any
way, SIGKILL included, so a stale file never blocks a rerun. POSIX only (``fcntl``).
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from pipeline.errors import UserError


class FolderLocked(UserError, RuntimeError):
    """Another process holds the folder's lock; the message names its PID."""


def lock_path(folder: str | os.PathLike) -> Path:
    """``<parent>/.<name>.lock``: the lock file of ``folder``."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


@contextmanager
def exclusive_lock(folder: str | os.PathLike, doing: str = "written") -> Iterator[Path]:
    """Hold ``folder``'s lock for the block (yields the lock file's path).

    Raises :class:`FolderLocked` ("<folder>: already being <doing> by PID n") when another process
    holds it; never waits.
    """
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise FolderLocked(f"{folder}: already being {doing} by PID {holder} (lock file {path}); "
                               f"wait for that job to finish or stop it, then rerun") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
