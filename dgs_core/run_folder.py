"""A training run folder: numbered checkpoints, resuming from them, and the resolved config.

    <out>/checkpoints/step_XXXXXXX.pt   every checkpoint.every steps, the newest keep_last kept
    <out>/config.yaml                   the resolved experiment
    <out>/best.pt, <out>/final.pt       written by the trainer (dgs_core.train)

A resumed run must use the configuration its checkpoint was trained with, except the keys of
:data:`RESUME_FREE` (the schedule may be extended; logging, checkpointing cadence and the worker
count do not change the numbers).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from dgs_core.checkpoint import load_checkpoint, restore_rng
from dgs_core.distributed import Rank
from dgs_core.experiment import ConfigError, Experiment, to_dict
from dgs_core.model import DGSNet
from pipeline.atomic import write_text_atomic

RESUME_FREE = ("optim.iterations", "optim.epochs", "optim.compile", "data.workers", "log.every",
               "log.images", "log.image_grid",
               "checkpoint.every", "checkpoint.keep_last", "validation.every")


@dataclass
class Progress:
    """Where training stands: optimiser steps done, epoch, frames of that epoch consumed (all ranks)."""

    step: int = 0
    epoch: int = 0
    position: int = 0
    best: float | None = None


def checkpoint_path(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step_{step:07d}.pt"


def latest_checkpoint(out: Path) -> Path | None:
    """The newest ``checkpoints/step_*.pt`` in a run folder (``*.partial`` leftovers are ignored)."""
    found = sorted((out / "checkpoints").glob("step_*.pt"))
    return found[-1] if found else None


def prune_checkpoints(out: Path, keep_last: int) -> None:
    for old in sorted((out / "checkpoints").glob("step_*.pt"))[:-keep_last]:
        old.unlink()


def resolve_resume(resume: str, out: Path) -> Path | None:
    """``auto`` → newest checkpoint in ``out`` (or None); ``none`` → None after removing ``out``'s
    old checkpoints (a fresh run must not mix with them); otherwise the given file."""
    if resume == "auto":
        return latest_checkpoint(out)
    if resume == "none":
        for old in (out / "checkpoints").glob("step_*.pt"):
            old.unlink()
        return None
    return Path(resume)


def restore(path: Path, exp: Experiment, rank: Rank, net: DGSNet, opt, scaler, scheduler=None) -> Progress:
    """Load ``path`` into the training state; the config must match except :data:`RESUME_FREE` keys.
    A one-cycle schedule is fixed by its length, so its run cannot be extended on resume."""
    ckpt = load_checkpoint(path, expect_config=to_dict(exp), ignore=RESUME_FREE)
    stored = ckpt.get("scheduler")
    if scheduler is not None:
        if not stored or stored.get("total_steps") != scheduler.total_steps:
            raise ConfigError(f"checkpoint {path}: its learning-rate schedule spans "
                              f"{(stored or {}).get('total_steps')} steps, this run {scheduler.total_steps}; "
                              f"a one_cycle run resumes only with the same optim.iterations/epochs")
        scheduler.load_state_dict(stored)
    if ckpt["position"] % rank.world_size:
        raise ConfigError(f"checkpoint {path}: {ckpt['position']} frames consumed this epoch cannot be split "
                          f"across {rank.world_size} ranks; resume with the world size {ckpt.get('world_size')}")
    net.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    restore_rng(ckpt["rng"])
    return Progress(ckpt["step"], ckpt["epoch"], ckpt["position"], ckpt["best"])


def write_config(out: Path, exp: Experiment) -> None:
    write_text_atomic(out / "config.yaml", yaml.safe_dump(to_dict(exp), sort_keys=False))
