"""``dgs train``: :func:`dgs_core.train.main` with validation pictures in TensorBoard.

The same options as ``python -m dgs_core.train`` (which logs scalars only); at each validation step
:class:`dgs.validation_views.ValidationViews` adds depth, occupancy-slice and mesh images and the
validation mesh (``log.images`` frames; ``tensorboard --logdir <run folder>/tb`` shows them).
"""
from __future__ import annotations

from typing import Sequence

from dgs.validation_views import ValidationViews
from dgs_core.train import main as train_main


def main(argv: Sequence[str] | None = None) -> None:
    train_main(None if argv is None else list(argv), views=[ValidationViews()])
