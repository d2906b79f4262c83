"""The release encoder: LeReS's depth network (AdelaiDepth) as edited by DGS (SPEC §3.1).

A bottleneck ResNet backbone (ResNeXt-101 32×8d for the release model, ResNet-50 for the smaller
one; torchvision's layout, stride on the 3×3 convolution) gives maps at strides 4, 8, 16, 32 with
256, 512, 1024, 2048 channels. LeReS's depth decoder fuses them top-down into 256-channel maps at
strides 32, 16, 8, 4 and 2 and ends in a one-channel depth map at the input resolution. The DGS
release changes only what the decoder *returns* (those five maps besides the depth); it adds and
drops no parameter, so LeReS's ``res101.pth`` / ``res50.pth`` fill the whole module.

Parameter names follow LeReS's ``DepthModel`` (``encoder_modules.encoder.*`` for the backbone,
``decoder_modules.*`` for the decoder), i.e. the names of the ``depth_model`` weights of those files
after the ``module.depth_model.`` prefix is stripped; docs/release_parity.md lists the sources.

Input: (B, 3, H, W) with H and W multiples of 32 (the decoder adds maps of neighbouring strides).
Output (:class:`~dgs_core.model.encoder.EncoderOutput`): the five maps in the release's order
(strides 32, 16, 8, 4, 2; the decoder's latent is concatenated in that order) and the depth
(B, 1, H, W), metres once trained, the raw output of the last convolution (no activation, as in
the release: it can be negative).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from dgs_core.model.encoder import EncoderConfig, EncoderOutput

BACKBONES = {"leres_resnext101": ((3, 4, 23, 3), 32, 8), "leres_resnet50": ((3, 4, 6, 3), 1, 64)}
"""kind -> (bottleneck blocks per stage, groups, width per group)."""
STAGE_PLANES = (64, 128, 256, 512)
EXPANSION = 4
DECODER_WIDTH = 256
"""Channels of each of the five maps (LeReS's decoder ``midchannels`` below stride 32)."""


def _up2(x: torch.Tensor) -> torch.Tensor:
    """×2 bilinear upsampling with ``align_corners=True``, LeReS's ``nn.Upsample`` setting."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (stride, groups) → 1×1 residual block; ``downsample`` projects the skip path."""

    def __init__(self, c_in: int, planes: int, stride: int, groups: int, base_width: int) -> None:
        super().__init__()
        width = planes * base_width // 64 * groups
        c_out = planes * EXPANSION
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Backbone(nn.Module):
    """7×7 stride-2 stem, 3×3 stride-2 max-pool, four bottleneck stages (``layer1`` … ``layer4``)."""

    def __init__(self, blocks: tuple[int, ...], groups: int, base_width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        c_in = 64
        for i, (n, planes) in enumerate(zip(blocks, STAGE_PLANES)):
            layer = []
            for j in range(n):
                layer.append(Bottleneck(c_in, planes, 2 if (i and not j) else 1, groups, base_width))
                c_in = planes * EXPANSION
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
        for m in self.modules():  # LeReS's backbone initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) → maps at strides 4, 8, 16, 32 (256, 512, 1024, 2048 channels)."""
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        maps = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            maps.append(x)
        return maps


class BackboneHolder(nn.Module):
    """Holds the backbone as ``encoder`` (LeReS's ``DepthNet`` wrapper), which its names carry."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.encoder = backbone

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.encoder(x)


class FTB(nn.Module):
    """Feature transfer block: 3×3 conv, then a rectified residual branch (conv, BN, ReLU, conv).

    LeReS's branch starts with an in-place ReLU applied to the tensor its skip path also reads, so
    the skip path is rectified as well: out = relu(r + branch(r)) with r = relu(conv1(x)).
    """

    def __init__(self, c_in: int, c_mid: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_mid, 3, 1, 1)
        self.conv_branch = nn.Sequential(nn.ReLU(), nn.Conv2d(c_mid, c_mid, 3, 1, 1), nn.BatchNorm2d(c_mid),
                                         nn.ReLU(), nn.Conv2d(c_mid, c_mid, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.relu(self.conv1(x))
        return F.relu(r + self.conv_branch(r))


class FFM(nn.Module):
    """Feature fusion: ftb2(ftb1(lateral) + coarser map), upsampled ×2."""

    def __init__(self, c_in: int, c_mid: int, c_out: int) -> None:
        super().__init__()
        self.ftb1 = FTB(c_in, c_mid)
        self.ftb2 = FTB(c_mid, c_out)

    def forward(self, lateral: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        return _up2(self.ftb2(self.ftb1(lateral) + coarse))


class AO(nn.Module):
    """Adaptive output: conv (C → C/2), BN, ReLU, conv (→ 1), ×2 upsampling."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.adapt_conv = nn.Sequential(nn.Conv2d(c_in, c_in // 2, 3, 1, 1), nn.BatchNorm2d(c_in // 2), nn.ReLU(),
                                        nn.Conv2d(c_in // 2, c_out, 3, 1, 1),
                                        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapt_conv(x)


class DepthDecoder(nn.Module):
    """LeReS's decoder returning, as the DGS release does, its five intermediate maps and the depth."""

    def __init__(self) -> None:
        super().__init__()
        w = DECODER_WIDTH
        self.conv = FTB(512 * EXPANSION, 2 * w)
        self.conv1 = nn.Conv2d(2 * w, w, 3, 1, 1)
        self.ffm2 = FFM(256 * EXPANSION, w, w)
        self.ffm1 = FFM(128 * EXPANSION, w, w)
        self.ffm0 = FFM(64 * EXPANSION, w, w)
        self.outconv = AO(w, 1)
        for m in self.modules():  # LeReS's decoder initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, maps: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Backbone maps (strides 4…32) → ([s32, s16, s8, s4, s2], depth at stride 1)."""
        s32 = self.conv1(self.conv(maps[3]))
        s16 = _up2(s32)
        s8 = self.ffm2(maps[2], s16)
        s4 = self.ffm1(maps[1], s8)
        s2 = self.ffm0(maps[0], s4)
        return [s32, s16, s8, s4, s2], self.outconv(s2)


class LeReSEncoder(nn.Module):
    """LeReS backbone + DGS-edited depth decoder: image (B, 3, H, W) → :class:`EncoderOutput`."""

    strides = (32, 16, 8, 4, 2)

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if config.kind not in BACKBONES:
            raise ValueError(f"LeReSEncoder: kind must be one of {sorted(BACKBONES)}, found {config.kind!r}")
        self.config = config
        self.encoder_modules = BackboneHolder(Backbone(*BACKBONES[config.kind]))
        self.decoder_modules = DepthDecoder()

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"LeReSEncoder: expected images (B, 3, H, W), found shape {tuple(images.shape)}")
        if images.shape[2] % 32 or images.shape[3] % 32:
            raise ValueError(f"LeReSEncoder: image height and width must be multiples of 32 (the decoder adds "
                             f"maps of strides 32 … 2), found {tuple(images.shape[2:])}; use a virtual camera "
                             "such as 256×192")
        maps, depth = self.decoder_modules(self.encoder_modules(images))
        return EncoderOutput(maps, depth)

    @property
    def feature_channels(self) -> int:
        """Total channels of the concatenated per-point latent (5 × 256)."""
        return 5 * DECODER_WIDTH
