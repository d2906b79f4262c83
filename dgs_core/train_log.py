"""Training scalars: a long-format CSV (``step,tag,value``) and TensorBoard event files.

Tags are ``train/<name>`` (``loss``, the loss terms ``bce``, ``grad`` (the gradient-penalty
magnitude before λ), ``depth``, ``grad_norm`` (parameter-gradient L2 norm before clipping), ``lr``,
``samples_per_s``) and ``val/<name>`` (``loss``, terms, ``accuracy``, ``iou``). Values are written
with ``repr`` so the CSV holds the exact float32→float64 value, which lets tests compare runs bit
for bit. On resume from step s the rows after s (logged by the interrupted run after its last
checkpoint) are dropped and TensorBoard purges its events after s, so the logs read as one run.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from pipeline.atomic import atomic_open

HEADER = ("step", "tag", "value")


def read_scalars(path: str | os.PathLike) -> pd.DataFrame:
    """``scalars.csv`` as a DataFrame with columns step (int), tag (str), value (float)."""
    return pd.read_csv(path, dtype={"step": "int64", "tag": "string", "value": "float64"})


class TrainLog:
    """Append-only scalar log of one run folder; a no-op when ``enabled`` is False (ranks > 0).

    Args:
        out: the run folder; writes ``out/scalars.csv`` and ``out/tb/``.
        resume_step: keep only rows with step ≤ this (0 for a fresh run: the CSV starts empty).
    """

    def __init__(self, out: str | os.PathLike, *, resume_step: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(out) / "scalars.csv"
        self._file = None
        self._writer = None
        self._tb = None
        if not enabled:
            return
        self._truncate(resume_step)
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)
        from torch.utils.tensorboard import SummaryWriter  # imported late: pulls in tensorboard

        self._tb = SummaryWriter(log_dir=str(Path(out) / "tb"), purge_step=resume_step + 1 if resume_step else None)

    def _truncate(self, resume_step: int) -> None:
        """Rewrite the CSV (atomically) with the header and the rows up to ``resume_step``."""
        keep: list[list[str]] = []
        if resume_step and self.path.exists():
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))[1:]
            keep = [r for r in rows if len(r) == 3 and r[0].isdigit() and int(r[0]) <= resume_step]
        with atomic_open(self.path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            w.writerows(keep)

    def scalars(self, step: int, values: dict[str, float], prefix: str) -> None:
        """Record ``{name: value}`` at ``step`` under ``<prefix>/<name>``."""
        if not self.enabled:
            return
        for name, value in values.items():
            tag = f"{prefix}/{name}"
            self._writer.writerow((step, tag, repr(float(value))))
            self._tb.add_scalar(tag, float(value), step)
        self._file.flush()

    def views(self, step: int, hooks: Sequence[Callable[..., None]], *args) -> None:
        """Call ``hook(writer, step, *args)`` for each hook with the TensorBoard ``SummaryWriter``
        (images, meshes: :mod:`dgs.validation_views`); a no-op when disabled."""
        if not self.enabled or not hooks:
            return
        for hook in hooks:
            hook(self._tb, step, *args)
        self._tb.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._tb.close()
            self._file = self._tb = None
