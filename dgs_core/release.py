"""The DGS release checkpoint ↔ this toolkit's checkpoint format (SPEC §3.8, docs/release_parity.md).

The release ships a model as two files, ``encoder_net_latest.pth`` and ``decoder_net_latest.pth``:
the state_dicts of LeReS's ``DepthModel`` (``encoder_modules.*``, ``decoder_modules.*``) and of the
occupancy ``ResNetFC`` (``lin_in``, ``lin_z.{0,1,2}``, ``blocks.{0..4}.fc_{0,1}``, ``lin_out``), saved
from the unwrapped modules (a wrapper prefix such as ``module.``, if a copy carries one, is
stripped). A :class:`~dgs_core.model.DGSNet` holds them as ``encoder.*`` and ``decoder.*`` under the
same names; its LeReS encoder returns the maps in the release's latent order (s32, s16, s8, s4, s2),
so no weight is permuted. The converted model records the release's input convention (RGB in
[0, 1], ``model.input_norm: none``) and runs at the virtual camera it was trained for (256×192,
f = 230.4 px).

    dgs convert-release --encoder encoder_net_latest.pth --decoder decoder_net_latest.pth --out dgs_release.pt
    dgs export-release --checkpoint final.pt --out DIR      # the reverse, for the authors' code

Both are also ``python -m dgs_core.release convert|export …``.
"""
from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path
from typing import Mapping, Sequence

import torch

from dgs_core.checkpoint import capture_rng, load_model, save_checkpoint
from dgs_core.experiment import Experiment, to_dict
from dgs_core.model import DGSNet, EncoderConfig, LoadReport, ModelConfig, WeightsError
from dgs_core.model.weights import StateDict, load_state, read_weights, strip_wrappers
from pipeline.atomic import atomic_path
from pipeline.cli import command_parser
from pipeline.errors import InputError, run_main

RELEASE_FILES = {"encoder": "encoder_net_latest.pth", "decoder": "decoder_net_latest.pth"}
"""Part of a :class:`DGSNet` → the release's file name for it."""
LAYER3_BLOCKS = {23: "leres_resnext101", 6: "leres_resnet50"}
"""Bottleneck blocks of the backbone's third stage → encoder kind (the stage that tells them apart)."""


def release_config(kind: str) -> ModelConfig:
    """The release model's configuration with the LeReS encoder ``kind`` (decoder: 5 × 512, input in [0, 1])."""
    return ModelConfig(encoder=EncoderConfig(kind=kind), input_norm="none")


def detect_kind(encoder_state: Mapping[str, torch.Tensor], source: str) -> str:
    """``leres_resnext101`` or ``leres_resnet50`` from the number of ``layer3`` blocks in the encoder file."""
    found = {int(m[1]) for k in encoder_state if (m := re.search(r"encoder\.layer3\.(\d+)\.", k))}
    kind = LAYER3_BLOCKS.get(max(found) + 1 if found else 0)
    if kind is None:
        raise WeightsError(f"{source}: not a LeReS encoder: expected 23 (ResNeXt-101) or 6 (ResNet-50) "
                           f"'encoder_modules.encoder.layer3.N' blocks, found {len(found)}; pass the release's "
                           f"{RELEASE_FILES['encoder']}")
    return kind


def release_to_toolkit(parts: Mapping[str, Mapping[str, torch.Tensor]]) -> StateDict:
    """{"encoder": release encoder state, "decoder": release decoder state} → a DGSNet state_dict."""
    return {f"{part}.{name}": tensor for part, state in parts.items() for name, tensor in state.items()}


def toolkit_to_release(state: Mapping[str, torch.Tensor]) -> dict[str, StateDict]:
    """A DGSNet state_dict → {"encoder": …, "decoder": …} in the release's names (inverse of the above)."""
    parts: dict[str, StateDict] = {part: {} for part in RELEASE_FILES}
    for name, tensor in state.items():
        part, _, rest = name.partition(".")
        if part not in parts:
            raise ValueError(f"toolkit_to_release: tensor {name!r} belongs to neither the encoder nor the decoder")
        parts[part][rest] = tensor
    return parts


def convert_release(encoder: str | os.PathLike, decoder: str | os.PathLike, out: str | os.PathLike, *,
                    kind: str = "auto", allow_partial: bool = False) -> tuple[Path, LoadReport]:
    """Read the two release files, load them into the release :class:`DGSNet` with strict name and
    shape checks (:func:`dgs_core.model.weights.load_state`) and save a :mod:`dgs_core.checkpoint`.

    Args:
        kind: ``auto`` (from the encoder file), ``leres_resnext101`` or ``leres_resnet50``.
        allow_partial: load the matching tensors even if some are missing, unexpected or mis-shaped.
    Returns:
        the checkpoint path and the load report (what was loaded and, if partial, skipped).
    """
    paths = {"encoder": Path(encoder), "decoder": Path(decoder)}
    parts = {part: strip_wrappers(read_weights(path), set()) for part, path in paths.items()}
    if kind == "auto":
        kind = detect_kind(parts["encoder"], str(paths["encoder"]))
    config = release_config(kind)
    net = DGSNet(config)
    report = load_state(net, release_to_toolkit(parts), f"{paths['encoder']} + {paths['decoder']}",
                        allow_partial=allow_partial, layout="DGS release")
    source = {"format": "dgs_release", "encoder": str(paths["encoder"]), "decoder": str(paths["decoder"]),
              "complete": report.complete}
    path = save_checkpoint(out, model=net, step=0, epoch=0, position=0, config=to_dict(Experiment(model=config)),
                           rng=capture_rng(), source=source)
    return path, report


def export_release(checkpoint: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write a LeReS-encoder checkpoint as the release's two files in ``out_dir`` (atomically).

    Raises ValueError when the model is not the release architecture (its code could not load it).
    """
    net, _ = load_model(checkpoint)
    expected = release_config(net.config.encoder.kind) if net.config.encoder.kind != "resnet" else None
    if expected is None or dataclasses.replace(net.config, zero_init=expected.zero_init) != expected:
        raise InputError(f"{checkpoint}: model {net.config} is not the release architecture (a LeReS encoder, "
                         "the 5 × 512 decoder over 6 frequencies, input_norm none); the release code cannot load it")
    out = {}
    for part, state in toolkit_to_release(net.state_dict()).items():
        out[part] = Path(out_dir) / RELEASE_FILES[part]
        with atomic_path(out[part]) as tmp:
            torch.save(state, tmp)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Convert a DGS release model into a toolkit checkpoint (run through run_main: exit 2 on bad input)."""
    p = command_parser("python -m dgs_core.release convert", convert_release.__doc__.splitlines()[0])
    prog = p.prog
    p.add_argument("--encoder", required=True, help=f"the release's {RELEASE_FILES['encoder']}")
    p.add_argument("--decoder", required=True, help=f"the release's {RELEASE_FILES['decoder']}")
    p.add_argument("--out", required=True, help="checkpoint to write (dgs_core.checkpoint format)")
    p.add_argument("--kind", default="auto", choices=("auto", *LAYER3_BLOCKS.values()),
                   help="encoder architecture (auto: from the encoder file)")
    p.add_argument("--allow-partial", action="store_true",
                   help="load the matching tensors even if some are missing, unexpected or mis-shaped")
    a = p.parse_args(argv)
    path, report = convert_release(a.encoder, a.decoder, a.out, kind=a.kind, allow_partial=a.allow_partial)
    print(f"{prog}: {len(report.loaded)} tensors → {path}")
    if not report.complete:
        print(f"{prog}: PARTIAL load, skipped:\n{report.describe(limit=None)}")
    return 0


def export_main(argv: Sequence[str] | None = None) -> int:
    """Write a toolkit checkpoint of the release architecture as the release's two files."""
    p = command_parser("python -m dgs_core.release export", export_main.__doc__)
    prog = p.prog
    p.add_argument("--checkpoint", required=True, help="a dgs_core checkpoint with a LeReS encoder")
    p.add_argument("--out", required=True, help=f"folder for {' and '.join(RELEASE_FILES.values())}")
    a = p.parse_args(argv)
    paths = export_release(a.checkpoint, a.out)
    print(f"{prog}: wrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    commands = {"convert": main, "export": export_main}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m dgs_core.release {{{'|'.join(commands)}}} ARGS…")
    raise SystemExit(run_main(commands[sys.argv[1]], sys.argv[2:], prog=f"python -m dgs_core.release {sys.argv[1]}"))
