"""The public weight layouts kept as tables in tests/data (name, shape, dtype per tensor; derived from
the LeReS and DGS model definitions, docs/release_parity.md), and state dicts built from them."""
from __future__ import annotations

from pathlib import Path

import torch

DATA = Path(__file__).parent / "data"
LERES_PREFIX = "module.depth_model."
"""What the DGS trainer strips from the names of LeReS's ``depth_model`` weights (19 characters)."""


def read_table(name: str) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """Rows (name, shape, dtype) of the table ``tests/data/<name>``."""
    rows = []
    for line in (DATA / name).read_text().splitlines():
        if line.startswith("#"):
            continue
        key, shape, dtype = line.split("\t")
        rows.append((key, () if shape == "scalar" else tuple(int(n) for n in shape.split("x")), getattr(torch, dtype)))
    return rows


def table_state(rows, device: str = "meta", seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the rows' names, shapes and dtypes: on ``meta`` (no memory) or on the CPU
    with seeded values a forward pass survives (convolutions and linear layers ~ N(0, 1/fan_in),
    BatchNorm near the identity, step counters 0)."""
    if device == "meta":
        return {k: torch.empty(s, dtype=d, device="meta") for k, s, d in rows}
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape, dtype in rows:
        if not dtype.is_floating_point:
            out[key] = torch.zeros(shape, dtype=dtype)
        elif len(shape) > 1:
            out[key] = torch.randn(shape, generator=g) / float(torch.tensor(shape[1:]).prod()) ** 0.5
        elif key.endswith(("running_var", ".weight")):
            out[key] = 1 + 0.1 * torch.rand(shape, generator=g)
        else:
            out[key] = 0.1 * torch.randn(shape, generator=g)
    return out
