"""DDP on CPU: two gloo processes train the tiny config with the global batch split between them;
rank 0 alone writes the run folder, and both ranks end with identical, finite parameters (BatchNorm
normalises over each rank's half-batch, so the run is not bit-equal to one process with the global batch)."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch._dynamo  # noqa: F401  (Adam imports it, ~5 s: once here rather than in each forked rank)
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from dgs_core.checkpoint import load_checkpoint
from dgs_core.experiment import load_experiment
from dgs_core.train import Trainer
from dgs_core.train_log import read_scalars

REPO = Path(__file__).resolve().parents[1]
SETS = ["model.encoder.out_channels=[4, 4, 4, 4, 4]", "model.d_hidden=16", "data.near_points=64",
        "data.non_points=16", "data.workers=0", "optim.batch_size=4", "optim.iterations=4",
        "checkpoint.every=2", "validation.every=4", "validation.frames=2", "log.every=1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, train: str, val: str, out: str) -> None:
    """One torchrun-like process: the environment torchrun would set, then the trainer."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    exp = load_experiment([REPO / "config" / "experiments" / "tiny.yaml"], SETS)
    trainer = Trainer(exp, train, val, out, device="cpu")
    assert trainer.per_rank == 2 and trainer.rank.world_size == world
    trainer.run()
    # parameters only: BatchNorm running statistics are per rank (DDP broadcasts rank 0's before each forward)
    torch.save({k: v.detach() for k, v in trainer.net.named_parameters()}, Path(out).parent / f"rank{rank}.pt")
    torch_dist.destroy_process_group()


def test_two_gloo_ranks_stay_in_sync(prepared_tiny, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = (2, _free_port(), str(prepared_tiny.manifest("scannet", "train")),
            str(prepared_tiny.manifest("scannet", "val")), str(out))
    # fork: the ranks inherit the imported modules (a spawned interpreter re-imports torch for ~10 s)
    mp.start_processes(_rank, args=args, nprocs=2, join=True, start_method="fork")
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    final = load_checkpoint(out / "final.pt")
    assert final["world_size"] == 2 and final["step"] == 4
    for key, value in rank0.items():
        assert torch.equal(value, rank1[key]), key  # DDP averaged the same gradients on both ranks
        assert torch.equal(value, final["model"][key]), key
        assert torch.isfinite(value.float()).all(), key
    scalars = read_scalars(out / "scalars.csv")
    assert list(scalars[scalars.tag == "train/loss"].step) == [1, 2, 3, 4]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_0000002.pt", "step_0000004.pt"]
