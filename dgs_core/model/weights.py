"""Weights into a module, with strict name and shape checks, from this toolkit's and others' layouts.

A file is read with ``torch.load(weights_only=True)`` (no pickled code runs). A container dict is
unwrapped: ``state_dict``, ``depth_model`` (LeReS's ``res101.pth`` / ``res50.pth``) or ``model`` (a
:mod:`dgs_core.checkpoint` file). Wrapper prefixes (``module.`` of DataParallel/DDP, ``depth_model.``
of LeReS's ``RelDepthModel``, ``_orig_mod.`` of ``torch.compile``) are stripped while every key
carries one and the module's own names do not — for LeReS that is the ``module.depth_model.``
the DGS trainer strips. Layouts recognised besides the module's own:

- torchvision ResNet (``conv1``, ``bn1``, ``layer1`` … ``layer4``, ``fc``; ImageNet weights) into the
  small ``resnet`` encoder (stem = ``conv1``/``bn1``, ``stages.i`` = ``layer{i+1}``, ``shortcut`` =
  ``downsample``) or into a LeReS backbone (``encoder_modules.encoder.*``, the same names). The
  classifier ``fc`` is ignored; the parts torchvision does not have keep their initialisation
  (small encoder: the 1×1 projections, the depth head and the first stage's strided shortcut, as
  torchvision's ``layer1`` follows a max-pool at full stride; LeReS: the depth decoder).

Every load compares names and shapes and reports missing, unexpected and mis-shaped tensors by
name; it refuses (:class:`WeightsError`) unless a partial load is allowed, which then takes the
matching tensors and lists what it skipped. BatchNorm ``num_batches_tracked`` counters may be absent
(files from before PyTorch 0.4.1 lack them, and PyTorch's own loader tolerates that too).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from pipeline.errors import UserError
import torch.nn as nn

WRAPPER_PREFIXES = ("module.", "depth_model.", "_orig_mod.")
CONTAINER_KEYS = ("state_dict", "depth_model", "model")
OPTIONAL_SUFFIX = ".num_batches_tracked"
StateDict = dict[str, torch.Tensor]


class WeightsError(UserError, ValueError):
    """A weights file is unreadable or does not fit the module it is loaded into."""


@dataclass
class LoadReport:
    """What a load did: tensors ``loaded``; ``missing`` (the module has them, the source not),
    ``unexpected`` (the source has them, the module not), ``mismatched`` (name, source shape, module
    shape); ``fresh`` (module tensors the source layout never holds, kept at their initialisation)
    and ``ignored`` (source tensors the module never uses, e.g. an ImageNet classifier)."""

    source: str
    layout: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when nothing is missing, unexpected or mis-shaped."""
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int | None = 20) -> str:
        """One line per non-empty category, at most ``limit`` names each (None = all)."""
        def names(items: list) -> str:
            shown = items if limit is None else items[:limit]
            more = f", … and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
            return ", ".join(shown) + more

        bad = [f"{name}: file {tuple(a)} vs model {tuple(b)}" for name, a, b in self.mismatched]
        rows = [("missing", self.missing), ("unexpected", self.unexpected), ("shape mismatch", bad),
                ("kept at initialisation (not in this layout)", self.fresh), ("ignored", self.ignored)]
        return "\n".join(f"  {title} ({len(items)}): {names(items)}" for title, items in rows if items)


def read_weights(path: str | os.PathLike) -> StateDict:
    """The tensors of a weights file (``weights_only=True``), container dicts unwrapped.

    Raises FileNotFoundError or WeightsError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found; pass the path of a downloaded or saved "
                                "weights file (torch.save of a state_dict)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated, foreign or pickled-code files
        raise WeightsError(f"{path}: cannot be read as a weights file ({type(err).__name__}: {err}); it must be "
                           "a torch.save'd dict of tensors (loaded with weights_only=True)") from None
    while isinstance(state, Mapping) and not _is_state(state):
        inner = [k for k in CONTAINER_KEYS if isinstance(state.get(k), Mapping)]
        if not inner:
            break
        state = state[inner[0]]
    if not isinstance(state, Mapping) or not _is_state(state):
        keys = list(state)[:8] if isinstance(state, Mapping) else type(state).__name__
        raise WeightsError(f"{path}: expected a mapping of tensor names to tensors (or one under "
                           f"{list(CONTAINER_KEYS)}), found {keys}")
    return dict(state)


def _is_state(mapping: Mapping) -> bool:
    return bool(mapping) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in mapping.items())


def strip_wrappers(state: Mapping[str, torch.Tensor], own: set[str]) -> StateDict:
    """``state`` without the wrapper prefixes every key carries and ``own`` names do not."""
    state = dict(state)
    while state:
        prefix = next((p for p in WRAPPER_PREFIXES if all(k.startswith(p) for k in state)
                       and not any(k.startswith(p) for k in own)), None)
        if prefix is None:
            break
        state = {k[len(prefix):]: v for k, v in state.items()}
    return state


_LAYER = re.compile(r"^layer([1-4])\.(\d+)\.(.*)$")


def _from_torchvision(state: StateDict, own: set[str]) -> tuple[StateDict, tuple[str, ...], list[str]] | None:
    """torchvision ResNet names → the module's (see the module docstring), or None if not that layout."""
    if "conv1.weight" not in state or not any(k.startswith("layer1.") for k in state) or "conv1.weight" in own:
        return None
    ignored = sorted(k for k in state if k.startswith("fc."))
    body = {k: v for k, v in state.items() if not k.startswith("fc.")}
    if "encoder_modules.encoder.conv1.weight" in own:
        return {f"encoder_modules.encoder.{k}": v for k, v in body.items()}, ("decoder_modules.",), ignored
    if "stem.0.weight" not in own:
        return None
    out = {}
    for key, value in body.items():
        key = re.sub(r"^conv1\.", "stem.0.", re.sub(r"^bn1\.", "stem.1.", key))
        m = _LAYER.match(key)
        if m:
            key = f"stages.{int(m[1]) - 1}.{m[2]}.{m[3].replace('downsample.', 'shortcut.', 1)}"
        out[key] = value
    return out, ("proj.", "depth_head.", "stages.0.0.shortcut."), ignored


def compare(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], source: str, layout: str,
            fresh_prefixes: tuple[str, ...] = (), ignored: list[str] | None = None) -> LoadReport:
    """Name and shape comparison of ``state`` against the module's ``own`` state dict (no copying)."""
    report = LoadReport(source, layout, ignored=list(ignored or []))
    for name, tensor in own.items():
        if name not in state:
            kept = name.startswith(fresh_prefixes) or name.endswith(OPTIONAL_SUFFIX)
            (report.fresh if kept else report.missing).append(name)
        elif tuple(state[name].shape) != tuple(tensor.shape):
            report.mismatched.append((name, tuple(state[name].shape), tuple(tensor.shape)))
        else:
            report.loaded.append(name)
    report.unexpected = [name for name in state if name not in own]
    return report


def load_state(module: nn.Module, state: Mapping[str, torch.Tensor], source: str, *, allow_partial: bool = False,
               layout: str = "") -> LoadReport:
    """Load ``state`` (any recognised layout, wrappers stripped) into ``module`` after :func:`compare`.

    Raises WeightsError listing the missing, unexpected and mis-shaped tensors unless the load is
    complete or ``allow_partial``; a partial load takes the tensors whose name and shape match.
    """
    own = module.state_dict()
    state = strip_wrappers(state, set(own))
    fresh: tuple[str, ...] = ()
    ignored: list[str] = []
    converted = _from_torchvision(state, set(own))
    if converted is not None:
        state, fresh, ignored = converted
        layout = "torchvision ResNet"
    report = compare(own, state, source, layout or "state_dict", fresh, ignored)
    if not report.complete and not allow_partial:
        raise WeightsError(f"{source}: the {report.layout} weights do not fit {type(module).__name__}:\n"
                           f"{report.describe()}\nCheck the model configuration (model.encoder.kind) against the "
                           "file, or allow a partial load (init.strict: false, --allow-partial) to take the "
                           "matching tensors only")
    module.load_state_dict({name: state[name] for name in report.loaded}, strict=False)
    return report


def load_pretrained(module: nn.Module, path: str | os.PathLike, strict: bool = True) -> LoadReport:
    """Read ``path`` (:func:`read_weights`) and load it into ``module`` (:func:`load_state`);
    ``strict=False`` allows a partial load."""
    return load_state(module, read_weights(path), str(path), allow_partial=not strict)
