"""DGSNet: encoder + per-point sampling of every feature map + ResNetFC occupancy decoder.

Query points are camera-space xyz (OpenCV frame, metres) with normalised intrinsics
``(a_u, a_v, c_u, c_v)`` (see :mod:`dgs_core.camera`). Occupancy o ∈ [0, 1], 1 = occupied.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from dgs_core.camera import project
from dgs_core.model.decoder import PositionalEncoding, ResnetFC
from dgs_core.model.encoder import Encoder, EncoderConfig, EncoderOutput
from dgs_core.model.inputs import INPUT_NORMS
from dgs_core.model.leres import LeReSEncoder


@dataclass
class ModelConfig:
    """Model shape and input convention. Defaults are the release: the LeReS ResNeXt-101 encoder
    (five 256-channel maps), a 5 blocks × 512 decoder, and RGB in [0, 1] (``input_norm="none"``)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    d_hidden: int = 512
    n_blocks: int = 5
    n_combine: int = 3
    num_freqs: int = 6
    zero_init: bool = True
    input_norm: str = "none"

    def __post_init__(self) -> None:
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"model.input_norm: expected one of {INPUT_NORMS}, found {self.input_norm!r}")

    @classmethod
    def tiny(cls, channels: int = 4, hidden: int = 16) -> "ModelConfig":
        """A few-thousand-parameter model (the small ``resnet`` encoder) for CPU tests."""
        enc = EncoderConfig(kind="resnet", widths=(8, 8, 8, 8, 8), blocks=(1, 1, 1, 1), out_channels=(channels,) * 5)
        return cls(encoder=enc, d_hidden=hidden, zero_init=False)


def build_encoder(config: EncoderConfig) -> nn.Module:
    """The encoder ``config.kind`` names: :class:`Encoder` (``resnet``) or :class:`LeReSEncoder`."""
    return Encoder(config) if config.kind == "resnet" else LeReSEncoder(config)


def sample_maps(features: list[torch.Tensor], points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Bilinear, border-clamped, ``align_corners=False`` samples of every map, concatenated.

    Args:
        features: maps (B, C_i, H_i, W_i). points: (B, Q, 3) camera frame, metres.
        intrinsics: (B, 4) normalised.
    Returns:
        (B, Q, ΣC_i), differentiable w.r.t. the maps *and* the points (through ``grid_sample``).
    """
    grid = project(points, intrinsics)[:, :, None, :]  # (B, Q, 1, 2)
    out = [F.grid_sample(f, grid.to(f.dtype), mode="bilinear", padding_mode="border", align_corners=False)[..., 0]
           for f in features]
    return torch.cat(out, dim=1).transpose(1, 2)


class DGSNet(nn.Module):
    """Single-view implicit reconstruction network."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ModelConfig()
        self.encoder = build_encoder(config.encoder)
        self.pe = PositionalEncoding(config.num_freqs)
        self.decoder = ResnetFC(self.pe.d_out, self.encoder.feature_channels, config.d_hidden, config.n_blocks,
                                config.n_combine, config.zero_init)

    def encode(self, images: torch.Tensor) -> EncoderOutput:
        """images (B, 3, H, W), normalised by ``config.input_norm`` (:mod:`dgs_core.model.inputs`) →
        feature maps (in ``encoder.strides`` order) and depth (B, 1, H, W), metres."""
        return self.encoder(images)

    def decode(self, latent: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """latent (B, Q, ΣC), points (B, Q, 3) camera frame → logit (B, Q)."""
        return self.decoder(self.pe(points), latent)

    def query(self, features: list[torch.Tensor], points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
        """Logits (B, Q) at camera-space points from precomputed feature maps."""
        return self.decode(sample_maps(features, points, intrinsics), points)

    def forward(self, images: torch.Tensor, points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W), points (B, Q, 3) camera xyz (m), intrinsics (B, 4) → occupancy (B, Q) ∈ [0, 1]."""
        return torch.sigmoid(self.query(self.encode(images).features, points, intrinsics))
