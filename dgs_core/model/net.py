"""DGSNet: encoder + per-point sampling of every feature map + ResNetFC occupancy decoder.

Query points are camera-space xyz (OpenCV frame, metres) with normalised intrinsics
``(a_u, a_v, c_u, c_v)`` (see :mod:`dgs_core.camera`). Occupancy o ∈ [0, 1], 1 = occupied.

``model.features`` selects what a point's latent holds: the image maps (``image``, the release), the
voxel branch's samples (``voxel``, :mod:`dgs_core.model.voxel`) or both (``image+voxel``). A model's
feature list (``encode(...).features``) is the image maps used, then at most one
:class:`~dgs_core.model.voxel.VoxelFeatures`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from dgs_core.camera import project
from dgs_core.model.decoder import EMBEDDINGS, FourierEncoding, PositionalEncoding, ResnetFC
from dgs_core.model.encoder import Encoder, EncoderConfig, EncoderOutput
from dgs_core.model.inputs import INPUT_NORMS
from dgs_core.model.leres import LeReSEncoder
from dgs_core.model.voxel import VoxelBranch, VoxelConfig, split_features

FEATURES = ("image", "voxel", "image+voxel")
"""What a query point's latent holds (``model.features``)."""
DEPTH_HEADS = ("end_to_end", "frozen")
"""``model.depth_head``: the voxel branch back-propagates into the depth head, or reads it detached."""


@dataclass
class ModelConfig:
    """Model shape and input convention. Defaults are the release: the LeReS ResNeXt-101 encoder
    (five 256-channel maps), a 5 blocks × 512 decoder, and RGB in [0, 1] (``input_norm="none"``).

    Point embedding and colour (SPEC §3.2, §3.10): ``embedding`` "positional" (the release: NeRF-style,
    ``num_freqs`` octaves) or "fourier" (``fourier_features`` random rows of B ~ N(0, σ²), σ =
    ``fourier_sigma`` cycles per metre, drawn from ``fourier_seed``); ``color`` adds an RGB head.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    d_hidden: int = 512
    n_blocks: int = 5
    n_combine: int = 3
    num_freqs: int = 6
    zero_init: bool = True
    input_norm: str = "none"
    features: str = "image"
    depth_head: str = "end_to_end"
    voxel: VoxelConfig = field(default_factory=VoxelConfig)
    embedding: str = "positional"
    fourier_features: int = 256
    fourier_sigma: float = 0.8
    fourier_seed: int = 0
    color: bool = False

    def __post_init__(self) -> None:
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"model.input_norm: expected one of {INPUT_NORMS}, found {self.input_norm!r}")
        if self.features not in FEATURES or self.depth_head not in DEPTH_HEADS:
            raise ValueError(f"model: features must be one of {FEATURES} and depth_head one of {DEPTH_HEADS}, "
                             f"found {self.features!r}, {self.depth_head!r}")
        if "voxel" in self.features and not self.encoder.depth_head:
            raise ValueError("model: features with 'voxel' voxelise the predicted depth; "
                             "set model.encoder.depth_head: true")
        if self.embedding not in EMBEDDINGS:
            raise ValueError(f"model.embedding: expected one of {EMBEDDINGS}, found {self.embedding!r}")

    @classmethod
    def tiny(cls, channels: int = 4, hidden: int = 16) -> "ModelConfig":
        """A few-thousand-parameter model (the small ``resnet`` encoder) for CPU tests."""
        enc = EncoderConfig(kind="resnet", widths=(8, 8, 8, 8, 8), blocks=(1, 1, 1, 1), out_channels=(channels,) * 5)
        return cls(encoder=enc, d_hidden=hidden, zero_init=False)


def build_encoder(config: EncoderConfig) -> nn.Module:
    """The encoder ``config.kind`` names: :class:`Encoder` (``resnet``) or :class:`LeReSEncoder`."""
    return Encoder(config) if config.kind == "resnet" else LeReSEncoder(config)


def sample_maps(features: list, points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Bilinear, border-clamped, ``align_corners=False`` samples of every map, concatenated.

    Args:
        features: maps (B, C_i, H_i, W_i), then optionally one VoxelFeatures (sampled last).
        points: (B, Q, 3) camera frame, metres. intrinsics: (B, 4) normalised.
    Returns:
        (B, Q, ΣC_i), differentiable w.r.t. the maps *and* the points (through ``grid_sample``).
    """
    maps, voxels = split_features(features)
    grid = project(points, intrinsics)[:, :, None, :]  # (B, Q, 1, 2)
    out = [F.grid_sample(f, grid.to(f.dtype), mode="bilinear", padding_mode="border", align_corners=False)[..., 0]
           .transpose(1, 2) for f in maps]
    if voxels is not None:
        out.append(voxels.sample(points))
    return torch.cat(out, dim=-1)


class DGSNet(nn.Module):
    """Single-view implicit reconstruction network."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ModelConfig()
        self.encoder = build_encoder(config.encoder)
        self.voxel = VoxelBranch(config.voxel) if "voxel" in config.features else None
        self.pe = (FourierEncoding(config.fourier_features, config.fourier_sigma, config.fourier_seed)
                   if config.embedding == "fourier" else PositionalEncoding(config.num_freqs))
        latent = (self.encoder.feature_channels if "image" in config.features else 0) + (
            config.voxel.out_channels if self.voxel is not None else 0)
        self.decoder = ResnetFC(self.pe.d_out, latent, config.d_hidden, config.n_blocks, config.n_combine,
                                config.zero_init)
        self.color_head = nn.Linear(config.d_hidden, 3) if config.color else None

    def encode(self, images: torch.Tensor, intrinsics: torch.Tensor | None = None) -> EncoderOutput:
        """images (B, 3, H, W), normalised by ``config.input_norm`` (:mod:`dgs_core.model.inputs`) →
        the feature list (module docstring) and depth (B, 1, H, W), metres.

        ``intrinsics`` (B, 4) normalised are needed when the features include the voxel branch (it
        back-projects the predicted depth); an image-only model ignores them.
        """
        out = self.encoder(images)
        if self.voxel is None:
            return out
        if intrinsics is None:
            raise ValueError("DGSNet.encode: this model voxelises its predicted depth (model.features = "
                             f"{self.config.features!r}); pass the (B, 4) normalised intrinsics")
        depth = out.depth.detach() if self.config.depth_head == "frozen" else out.depth
        maps = out.features if "image" in self.config.features else []
        return EncoderOutput([*maps, self.voxel(depth, intrinsics.to(depth.dtype))], out.depth)

    def decode(self, latent: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """latent (B, Q, ΣC), points (B, Q, 3) camera frame → logit (B, Q)."""
        return self.decoder(self.pe(points), latent)

    def query(self, features: list, points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
        """Logits (B, Q) at camera-space points from precomputed feature maps."""
        return self.decode(sample_maps(features, points, intrinsics), points)

    def query_color(self, features: list, points: torch.Tensor, intrinsics: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, Q) and colours (B, Q, 3) RGB in [0, 1] from one decoder pass (``model.color``)."""
        if self.color_head is None:
            raise ValueError("DGSNet.query_color: this model has no colour head; train it with model.color: true")
        h = self.decoder.hidden(self.pe(points), sample_maps(features, points, intrinsics))
        return self.decoder.lin_out(h)[..., 0], torch.sigmoid(self.color_head(h))

    def forward(self, images: torch.Tensor, points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
        """images (B, 3, H, W), points (B, Q, 3) camera xyz (m), intrinsics (B, 4) → occupancy (B, Q) ∈ [0, 1]."""
        return torch.sigmoid(self.query(self.encode(images, intrinsics).features, points, intrinsics))
