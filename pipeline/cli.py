"""The one way the toolkit's commands build their argument parsers.

Every entry point (``dgs <command>`` and its ``python -m`` twin) builds its parser with
:func:`command_parser`, so that

- ``--help`` shows every option's default next to its help text (units are in the help text);
- the usage line names the command the user actually typed: ``dgs prepare`` when the ``dgs``
  dispatcher runs it, ``python -m pipeline.prepare`` otherwise (:func:`pipeline.errors.run_main`
  sets :data:`PROG` for the duration of the call).
"""
from __future__ import annotations

import argparse
import contextvars

PROG: contextvars.ContextVar[str | None] = contextvars.ContextVar("dgs_prog", default=None)
"""The command name :func:`pipeline.errors.run_main` runs under (None outside it)."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and appends ``(default: X)`` to each option's help
    unless the default is None, False (a flag that is off) or the option is required."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or action.required or default is None or default is False
                or default == argparse.SUPPRESS
                or (not action.option_strings and action.nargs not in ("?", "*"))):
            return text
        if isinstance(default, (list, tuple)):
            return f"{text} (default: {' '.join(str(v) for v in default) or 'none'})"
        return f"{text} (default: %(default)s)"


def command_parser(prog: str, description: str | None = None, **kwargs) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with :class:`HelpFormatter`, named ``prog`` unless a dispatcher set
    :data:`PROG` (then its name, e.g. ``dgs prepare``)."""
    return argparse.ArgumentParser(prog=PROG.get() or prog, description=description,
                                   formatter_class=HelpFormatter, **kwargs)

