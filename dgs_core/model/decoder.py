"""DVR/pixelNeRF-style ResNetFC occupancy decoder with optional forward-mode gradient tracking (SPEC §3).

Inputs per query point: an embedding of its camera-space xyz (the NeRF-style positional encoding,
39 dims, or random Fourier features) and the latent (concatenated feature-map samples). The network
returns a *logit*; occupancy is ``sigmoid(logit)`` ∈ [0, 1] with 1 = occupied (inside/behind the
surface), 0 = free space — one convention everywhere (an SDF model reads the raw output as s, SPEC §3.6).

Forward-mode tracking carries every activation as a (..., 4, D) tensor ``[value, ∂/∂x, ∂/∂y, ∂/∂z]``:
linear layers apply W to all four rows and the bias to the value only, ReLU masks all four rows by the
sign of the value, and the sigmoid's derivative is σ(1−σ).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


class PositionalEncoding(nn.Module):
    """xyz (..., 3) metres → (..., 3 + 3·2·F) = (..., 39) for F = 6 frequencies π·2^k.

    Layout: ``[x, y, z, sin(f_0·xyz), cos(f_0·xyz), sin(f_1·xyz), cos(f_1·xyz), ...]``.
    """

    def __init__(self, num_freqs: int = 6) -> None:
        super().__init__()
        self.num_freqs = num_freqs
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(num_freqs, dtype=torch.float64),
                             persistent=False)

    @property
    def d_out(self) -> int:
        return 3 + 6 * self.num_freqs

    def _angles(self, p: torch.Tensor) -> torch.Tensor:
        # (..., F, 3): frequency-major so sin/cos blocks interleave per frequency.
        return p[..., None, :] * self.freqs.to(p.dtype)[:, None]

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        a = self._angles(p)
        sc = torch.stack((torch.sin(a), torch.cos(a)), dim=-2)  # (..., F, 2, 3)
        return torch.cat((p, sc.flatten(-3)), dim=-1)

    def tangents(self, p: torch.Tensor) -> torch.Tensor:
        """Analytic Jacobian of :meth:`forward`: (..., 3, 39), row k = ∂PE/∂p_k."""
        a = self._angles(p)
        f = self.freqs.to(p.dtype)[:, None]
        dsin, dcos = f * torch.cos(a), -f * torch.sin(a)  # (..., F, 3): derivative of each entry w.r.t. its own coord
        eye = torch.eye(3, dtype=p.dtype, device=p.device)
        # Entry (freq, s/c, j) depends only on p_j: its derivative w.r.t. p_k is δ_jk·d(...).
        d = torch.stack((dsin, dcos), dim=-2)[..., None, :, :, :] * eye[:, None, None, :]  # (...,3,F,2,3)
        ident = eye.expand(*p.shape[:-1], 3, 3)
        return torch.cat((ident, d.flatten(-3)), dim=-1)


class FourierEncoding(nn.Module):
    """Random Fourier features (Tancik et al. 2020): xyz (..., 3) metres → (..., 2m),
    ``γ(p) = [cos(2π·Bp), sin(2π·Bp)]`` with B (m, 3) drawn once from N(0, σ²) (σ in cycles per
    metre) by a generator seeded with ``seed``; B is a buffer, so checkpoints store it.
    """

    def __init__(self, features: int = 256, sigma: float = 0.8, seed: int = 0) -> None:
        super().__init__()
        if features < 1 or not sigma > 0:
            raise ValueError(f"FourierEncoding: expected features ≥ 1 and sigma > 0, found {features}, {sigma}")
        gen = torch.Generator().manual_seed(int(seed))
        self.register_buffer("B", torch.randn(features, 3, generator=gen, dtype=torch.float64).float() * sigma)

    @property
    def d_out(self) -> int:
        return 2 * self.B.shape[0]

    def _angles(self, p: torch.Tensor) -> torch.Tensor:
        return 2 * math.pi * p @ self.B.to(p.dtype).T  # (..., m)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        a = self._angles(p)
        return torch.cat((torch.cos(a), torch.sin(a)), dim=-1)

    def tangents(self, p: torch.Tensor) -> torch.Tensor:
        """Analytic Jacobian of :meth:`forward`: (..., 3, 2m), row k = ∂γ/∂p_k
        (∂cos a_j/∂p_k = −2π·B_jk·sin a_j, ∂sin a_j/∂p_k = 2π·B_jk·cos a_j)."""
        a = self._angles(p)[..., None, :]            # (..., 1, m)
        w = 2 * math.pi * self.B.to(p.dtype).T       # (3, m)
        return torch.cat((-w * torch.sin(a), w * torch.cos(a)), dim=-1)


EMBEDDINGS = ("positional", "fourier")


class ResnetBlockFC(nn.Module):
    """x + fc_1(relu(fc_0(relu(x)))); ``zero_init`` starts it as the identity (pixelNeRF's init)."""

    def __init__(self, width: int, zero_init: bool = True) -> None:
        super().__init__()
        self.fc_0 = nn.Linear(width, width)
        self.fc_1 = nn.Linear(width, width)
        nn.init.kaiming_normal_(self.fc_0.weight, a=0, mode="fan_in")
        nn.init.zeros_(self.fc_0.bias)
        nn.init.zeros_(self.fc_1.bias)
        if zero_init:
            nn.init.zeros_(self.fc_1.weight)
        else:
            nn.init.kaiming_normal_(self.fc_1.weight, a=0, mode="fan_in")


Linear = Callable[[nn.Linear, torch.Tensor], torch.Tensor]


def _linear_plain(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, layer.weight, layer.bias)


def _linear_tracked(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    # x: (..., 4, D). W acts on value and tangents; the bias only shifts the value row.
    y = F.linear(x, layer.weight)
    return torch.cat((y[..., :1, :] + layer.bias, y[..., 1:, :]), dim=-2)


def _relu_tracked(x: torch.Tensor) -> torch.Tensor:
    return x * (x[..., :1, :] > 0).to(x.dtype)


class ResnetFC(nn.Module):
    """ResNetFC: lin_in → n_blocks residual blocks (latent added before the first ``n_combine``) →
    relu → lin_out (one logit).

    Args:
        d_in: positional-encoding width (39). d_latent: concatenated feature channels.
        d_hidden: block width (512 by default). zero_init: pixelNeRF's identity init of each block.
    """

    def __init__(self, d_in: int, d_latent: int, d_hidden: int = 512, n_blocks: int = 5, n_combine: int = 3,
                 zero_init: bool = True) -> None:
        super().__init__()
        if not 0 <= n_combine <= n_blocks:
            raise ValueError(f"ResnetFC: expected 0 <= n_combine <= n_blocks, found {n_combine}, {n_blocks}")
        self.d_in, self.d_latent = d_in, d_latent
        self.lin_in = nn.Linear(d_in, d_hidden)
        self.lin_z = nn.ModuleList(nn.Linear(d_latent, d_hidden) for _ in range(n_combine))
        self.blocks = nn.ModuleList(ResnetBlockFC(d_hidden, zero_init) for _ in range(n_blocks))
        self.lin_out = nn.Linear(d_hidden, 1)
        for lin in [self.lin_in, self.lin_out, *self.lin_z]:
            nn.init.kaiming_normal_(lin.weight, a=0, mode="fan_in")
            nn.init.zeros_(lin.bias)

    def _trunk(self, x: torch.Tensor, z: torch.Tensor, lin: Linear, relu: Callable[[torch.Tensor], torch.Tensor]
               ) -> torch.Tensor:
        h = lin(self.lin_in, x)
        for i, blk in enumerate(self.blocks):
            if i < len(self.lin_z):
                h = h + lin(self.lin_z[i], z)
            h = h + lin(blk.fc_1, relu(lin(blk.fc_0, relu(h))))
        return relu(h)

    def _run(self, x: torch.Tensor, z: torch.Tensor, lin: Linear, relu: Callable[[torch.Tensor], torch.Tensor]
             ) -> torch.Tensor:
        return lin(self.lin_out, self._trunk(x, z, lin, relu))[..., 0]

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x (..., d_in) encoded xyz, z (..., d_latent) latent → logit (...)."""
        return self._run(x, z, _linear_plain, F.relu)

    def hidden(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The last hidden activation (..., d_hidden) that ``lin_out`` (and a colour head) reads."""
        return self._trunk(x, z, _linear_plain, F.relu)

    def forward_tracked(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Forward-mode: x (..., 4, d_in), z (..., 4, d_latent) ``[value, ∂x, ∂y, ∂z]`` → (..., 4) logit
        value and its derivatives w.r.t. the query point."""
        return self._run(x, z, _linear_tracked, _relu_tracked)


def sigmoid_tracked(t: torch.Tensor) -> torch.Tensor:
    """(..., 4) tracked logit → (..., 4) tracked occupancy: σ and σ(1−σ)·∂logit."""
    s = torch.sigmoid(t[..., :1])
    return torch.cat((s, s * (1 - s) * t[..., 1:]), dim=-1)
