"""Training loop on the generated tiny scenes: the loss falls, outputs are complete, resume
reproduces the uninterrupted run exactly (with and without loader workers), bad inputs are named.
On CUDA (marked ``cuda``): AMP steps and resume, on synthetic batches."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import h5py
import pytest
import torch

from dgs_core.checkpoint import CheckpointError, capture_rng, load_checkpoint, load_model, save_checkpoint
from dgs_core.data import to_device
from dgs_core.experiment import ConfigError, load_experiment, to_dict
from dgs_core import train as train_module
from dgs_core.model import DGSNet
from dgs_core.distributed import Rank, amp_dtype
from dgs_core.run_folder import restore
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


def _cuda_batches(exp, n: int) -> list:
    """``n`` synthetic 48×64 batches of the experiment's sizes, on CUDA (one seed each)."""
    from benchmarks.bench_train_step import synthetic_batch

    return [to_device(synthetic_batch(exp.optim.batch_size, 48, 64, exp.data.near_points, exp.data.non_points,
                                      seed=i), "cuda", exp.model.input_norm) for i in range(n)]


def _adam_steps(opt) -> int:
    return max(int(state["step"]) for state in opt.state.values())


@pytest.mark.cuda
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_training_steps_on_cuda(amp: str) -> None:
    """A few AMP steps on CUDA: finite losses and weights. bf16 has no scaler and Adam takes every
    step; fp16's GradScaler skips exactly the steps whose gradients overflowed (inf norm), halving
    its scale each time, and Adam takes the others."""
    exp = fast(f"optim.amp={amp}")
    device = torch.device("cuda")
    net, module, opt, scaler = build(exp, device, Rank())
    dtype = amp_dtype(exp.optim.amp, device)
    assert dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    assert (scaler is not None) == (amp == "fp16")
    init = [p.detach().clone() for p in net.parameters()]
    norms = []
    for batch in _cuda_batches(exp, 6):
        out = train_step(module, opt, scaler, batch, exp, dtype)
        assert all(math.isfinite(v) for k, v in out.items() if k != "grad_norm"), out
        norms.append(out["grad_norm"])
    skipped = sum(not math.isfinite(n) for n in norms)
    assert _adam_steps(opt) == len(norms) - skipped >= 1, norms
    if scaler is None:
        assert skipped == 0, norms
    else:
        assert scaler.get_scale() == 65536.0 * 0.5 ** skipped, (scaler.get_scale(), norms)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(init, net.parameters()))


@pytest.mark.cuda
def test_resume_on_cuda_continues_like_the_uninterrupted_run(tmp_path: Path) -> None:
    """fp16 AMP on CUDA: 8 steps straight vs 5 steps, a checkpoint, and 3 more steps by a fresh model,
    optimiser and scaler restored from it (``run_folder.restore``, what a rerun of train does). The
    restored state equals the saved one bit for bit. The CUDA backward passes of grid_sample and of
    the DGS op add with atomics, so two uninterrupted runs may already differ in the last bits: the
    resumed run must be as close to the first as a second uninterrupted run is (10× that spread, or
    1e-6 relative where both agree exactly)."""
    exp = fast("optim.amp=fp16")
    device = torch.device("cuda")
    batches = _cuda_batches(exp, 8)

    def steps(state, part) -> list[float]:
        _, module, opt, scaler = state
        return [train_step(module, opt, scaler, b, exp, torch.float16)["loss"] for b in part]

    def weights(state) -> torch.Tensor:
        return torch.cat([p.detach().flatten().double() for p in state[0].parameters()])

    first, second, split = (build(exp, device, Rank()) for _ in range(3))
    losses_first, losses_second = steps(first, batches), steps(second, batches)
    losses_split = steps(split, batches[:5])
    net, _, opt, scaler = split
    path = save_checkpoint(tmp_path / "step_5.pt", model=net, optimizer=opt, scaler=scaler, step=5, epoch=0,
                           position=5 * exp.optim.batch_size, config=to_dict(exp), rng=capture_rng())
    resumed = build(exp, device, Rank())
    assert restore(path, exp, Rank(), resumed[0], resumed[2], resumed[3]).step == 5
    assert resumed[3].state_dict() == scaler.state_dict()
    for saved, loaded in zip(opt.state.values(), resumed[2].state.values()):
        for key, value in saved.items():
            assert torch.equal(loaded[key], value) and loaded[key].device == value.device, key
    losses_split += steps(resumed, batches[5:])

    for what, a, b, c in (("loss", torch.tensor(losses_first), torch.tensor(losses_second), torch.tensor(losses_split)),
                          ("weights", weights(first), weights(second), weights(resumed))):
        spread, off = (b - a).abs().max().item(), (c - a).abs().max().item()
        assert off <= max(10 * spread, 1e-6 * a.abs().max().item()), f"{what}: resumed {off:.3e}, spread {spread:.3e}"
SDF = ("loss.kind=sdf", "loss.sdf_normal_weight=0.1", "model.color=true", "model.embedding=fourier",
       "model.fourier_features=16", "data.surface_points=32", "optim.lr=0.005", "checkpoint.every=6")


def test_sdf_with_colour_and_fourier_trains_and_resumes_exactly(prepared_tiny, tmp_path: Path) -> None:
    """Eq. 2 + the colour head + Fourier inputs on the tiny fixture: the loss falls, every term is
    logged, and 6 steps + resume to 12 equals 12 straight steps bit for bit."""
    torch.set_num_threads(1)
    straight, split = tmp_path / "straight", tmp_path / "split"
    run(prepared_tiny, straight, "optim.iterations=12", *SDF)
    run(prepared_tiny, split, "optim.iterations=6", *SDF)
    run(prepared_tiny, split, "optim.iterations=12", *SDF)
    seq = losses(straight)
    assert losses(split) == seq and sum(seq[-3:]) < sum(seq[:3]), seq
    a, b = load_checkpoint(straight / "final.pt"), load_checkpoint(split / "final.pt")
    assert "pe.B" in a["model"] and "color_head.weight" in a["model"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    tags = set(read_scalars(straight / "scalars.csv").tag)
    assert {"train/surface", "train/eikonal", "train/near", "train/normal", "train/color", "train/depth",
            "val/loss", "val/accuracy"} <= tags and "train/bce" not in tags


def test_sdf_on_version_1_shards_names_the_shard_and_the_fix(prepared_tiny, tmp_path: Path, as_version_1) -> None:
    train_manifest = _copy_split(prepared_tiny, tmp_path, "train")
    shards = sorted(train_manifest.parent.rglob("shard_*.h5"))
    for shard in shards:
        as_version_1(shard)
    with pytest.raises(SchemaError, match=rf"{shards[0]}: loss.kind=sdf needs.*python -m pipeline.prepare"):
        train(fast("optim.iterations=1", "loss.kind=sdf"), train_manifest, prepared_tiny.manifest("scannet", "val"),
              tmp_path / "run", device="cpu")
