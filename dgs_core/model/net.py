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
from dgs_core.model.decoder import EMBEDDINGS, FourierEncoding, PositionalEncoding, ResnetFC
from dgs_core.model.encoder import Encoder, EncoderConfig, EncoderOutput


@dataclass
class ModelConfig:
    """Model shape. Defaults are the release: five 256-channel maps, 5 blocks × 512 hidden.

    Point embedding and colour (SPEC §3.2, §3.9): ``embedding`` "positional" (the release: NeRF-style,
    ``num_freqs`` octaves) or "fourier" (``fourier_features`` random rows of B ~ N(0, σ²), σ =
    ``fourier_sigma`` cycles per metre, drawn from ``fourier_seed``); ``color`` adds an RGB head.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    d_hidden: int = 512
    n_blocks: int = 5
    n_combine: int = 3
    num_freqs: int = 6
    zero_init: bool = True
    embedding: str = "positional"
    fourier_features: int = 256
    fourier_sigma: float = 0.8
    fourier_seed: int = 0
    color: bool = False

    def __post_init__(self) -> None:
        if self.embedding not in EMBEDDINGS:
            raise ValueError(f"model.embedding: expected one of {EMBEDDINGS}, found {self.embedding!r}")

    @classmethod
    def tiny(cls, channels: int = 4, hidden: int = 16) -> "ModelConfig":
        """A few-thousand-parameter model for CPU tests."""
        enc = EncoderConfig(widths=(8, 8, 8, 8, 8), blocks=(1, 1, 1, 1), out_channels=(channels,) * 5)
        return cls(encoder=enc, d_hidden=hidden, zero_init=False)


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
        self.encoder = Encoder(config.encoder)
        self.pe = (FourierEncoding(config.fourier_features, config.fourier_sigma, config.fourier_seed)
                   if config.embedding == "fourier" else PositionalEncoding(config.num_freqs))
        self.decoder = ResnetFC(self.pe.d_out, self.encoder.feature_channels, config.d_hidden, config.n_blocks,
                                config.n_combine, config.zero_init)
        self.color_head = nn.Linear(config.d_hidden, 3) if config.color else None

    def encode(self, images: torch.Tensor) -> EncoderOutput:
        """images (B, 3, H, W) → feature maps (strides 2…32) and depth (B, 1, H, W), metres."""
        return self.encoder(images)

    def decode(self, latent: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """latent (B, Q, ΣC), points (B, Q, 3) camera frame → logit (B, Q)."""
        return self.decoder(self.pe(points), latent)

    def query(self, features: list[torch.Tensor], points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
        """Logits (B, Q) at camera-space points from precomputed feature maps."""
        return self.decode(sample_maps(features, points, intrinsics), points)

    def query_color(self, features: list[torch.Tensor], points: torch.Tensor, intrinsics: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, Q) and colours (B, Q, 3) RGB in [0, 1] from one decoder pass (``model.color``)."""
        if self.color_head is None:
            raise ValueError("DGSNet.query_color: this model has no colour head; train it with model.color: true")
        h = self.decoder.hidden(self.pe(points), sample_maps(features, points, intrinsics))
        return self.decoder.lin_out(h)[..., 0], torch.sigmoid(self.color_head(h))

    def forward(self, images: torch.Tensor, points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W), points (B, Q, 3) camera xyz (m), intrinsics (B, 4) → occupancy (B, Q) ∈ [0, 1]."""
        return torch.sigmoid(self.query(self.encode(images).features, points, intrinsics))
