"""Training checkpoints: one ``torch.save`` dict, written atomically, loadable with ``weights_only=True``.

A checkpoint holds ``model`` (state_dict), ``optimizer``, ``scaler``, ``scheduler`` (the
learning-rate schedule; state_dicts or None), ``step`` (optimiser steps done), ``epoch`` and
``position`` (frames of that epoch already consumed, all ranks together), ``config`` (the full
experiment as plain nested dicts), ``rng`` (torch / CUDA / numpy / python states as tensors and
lists), ``best`` (best validation loss so far or None), ``world_size``
and ``code_version`` (``git describe`` or the package version); a converted checkpoint also holds
``source`` (where its weights came from, :mod:`dgs_core.release`). Nothing in it needs pickled
classes, so ``torch.load(..., weights_only=True)`` reads it.

Checkpoints written before the encoder kinds and input conventions existed lack
``model.encoder.kind`` and ``model.input_norm``; they hold the small ResNet trained on
ImageNet-normalised images, and :func:`load_checkpoint` reads them so (:data:`LEGACY_MODEL_KEYS`).
"""
from __future__ import annotations

import functools
import os
import random
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from dgs_core.experiment import flatten, from_dict
from pipeline.errors import UserError
from pipeline.atomic import atomic_path
from dgs_core.model import DGSNet, ModelConfig

REQUIRED_KEYS = ("model", "step", "epoch", "position", "config", "rng")
LEGACY_MODEL_KEYS = {("encoder", "kind"): "resnet", ("input_norm",): "imagenet"}
"""Model-config keys older checkpoints lack (dotted path under ``model``) → the value they were trained with."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint file is unreadable, incomplete or belongs to another configuration."""


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe --always --dirty`` of this source tree, else the installed package version."""
    repo = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=repo, capture_output=True,
                             text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return metadata.version("dgs-toolkit")
    except metadata.PackageNotFoundError:
        return "unknown"


def capture_rng() -> dict[str, Any]:
    """The global random states (torch CPU and CUDA, numpy legacy, python) as tensors and lists."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": [version, list(py_state), py_gauss],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, py_state, py_gauss = state["python"]
    random.setstate((version, tuple(py_state), py_gauss))


def save_checkpoint(path: str | os.PathLike, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    scaler: Any = None, scheduler: Any = None, step: int, epoch: int, position: int,
                    config: dict, rng: dict, best: float | None = None, world_size: int = 1,
                    source: dict | None = None) -> Path:
    """Write the checkpoint to ``path`` atomically (:mod:`pipeline.atomic`).

    ``model`` may be wrapped (DDP, torch.compile); the plain module's state_dict is stored.
    ``source``: for weights made elsewhere (a converted release), where they came from (plain values).
    """
    path = Path(path)
    plain = getattr(model, "module", model)
    plain = getattr(plain, "_orig_mod", plain)
    payload = {
        "model": plain.state_dict(), "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "step": int(step), "epoch": int(epoch), "position": int(position), "config": config, "rng": rng, "best": None if best is None else float(best),
        "world_size": int(world_size), "code_version": code_version(),
    }
    if source is not None:
        payload["source"] = source
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def config_differences(found: dict, expected: dict, ignore: Iterable[str] = ()) -> list[str]:
    """Dotted keys whose values differ between two nested configs, as ``key: found != expected``."""
    a, b, skip = flatten(found), flatten(expected), set(ignore)
    keys = sorted((set(a) | set(b)) - skip)
    return [f"{k}: {a.get(k, '<absent>')!r} != {b.get(k, '<absent>')!r}" for k in keys if a.get(k) != b.get(k)]


def upgrade_legacy_config(config: dict) -> dict:
    """Fill the :data:`LEGACY_MODEL_KEYS` a stored config lacks, in place; returns it."""
    model = config.get("model") if isinstance(config, dict) else None
    for keys, value in LEGACY_MODEL_KEYS.items():
        node = model
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and keys[-1] not in node:
            node[keys[-1]] = value
    return config


def load_checkpoint(path: str | os.PathLike, *, expect_config: dict | None = None, map_location: Any = "cpu",
                    ignore: Iterable[str] = ()) -> dict:
    """Read a checkpoint (``weights_only=True``).

    Args:
        expect_config: when given, the stored config must equal it on every dotted key except
            ``ignore`` (e.g. the iteration budget may grow on resume).
    Raises:
        FileNotFoundError, CheckpointError naming the file: unreadable, missing keys, or a config
        that differs (listing each differing key with the stored and the expected value).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated / foreign files
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(err).__name__}: {err}); "
                              f"delete it to start over or resume from an older one") from None
    missing = [k for k in REQUIRED_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; it was not written by dgs_core.checkpoint "
                              "(a DGS release model is converted first: dgs convert-release)")
    upgrade_legacy_config(ckpt["config"])
    if expect_config is not None:
        diff = config_differences(ckpt["config"], expect_config, ignore)
        if diff:
            raise CheckpointError(f"checkpoint {path} was trained with another configuration; differing keys "
                                  f"(checkpoint != requested): {'; '.join(diff)}. Use a fresh output folder, "
                                  f"or --resume none to start over")
    return ckpt


def load_model(path: str | os.PathLike, map_location: Any = "cpu") -> tuple[DGSNet, dict]:
    """Rebuild the :class:`DGSNet` of a checkpoint from its stored model config, load the weights, eval().

    Returns the network and the full stored experiment config (plain nested dict).
    """
    ckpt = load_checkpoint(path, map_location=map_location)
    config = ckpt["config"]
    if "model" not in config:
        raise CheckpointError(f"checkpoint {path}: its config has no 'model' section to rebuild the network from")
    net = DGSNet(from_dict(ModelConfig, config["model"], f"checkpoint {path} config.model"))
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path}: weights do not fit its own model config ({err})") from None
    if isinstance(map_location, (str, torch.device)):
        net = net.to(map_location)
    return net.eval(), config
