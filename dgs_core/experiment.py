"""Experiment configuration: YAML deltas over the release defaults, merged into typed dataclasses.

An experiment is the sections of :class:`Experiment` (``model``, ``loss``, ``data``, ``optim``,
``checkpoint``, ``validation``, ``log``, ``init``). Every default is the release setting (SPEC §3); an
experiment file (``config/experiments/<name>.yaml``) states only what differs. Files are applied
in order (later wins, nested sections merge key by key), then ``--set section.key=value`` overrides
(the value is parsed as YAML). Unknown sections or keys, and values of the wrong type, are refused
with an error that names the file (or the ``--set`` argument) and the dotted key.

    exp = load_experiment(["config/experiments/tiny.yaml", "config/experiments/nograd.yaml"],
                          ["optim.iterations=50"])
    to_dict(exp)  # plain nested dicts/lists/scalars: what config.yaml and checkpoints store
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from pipeline.errors import UserError

from dgs_core.data import DataConfig
from dgs_core.losses import LossConfig
from dgs_core.model import ModelConfig

AMP_MODES = ("auto", "bf16", "fp16", "off")
SCHEDULES = ("constant", "one_cycle")


class ConfigError(UserError, ValueError):
    """An experiment file or override is malformed: unknown key, wrong type or invalid value."""


@dataclass
class OptimConfig:
    """Optimiser and schedule. ``batch_size`` is GLOBAL: split evenly across DDP ranks."""

    lr: float = 1e-4                 # Adam learning rate (release)
    betas: tuple[float, ...] = (0.9, 0.999)
    weight_decay: float = 0.0
    batch_size: int = 32             # frames per optimiser step, all ranks together (release)
    iterations: int | None = 150000  # stop after this many optimiser steps; null = no step limit
    epochs: int | None = None        # stop after this many passes over the train frames; null = no limit
    grad_clip: float | None = None   # clip the global gradient L2 norm to this; null = off
    amp: str = "auto"                # CUDA only: auto (bf16 where supported, else fp16 + GradScaler) | bf16 | fp16 | off
    compile: bool = False            # torch.compile the encoder and the decoder
    seed: int = 0                    # model init, data order and point sampling all derive from it
    schedule: str = "constant"       # constant (the release: lr throughout) | one_cycle
    max_lr: float | None = None      # one_cycle: peak learning rate (> lr)
    warmup_fraction: float = 0.3     # one_cycle: share of the steps rising from lr to max_lr (cosine)
    final_div: float = 1e4           # one_cycle: the last step's lr is lr / final_div (cosine decay from max_lr)

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.batch_size < 1 or len(self.betas) != 2:
            raise ValueError(f"optim: expected lr > 0, batch_size ≥ 1 and two betas, found lr={self.lr}, "
                             f"batch_size={self.batch_size}, betas={list(self.betas)}")
        if self.iterations is None and self.epochs is None:
            raise ValueError("optim: iterations and epochs are both null; set at least one stop criterion")
        if (self.iterations is not None and self.iterations < 1) or (self.epochs is not None and self.epochs < 1):
            raise ValueError(f"optim: iterations and epochs must be ≥ 1 (or null), found {self.iterations}, {self.epochs}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"optim.grad_clip: expected a positive norm or null, found {self.grad_clip}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"optim.amp: expected one of {AMP_MODES}, found {self.amp!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule: expected one of {SCHEDULES}, found {self.schedule!r}")
        if self.schedule == "one_cycle" and not (self.max_lr is not None and self.max_lr > self.lr
                                                 and 0 < self.warmup_fraction < 1 and self.final_div >= 1):
            raise ValueError(f"optim.schedule=one_cycle needs max_lr > lr, 0 < warmup_fraction < 1 and "
                             f"final_div ≥ 1; found max_lr={self.max_lr}, lr={self.lr}, "
                             f"warmup_fraction={self.warmup_fraction}, final_div={self.final_div}")


@dataclass
class CheckpointConfig:
    """``every`` optimiser steps a checkpoint is written; the newest ``keep_last`` are kept."""

    every: int = 5000
    keep_last: int = 3

    def __post_init__(self) -> None:
        if self.every < 1 or self.keep_last < 1:
            raise ValueError(f"checkpoint: every and keep_last must be ≥ 1, found {self.every}, {self.keep_last}")


@dataclass
class ValidationConfig:
    """Every ``every`` steps: loss and near-surface accuracy/IoU on ``frames`` evenly spaced val frames."""

    every: int = 5000
    frames: int = 64

    def __post_init__(self) -> None:
        if self.every < 1 or self.frames < 1:
            raise ValueError(f"validation: every and frames must be ≥ 1, found {self.every}, {self.frames}")


@dataclass
class LogConfig:
    """Scalars (CSV + TensorBoard) every ``every`` steps; at each validation, ``images`` val frames
    drawn as TensorBoard images and meshes from a ``image_grid``³ occupancy grid (``dgs train``)."""

    every: int = 50
    images: int = 2       # val frames shown in TensorBoard at each validation; 0 = none
    image_grid: int = 32  # cells per axis of their occupancy grid (the mesh and the slice)

    def __post_init__(self) -> None:
        if self.every < 1 or self.images < 0 or self.image_grid < 2:
            raise ValueError(f"log: expected every ≥ 1, images ≥ 0 and image_grid ≥ 2, found {self.every}, "
                             f"{self.images}, {self.image_grid}")


@dataclass
class InitConfig:
    """Optional starting weights for the encoder (:func:`dgs_core.model.weights.load_pretrained`): LeReS's
    ``res101.pth`` / ``res50.pth`` for the LeReS kinds (what the release starts from), an ImageNet
    ResNet in torchvision's layout, or a saved encoder ``state_dict``. ``strict``: every tensor must
    match in name and shape (false: a partial load of the matching ones, the rest listed)."""

    encoder: str | None = None
    strict: bool = True


@dataclass
class Experiment:
    """One training run's full configuration (defaults = the release)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    log: LogConfig = field(default_factory=LogConfig)
    init: InitConfig = field(default_factory=InitConfig)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_keys(tree: dict, cls: type, source: str, prefix: str = "") -> None:
    """Refuse keys ``cls`` (recursively) does not have, naming ``source`` and the dotted key."""
    hints = _hints(cls)
    for key, value in tree.items():
        where = f"{prefix}{key}"
        if key not in hints:
            raise ConfigError(f"{source}: unknown key '{where}'; valid keys here: {sorted(hints)}")
        if dataclasses.is_dataclass(hints[key]):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{where}' must be a mapping of keys, found {value!r}")
            _check_keys(value, hints[key], source, f"{where}.")


def _merge(base: dict, delta: dict, origin: dict[str, str], source: str, prefix: str = "") -> None:
    """Deep-merge ``delta`` into ``base`` in place; record the source of every leaf in ``origin``."""
    for key, value in delta.items():
        where = f"{prefix}{key}"
        if isinstance(value, dict):
            _merge(base.setdefault(key, {}), value, origin, source, f"{where}.")
        else:
            base[key] = value
            origin[where] = source


def _coerce(value: Any, tp: Any, where: str, origin: dict[str, str]) -> Any:
    """``value`` as type ``tp`` (int, float, bool, str, tuple[X, ...], X | None, a dataclass)."""
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, origin, f"{where}.")
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where, origin)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    ok = {bool: isinstance(value, bool), str: isinstance(value, str),
          int: isinstance(value, int) and not isinstance(value, bool),
          float: isinstance(value, (int, float)) and not isinstance(value, bool)}
    if tp in ok:
        if ok[tp]:
            return tp(value)
    elif typing.get_origin(tp) is tuple and isinstance(value, (list, tuple)):
        return tuple(_coerce(v, args[0], where, origin) for v in value)
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"{origin.get(where, 'defaults')}: '{where}' must be {name}, found {value!r}")


def _build(cls: type, tree: dict, origin: dict[str, str], prefix: str = "") -> Any:
    hints = _hints(cls)
    kwargs = {key: _coerce(value, hints[key], f"{prefix}{key}", origin) for key, value in tree.items()}
    for f in dataclasses.fields(cls):  # nested sections not mentioned still get their defaults
        if f.name not in kwargs and dataclasses.is_dataclass(hints[f.name]):
            kwargs[f.name] = _build(hints[f.name], {}, origin, f"{prefix}{f.name}.")
    try:
        return cls(**kwargs)
    except ValueError as err:
        sources = sorted({src for key, src in origin.items() if key.startswith(prefix)}) or ["defaults"]
        raise ConfigError(f"{', '.join(sources)}: section '{prefix.rstrip('.') or '<top>'}': {err}") from None


def parse_set(item: str) -> dict:
    """``"optim.lr=3e-4"`` → ``{"optim": {"lr": 0.0003}}`` (the value parsed as YAML)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    tree: dict = yaml.safe_load(raw) if raw.strip() else None
    for part in reversed(key.strip().split(".")):
        tree = {part: tree}
    return tree


def load_experiment(files: Iterable[str | Path] = (), sets: Iterable[str] = ()) -> Experiment:
    """Release defaults ← each YAML file in order ← each ``--set`` override; validated.

    Raises:
        FileNotFoundError naming a missing file; ConfigError naming the file (or ``--set`` item)
        and the dotted key for unknown keys, wrong types and invalid values.
    """
    tree: dict = {}
    origin: dict[str, str] = {}
    deltas: list[tuple[str, dict]] = []
    for path in map(Path, files):
        if not path.is_file():
            raise FileNotFoundError(f"experiment file {path} does not exist; see config/experiments/ for the named ones")
        try:
            delta = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({err})") from None
        if not isinstance(delta, dict):
            raise ConfigError(f"{path}: expected a mapping of sections at the top level, found {type(delta).__name__}")
        deltas.append((str(path), delta))
    deltas += [(f"--set {item}", parse_set(item)) for item in sets]
    for source, delta in deltas:
        _check_keys(delta, Experiment, source)
        _merge(tree, delta, origin, source)
    return _build(Experiment, tree, origin)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_dict(config: Any) -> dict:
    """A config dataclass as plain nested dicts, lists and scalars (YAML- and weights_only-safe)."""
    return _plain(dataclasses.asdict(config))


def from_dict(cls: type, tree: dict, source: str = "stored config") -> Any:
    """Rebuild a config dataclass (e.g. :class:`ModelConfig`) from :func:`to_dict` output."""
    _check_keys(tree, cls, source)
    origin: dict[str, str] = {}
    _merge({}, tree, origin, source)
    return _build(cls, tree, origin)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1e-4}}`` → ``{"optim.lr": 1e-4}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
