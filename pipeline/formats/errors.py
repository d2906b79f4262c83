"""The one exception type for bad on-disk input, shared by every reader in `pipeline.formats`."""
from __future__ import annotations

import os

from pipeline.errors import UserError


class FormatError(UserError, ValueError):
    """Bad on-disk input.

    The message names the file, the byte offset or field, what was expected, what was found, and
    what to do, e.g.::

        scene0000_00.sens: byte 0 (field 'version'): expected .sens version 4, found 3.
        What to do: re-export the file with ScanNet's SensReader v4 ...

    Attributes:
        path: the offending file (``str``), or the directory for layout problems.
        problem: what was expected and what was found.
        offset: byte offset in the file, when it is meaningful.
        field: name of the header field, column or property, when it is meaningful.
        hint: what the user can do about it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        problem: str,
        *,
        offset: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        self.offset = offset
        self.field = field
        self.hint = hint
        message = f"{self.path}{f' ({self._where})' if self._where else ''}: {problem}"
        if hint:
            message += f" What to do: {hint}"
        super().__init__(message)

    @property
    def _where(self) -> str:
        return ", ".join(([f"byte {self.offset}"] if self.offset is not None else [])
                         + ([f"field '{self.field}'"] if self.field is not None else []))

    @property
    def detail(self) -> str:
        """The problem and where in the file, without the path and the hint: what a manifest row
        whose ``source_file`` already names the file records as a skipped frame's message."""
        return f"{self._where}: {self.problem}" if self._where else self.problem

    def __reduce__(self):  # keep the keyword arguments when pickled (dask / multiprocessing workers)
        return (_rebuild, (self.path, self.problem, self.offset, self.field, self.hint))


def _rebuild(path, problem, offset, field, hint) -> FormatError:
    return FormatError(path, problem, offset=offset, field=field, hint=hint)


def require_file(path: str | os.PathLike, what: str, hint: str) -> None:
    """Raise `FormatError` when `path` is not an existing file; `what` says what it should hold."""
    if not os.path.isfile(path):
        found = "a directory" if os.path.isdir(path) else "nothing"
        raise FormatError(path, f"expected {what}, found {found} at this path.", hint=hint)
