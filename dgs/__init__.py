"""The ``dgs`` command: one entry point for every stage of the workflow and the tools around it.

This package sits above ``pipeline``, ``dgs_core`` and ``benchmark`` and may import any of them;
the dispatcher (:mod:`dgs.cli`) imports a sub-command's module only when that sub-command runs.
"""
