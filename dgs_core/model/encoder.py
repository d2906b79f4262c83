"""ResNet-style image encoder with multi-scale feature maps and a metric depth head (SPEC §3).

Plain torch (no torchvision). A 7×7 stride-2 stem and four stages of basic residual blocks, each
stage halving the resolution, give maps at strides 2, 4, 8, 16, 32. Each map is projected by a 1×1
convolution to ``out_channels`` (the release uses five 256-channel maps). The depth head reads the
stride-2 map and is upsampled bilinearly to the input resolution; softplus keeps it positive (metres).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class EncoderConfig:
    """Encoder shape. ``widths[0]`` is the stem width; ``widths[1:]`` the four stage widths.

    ``blocks`` gives the number of basic blocks per stage (ResNet-18: 2,2,2,2). ``out_channels`` is
    the channel count of each of the five output maps (strides 2, 4, 8, 16, 32).
    """

    widths: tuple[int, ...] = (64, 64, 128, 256, 512)
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    out_channels: tuple[int, ...] = (256, 256, 256, 256, 256)
    depth_head: bool = True

    def __post_init__(self) -> None:
        if len(self.widths) != 5 or len(self.blocks) != 4 or len(self.out_channels) != 5:
            raise ValueError(f"EncoderConfig: expected 5 widths, 4 block counts and 5 out_channels, found "
                             f"{len(self.widths)}, {len(self.blocks)}, {len(self.out_channels)}")


class BasicBlock(nn.Module):
    """3×3–3×3 residual block (ResNet-18 style) with an optional strided 1×1 shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


@dataclass
class EncoderOutput:
    """``features``: five (B, C_i, H/s, W/s) maps, strides (2, 4, 8, 16, 32), finest first.
    ``depth``: (B, 1, H, W) positive metric depth (metres) or None without a depth head."""

    features: list[torch.Tensor]
    depth: torch.Tensor | None = field(default=None)


class Encoder(nn.Module):
    """Image (B, 3, H, W), float, roughly unit-scaled colours → :class:`EncoderOutput`."""

    strides = (2, 4, 8, 16, 32)

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or EncoderConfig()
        w = config.widths
        self.stem = nn.Sequential(nn.Conv2d(3, w[0], 7, 2, 3, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU())
        stages = []
        for i, n in enumerate(config.blocks):
            blocks = [BasicBlock(w[i], w[i + 1], 2)] + [BasicBlock(w[i + 1], w[i + 1], 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.proj = nn.ModuleList(nn.Conv2d(w[i], config.out_channels[i], 1) for i in range(5))
        self.depth_head = None
        if config.depth_head:
            self.depth_head = nn.Sequential(nn.Conv2d(w[0], w[0], 3, 1, 1), nn.ReLU(), nn.Conv2d(w[0], 1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"Encoder: expected images (B, 3, H, W), found shape {tuple(images.shape)}")
        x = self.stem(images)
        maps = [x]
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        features = [p(m) for p, m in zip(self.proj, maps)]
        depth = None
        if self.depth_head is not None:
            d = F.softplus(self.depth_head(maps[0]))
            depth = F.interpolate(d, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return EncoderOutput(features, depth)

    @property
    def feature_channels(self) -> int:
        """Total channels of the concatenated per-point latent."""
        return sum(self.config.out_channels)


def load_pretrained(module: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    """Load a state dict saved with ``torch.save(module.state_dict(), path)`` into ``module``.

    Uses ``torch.load(weights_only=True)`` (no pickled code is executed). With ``strict`` every key
    must match in name and shape; otherwise a ValueError lists the missing, unexpected and
    mismatched keys so the user can see whether the file belongs to another configuration.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pretrained weights file not found; pass the path of a file "
                                "written with torch.save(model.state_dict(), path)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if strict and (missing or unexpected or mismatched):
        detail = "; ".join(
            f"{name}: {keys[:5]}{' ...' if len(keys) > 5 else ''} ({len(keys)})"
            for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched))
            if keys)
        raise ValueError(f"{path}: weights do not fit {type(module).__name__} — {detail}. Check that the "
                         "model configuration matches the one the weights were saved with, or pass strict=False "
                         "to load only the matching keys")
    usable = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    module.load_state_dict(usable, strict=False)
    return module
