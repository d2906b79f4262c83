"""Expected errors and the one way every command-line entry point reports them.

An *expected* error is the user's to fix (bad input file, bad configuration, missing file, an id
that is not an id, a full disk): the command prints one line ``<prog>: error: <message>`` on
stderr and exits with status 2, the status argparse uses for a bad command line. Anything else is
a bug: its traceback is printed and the exit status is 1. ``--debug`` anywhere on the command line
prints the traceback of expected errors too.

Every ``python -m …`` entry point of the toolkit runs its ``main(argv)`` through :func:`run_main`,
so a single ``dgs`` command can do the same for each sub-command::

    if __name__ == "__main__":
        sys.exit(run_main(main, prog="python -m pipeline.prepare"))

Exception classes of the toolkit that mean "bad input" derive from :class:`UserError`
(``FormatError``, ``PrepareConfigError``, ``dgs_core.experiment.ConfigError``,
``dgs_core.checkpoint.CheckpointError``, ``pipeline.shards.SchemaError``, :class:`InputError`, …);
a few OS errors count as expected as well (:data:`EXPECTED_OS_ERRORS`, a full disk).
"""
from __future__ import annotations

import errno
import re
import sys
import traceback
from typing import Callable, Sequence

from pipeline.cli import PROG

EXIT_USER_ERROR = 2
"""Exit status of an expected error (bad input, configuration or file); argparse uses it too."""
EXIT_BUG = 1
"""Exit status of an unexpected exception (a bug: the traceback is printed)."""
DEBUG_FLAG = "--debug"


class UserError(Exception):
    """Base of every expected error: the message names the file or argument, what was expected and
    found, and what to do. Subclasses also derive from the builtin class callers used to catch."""


class InputError(UserError, ValueError):
    """Bad input that is not a byte-level format problem (an id, a manifest entry, an argument)."""


class DiskFullError(UserError, OSError):
    """Not enough free space to write an output; the message names the folder and the bytes needed.

    Built as ``DiskFullError(errno.ENOSPC, message)``; prints as the message alone."""

    def __str__(self) -> str:
        return str(self.strerror)


EXPECTED_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
"""OS errors that mean a missing or unusable path named in their message."""
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_expected(exc: BaseException) -> bool:
    """True for the errors :func:`run_main` reports without a traceback."""
    if isinstance(exc, (UserError, *EXPECTED_OS_ERRORS)):
        return True
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


# -- names that become path components -----------------------------------------------------------
_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")


def name_problem(value: object, pattern: str | None = None) -> str | None:
    """Why ``value`` cannot be a single file-name component (None when it can).

    Refused: non-strings, the empty string, ``.`` and ``..``, separators (``/``, ``\\``), control
    characters, leading ``-`` (it would read as an option) or surrounding white space; and, when
    ``pattern`` is given, anything that does not match it in full.
    """
    if not isinstance(value, str) or not value:
        return f"{value!r} is empty or not a string"
    if pattern is not None:
        if re.fullmatch(pattern, value) is None:
            return f"{value!r} does not match the pattern {pattern}"
        return None
    if value in (".", "..") or _UNSAFE.search(value) or value.startswith("-") or value != value.strip():
        return (f"{value!r} is not a plain name (no '/', '\\', '.', '..', control characters, "
                f"leading '-' or surrounding spaces)")
    return None


def check_name(value: object, what: str, *, pattern: str | None = None, where: str = "") -> str:
    """``value`` when :func:`name_problem` finds nothing, else :class:`InputError` naming ``what``
    (e.g. "method name") and ``where`` it came from (a file, an option)."""
    problem = name_problem(value, pattern)
    if problem is not None:
        place = f" (from {where})" if where else ""
        raise InputError(f"{what}{place}: {problem}; it becomes a folder name, so use a plain "
                         f"name" + (f" matching {pattern}" if pattern else ""))
    return value  # type: ignore[return-value]


# -- the runner ----------------------------------------------------------------------------------
def run_main(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None, *,
             prog: str | None = None) -> int:
    """Run ``main(argv)`` and turn its outcome into an exit status.

    ``argv`` defaults to ``sys.argv[1:]``; ``--debug`` is taken out of it before ``main`` sees it.
    Returns main's status (None counts as 0), :data:`EXIT_USER_ERROR` after printing one line for
    an expected error (:func:`is_expected`), 130 on Ctrl-C; other exceptions print their traceback
    and return :data:`EXIT_BUG`. ``SystemExit`` (argparse's own errors, ``--help``) passes through.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    args = [a for a in args if a != DEBUG_FLAG]
    name = prog or getattr(main, "__module__", "main")
    token = PROG.set(prog)  # parsers built by pipeline.cli.command_parser take this name
    try:
        status = main(args)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 — the point: expected errors vs bugs
        if debug or not is_expected(exc):
            traceback.print_exc()
            if not is_expected(exc):
                return EXIT_BUG
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        PROG.reset(token)
    return 0 if status is None else int(status)
