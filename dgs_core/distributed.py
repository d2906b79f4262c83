"""Where and how a training process runs: its rank in a torchrun job, its device, AMP and threads.

``init_rank`` joins the process group torchrun describes in the environment (gloo on CPU, NCCL on
CUDA); ``amp_dtype`` maps ``optim.amp`` to an autocast dtype; ``sync_batchnorm`` converts BatchNorm
for CUDA DDP; ``mean_over_ranks`` averages logged scalars; ``set_threads`` sizes torch and Numba.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

DEVICES = ("auto", "cpu", "cuda")
"""Where training runs (the workflow's ``train.device``)."""


@dataclass
class Rank:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_rank(device_name: str) -> tuple[Rank, torch.device]:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (gloo on CPU, nccl on CUDA); pick the device."""
    env = os.environ
    rank = Rank(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda: no CUDA device is visible; use --device cpu")
        torch.cuda.set_device(rank.local_rank)
        device = torch.device("cuda", rank.local_rank)
    else:
        device = torch.device(device_name)
    if rank.world_size > 1 and not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, device


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype for ``optim.amp`` on ``device``: None on CPU or when off."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]


def sync_batchnorm(net: torch.nn.Module, device: torch.device, world_size: int) -> torch.nn.Module:
    """``net`` with every BatchNorm as SyncBatchNorm for CUDA DDP (world_size > 1), else ``net`` unchanged.

    Under DDP each rank otherwise normalises over its own share of the batch; SyncBatchNorm uses the
    statistics of the global batch. Only on CUDA: SyncBatchNorm refuses CPU input in training once a
    process group exists, so gloo/CPU DDP keeps plain BatchNorm. Parameters and buffers are kept (same
    tensors, same state_dict keys), so checkpoints load into an unconverted network.
    """
    if world_size > 1 and device.type == "cuda":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    return net


def mean_over_ranks(values: dict[str, float], rank: Rank, device: torch.device) -> dict[str, float]:
    """Average scalars over the ranks (a collective: every rank must call it at the same step)."""
    if rank.world_size == 1:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    torch_dist.all_reduce(t)
    return dict(zip(values, (t / rank.world_size).tolist()))


def set_threads(n: int) -> None:
    """Use ``n`` threads in torch and in the Numba kernels of the DGS op."""
    import numba

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
