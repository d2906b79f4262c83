"""Training loop on the generated tiny scenes: the loss falls, outputs are complete, resume
reproduces the uninterrupted run exactly (with and without loader workers), bad inputs are named."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import h5py
import pytest
import torch

from dgs_core.checkpoint import CheckpointError, load_checkpoint, load_model
from dgs_core.experiment import ConfigError, load_experiment
from dgs_core import train as train_module
from dgs_core.model import DGSNet
from dgs_core.distributed import Rank
from dgs_core.train import build, train, train_step
from dgs_core.train_log import read_scalars
from pipeline.shards import SchemaError

REPO = Path(__file__).resolve().parents[1]
TINY = [REPO / "config" / "experiments" / "tiny.yaml"]
FAST = ["model.encoder.out_channels=[4, 4, 4, 4, 4]", "model.d_hidden=16", "data.near_points=64",
        "data.non_points=16", "data.workers=0", "optim.batch_size=2", "checkpoint.every=2",
        "validation.every=4", "validation.frames=4", "log.every=1"]


def fast(*sets: str):
    """The tiny overlay shrunk further for tests (64×48 shards of ``prepared_tiny``)."""
    return load_experiment(TINY, FAST + list(sets))


def run(prepared, out: Path, *sets: str, resume: str = "auto") -> Path:
    return train(fast(*sets), prepared.manifest("scannet", "train"), prepared.manifest("scannet", "val"), out,
                 resume=resume, device="cpu")


def losses(out: Path) -> list[float]:
    s = read_scalars(out / "scalars.csv")
    rows = s[s.tag == "train/loss"]
    assert list(rows.step) == list(range(1, len(rows) + 1))
    return rows.value.tolist()


def test_loss_falls_and_outputs_are_complete(prepared_tiny, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    final = run(prepared_tiny, out, "optim.iterations=20", "optim.lr=0.01")
    seq = losses(out)
    assert len(seq) == 20
    assert sum(seq[-5:]) / 5 < 0.8 * sum(seq[:5]) / 5, seq
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_0000018.pt", "step_0000020.pt"]
    assert list((out / "tb").glob("events.out.tfevents.*"))
    scalars = read_scalars(out / "scalars.csv")
    assert {"train/bce", "train/grad", "train/depth", "train/grad_norm", "train/lr", "train/samples_per_s",
            "val/loss", "val/accuracy", "val/iou"} <= set(scalars.tag)
    val = scalars[scalars.tag == "val/loss"]
    ckpt = load_checkpoint(out / "best.pt")
    assert ckpt["best"] == val.value.min() and ckpt["step"] == int(val.step[val.value.idxmin()])
    net, config = load_model(final)
    assert config == load_checkpoint(final)["config"] and config["optim"]["iterations"] == 20
    assert (out / "config.yaml").read_text().startswith("model:")
    accuracy = scalars[scalars.tag == "val/accuracy"].value
    assert 0 <= accuracy.min() and accuracy.max() <= 1


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_reproduces_the_uninterrupted_run(prepared_tiny, tmp_path: Path, workers: int,
                                                monkeypatch) -> None:
    """8 steps straight vs 5 steps + resume to 8 (mid-epoch: 12 frames / batch 2 = 6 steps per epoch,
    so the resumed part crosses an epoch boundary). Losses and final weights equal bit for bit."""
    torch.set_num_threads(1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    run(prepared_tiny, straight, "optim.iterations=8", "checkpoint.every=5")
    run(prepared_tiny, split, "optim.iterations=5", "checkpoint.every=5")
    steps = []  # the resumed run must do only the 3 missing steps (a restart would reproduce them too)
    monkeypatch.setattr(train_module, "train_step", lambda *a: steps.append(1) or train_step(*a))
    run(prepared_tiny, split, "optim.iterations=8", "checkpoint.every=5", f"data.workers={workers}")
    assert len(steps) == 3
    assert losses(split) == losses(straight)
    a, b = load_checkpoint(straight / "final.pt"), load_checkpoint(split / "final.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert (a["step"], a["epoch"], a["position"]) == (b["step"], b["epoch"], b["position"]) == (8, 1, 4)


ONE_CYCLE = ["optim.schedule=one_cycle", "optim.lr=0.001", "optim.max_lr=0.01", "optim.warmup_fraction=0.25",
             "optim.final_div=100", "optim.iterations=8", "checkpoint.every=5"]


def test_one_cycle_schedule_and_its_exact_resume(prepared_tiny, tmp_path: Path, monkeypatch) -> None:
    """A one-cycle run killed after step 6 and resumed from its step-5 checkpoint repeats the
    uninterrupted run bit for bit, learning rates included; the rates follow the cosine one-cycle
    (lr → max_lr over 25 % of 8 steps, then down to lr / final_div at the last step)."""
    torch.set_num_threads(1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    run(prepared_tiny, straight, *ONE_CYCLE)
    done = []

    def crash(*a):
        if len(done) == 6:
            raise KeyboardInterrupt("killed")
        done.append(1)
        return train_step(*a)

    monkeypatch.setattr(train_module, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        run(prepared_tiny, split, *ONE_CYCLE)
    steps = []
    monkeypatch.setattr(train_module, "train_step", lambda *a: steps.append(1) or train_step(*a))
    run(prepared_tiny, split, *ONE_CYCLE)
    assert len(steps) == 3  # resumed at step 5
    assert losses(split) == losses(straight)
    a, b = load_checkpoint(straight / "final.pt"), load_checkpoint(split / "final.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["scheduler"] == b["scheduler"] and a["scheduler"]["total_steps"] == 8
    scalars = [read_scalars(d / "scalars.csv") for d in (straight, split)]
    lrs = [s[s.tag == "train/lr"].value.tolist() for s in scalars]
    assert lrs[0] == lrs[1]
    peak = 0.25 * 8 - 1  # OneCycleLR reaches max_lr after pct_start × total − 1 steps
    want = [0.001 + (0.01 - 0.001) * (1 - math.cos(math.pi * k / peak)) / 2 if k <= peak else
            1e-5 + (0.01 - 1e-5) * (1 + math.cos(math.pi * (k - peak) / (7 - peak))) / 2 for k in range(8)]
    assert lrs[0] == pytest.approx(want, rel=1e-9)
    with pytest.raises(ConfigError, match="schedule spans 8 steps, this run 10"):
        run(prepared_tiny, split, *ONE_CYCLE, "optim.iterations=10")


def test_resume_with_another_config_names_checkpoint_and_key(prepared_tiny, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(prepared_tiny, out, "optim.iterations=2")
    with pytest.raises(CheckpointError, match=r"step_0000002\.pt.*loss\.grad_weight: 0\.01 != 0\.5"):
        run(prepared_tiny, out, "optim.iterations=4", "loss.grad_weight=0.5")
    run(prepared_tiny, out, "optim.iterations=1", "loss.grad_weight=0.5", resume="none")  # a fresh start
    assert losses(out) == losses(out)[:1] and sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "step_0000001.pt"]


def _copy_split(prepared, tmp_path: Path, split: str) -> Path:
    src = prepared.manifest("scannet", split).parent
    dst = tmp_path / split
    shutil.copytree(src, dst)
    return dst / "manifest.parquet"


def test_missing_and_foreign_shards_are_named(prepared_tiny, tmp_path: Path) -> None:
    train_manifest = _copy_split(prepared_tiny, tmp_path, "train")
    val = prepared_tiny.manifest("scannet", "val")
    shard = sorted(train_manifest.parent.rglob("shard_*.h5"))[0]
    with h5py.File(shard, "r+") as f:
        f.attrs["schema_version"] = 999
    with pytest.raises(SchemaError, match=str(shard)):
        train(fast("optim.iterations=1"), train_manifest, val, tmp_path / "a", device="cpu")
    shard.unlink()
    with pytest.raises(FileNotFoundError, match=str(shard.name)):
        train(fast("optim.iterations=1"), train_manifest, val, tmp_path / "b", device="cpu")


def test_val_shards_must_match_the_training_camera(prepared_tiny, tmp_path: Path) -> None:
    val = _copy_split(prepared_tiny, tmp_path, "val")
    shard = sorted(val.parent.rglob("shard_*.h5"))[0]
    with h5py.File(shard, "r+") as f:
        f.attrs["width"] = 32
    with pytest.raises(ValueError, match=rf"{shard}.*width is 32, expected 64"):
        train(fast("optim.iterations=1"), prepared_tiny.manifest("scannet", "train"), val, tmp_path / "c",
              device="cpu")


def test_init_encoder_loads_pretrained_weights(tmp_path: Path) -> None:
    torch.manual_seed(5)
    donor = DGSNet(fast().model).encoder
    path = tmp_path / "encoder.pt"
    torch.save(donor.state_dict(), path)
    net = build(fast(f"init.encoder={path}"), torch.device("cpu"), Rank())[0]
    for key, value in donor.state_dict().items():
        assert torch.equal(net.encoder.state_dict()[key], value), key
    with pytest.raises(ValueError, match="weights do not fit"):
        build(fast(f"init.encoder={path}", "model.encoder.out_channels=[2, 2, 2, 2, 2]"), torch.device("cpu"), Rank())
