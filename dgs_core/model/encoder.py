"""Encoder configuration, output, and the small ResNet encoder for CPU tests and the demo (SPEC §3.1).

``EncoderConfig.kind`` selects the encoder: ``leres_resnext101`` (the release, the default) and
``leres_resnet50`` are LeReS's depth network as DGS uses it (:mod:`dgs_core.model.leres`);
``resnet`` is the small plain-torch encoder below. A 7×7 stride-2 stem and four stages of basic
residual blocks, each stage halving the resolution, give maps at strides 2, 4, 8, 16, 32. Each map
is projected by a 1×1 convolution to ``out_channels``. Its depth head reads the stride-2 map and is
upsampled bilinearly to the input resolution; softplus keeps it positive (metres).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


ENCODER_KINDS = ("leres_resnext101", "leres_resnet50", "resnet")
"""Encoders ``EncoderConfig.kind`` selects: the release's two LeReS networks and the small ResNet."""


@dataclass
class EncoderConfig:
    """Which encoder, and the shape of the small one.

    ``kind``: ``leres_resnext101`` (the release model, default), ``leres_resnet50`` or ``resnet``.
    The LeReS kinds have a fixed shape (five 256-channel maps and a depth map); ``widths``,
    ``blocks``, ``out_channels`` and ``depth_head`` shape the ``resnet`` kind only and must keep their
    defaults otherwise. ``widths[0]`` is the stem width, ``widths[1:]`` the four stage widths;
    ``blocks`` the basic blocks per stage (ResNet-18: 2,2,2,2); ``out_channels`` the channels of
    each map (strides 2, 4, 8, 16, 32).
    """

    kind: str = "leres_resnext101"
    widths: tuple[int, ...] = (64, 64, 128, 256, 512)
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    out_channels: tuple[int, ...] = (256, 256, 256, 256, 256)
    depth_head: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ENCODER_KINDS:
            raise ValueError(f"encoder.kind: expected one of {ENCODER_KINDS}, found {self.kind!r}")
        if len(self.widths) != 5 or len(self.blocks) != 4 or len(self.out_channels) != 5:
            raise ValueError(f"EncoderConfig: expected 5 widths, 4 block counts and 5 out_channels, found "
                             f"{len(self.widths)}, {len(self.blocks)}, {len(self.out_channels)}")
        if self.kind != "resnet":
            changed = [f.name for f in dataclasses.fields(self)
                       if f.name != "kind" and getattr(self, f.name) != f.default]
            if changed:
                raise ValueError(f"encoder.{changed[0]} shapes the 'resnet' kind only; kind {self.kind!r} has a "
                                 "fixed shape (five 256-channel maps and a depth map). Remove the key, or set "
                                 "encoder.kind: resnet for the small encoder")


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
    """``features``: five (B, C_i, H/s, W/s) maps at the encoder's ``strides`` (in that order: the
    decoder's latent concatenates them so). ``depth``: (B, 1, H, W) metric depth (metres) or None
    without a depth head."""

    features: list[torch.Tensor]
    depth: torch.Tensor | None = field(default=None)


class Encoder(nn.Module):
    """The small ResNet (``kind="resnet"``): image (B, 3, H, W) → :class:`EncoderOutput`, maps finest first."""

    strides = (2, 4, 8, 16, 32)

    def __init__(self, config: EncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or EncoderConfig(kind="resnet")
        if config.kind != "resnet":
            raise ValueError(f"Encoder is the small 'resnet' kind, found kind {config.kind!r}; build encoders "
                             "with dgs_core.model.net.build_encoder")
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

