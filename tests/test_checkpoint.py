"""Checkpoints: weights_only round trip, atomic writes, config mismatch and corrupt files named,
RNG states restored, and load_model rebuilding the network from the stored config alone."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from dgs_core import checkpoint as ck
from dgs_core.experiment import load_experiment, to_dict
from dgs_core.model import DGSNet


def _setup() -> tuple[DGSNet, torch.optim.Optimizer, dict]:
    exp = load_experiment([], ["model.encoder.kind=resnet", "model.encoder.widths=[4, 4, 4, 4, 4]",
                               "model.encoder.blocks=[1, 1, 1, 1]", "model.encoder.out_channels=[2, 2, 2, 2, 2]",
                               "model.d_hidden=8",
                               "model.zero_init=false"])
    torch.manual_seed(0)
    net = DGSNet(exp.model)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.randn(2, 3, 16, 16), torch.rand(2, 5, 3) + 1, torch.ones(2, 4)).sum().backward()
    opt.step()  # non-empty Adam state
    return net, opt, to_dict(exp)


def test_round_trip_is_exact_and_weights_only(tmp_path: Path) -> None:
    net, opt, config = _setup()
    path = ck.save_checkpoint(tmp_path / "a.pt", model=net, optimizer=opt, step=7, epoch=2, position=16,
                              config=config, rng=ck.capture_rng(), best=0.5)
    raw = torch.load(path, weights_only=True)  # no pickled classes inside
    assert (raw["step"], raw["epoch"], raw["position"], raw["best"]) == (7, 2, 16, 0.5)
    assert raw["config"] == config and raw["code_version"]
    for k, v in net.state_dict().items():
        assert torch.equal(raw["model"][k], v), k
    state = raw["optimizer"]["state"][0]
    assert torch.equal(state["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert not list(tmp_path.glob("*.partial"))


def test_load_model_rebuilds_the_same_function(tmp_path: Path) -> None:
    net, opt, config = _setup()
    path = ck.save_checkpoint(tmp_path / "m.pt", model=net, step=1, epoch=0, position=0, config=config,
                              rng=ck.capture_rng())
    net.eval()
    loaded, stored = ck.load_model(path)
    assert stored == config and not loaded.training
    x, p, k = torch.randn(1, 3, 16, 16), torch.rand(1, 9, 3) + 1, torch.tensor([[1.8, 2.4, 0.0, 0.0]])
    with torch.no_grad():
        assert torch.equal(loaded(x, p, k), net(x, p, k))


def test_failed_write_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    net, opt, config = _setup()
    path = ck.save_checkpoint(tmp_path / "c.pt", model=net, step=1, epoch=0, position=0, config=config,
                              rng=ck.capture_rng())
    before = path.read_bytes()

    def dying_save(obj, f):  # writes half a file, then the process "dies"
        Path(f).write_bytes(b"PK\x03\x04 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(path, model=net, step=2, epoch=0, position=0, config=config, rng=ck.capture_rng())
    assert path.read_bytes() == before  # only the .partial is broken
    assert ck.load_checkpoint(path)["step"] == 1


def test_config_mismatch_names_file_and_keys(tmp_path: Path) -> None:
    net, _, config = _setup()
    path = ck.save_checkpoint(tmp_path / "c.pt", model=net, step=1, epoch=0, position=0, config=config,
                              rng=ck.capture_rng())
    other = {**config, "optim": {**config["optim"], "lr": 0.5, "iterations": 9}}
    with pytest.raises(ck.CheckpointError, match=rf"{path}.*optim\.iterations.*optim\.lr: 0\.0001 != 0\.5"):
        ck.load_checkpoint(path, expect_config=other)
    with pytest.raises(ck.CheckpointError, match="optim.lr") as err:
        ck.load_checkpoint(path, expect_config=other, ignore=["optim.iterations"])
    assert "iterations" not in str(err.value)
    ck.load_checkpoint(path, expect_config=config)


def test_corrupt_and_foreign_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ck.CheckpointError, match=str(bad)):
        ck.load_checkpoint(bad)
    foreign = tmp_path / "weights.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(ck.CheckpointError, match=rf"{foreign} lacks \['step'"):
        ck.load_model(foreign)
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        ck.load_checkpoint(tmp_path / "nothing.pt")


def test_rng_states_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    path = ck.save_checkpoint(tmp_path / "r.pt", model=torch.nn.Linear(1, 1), step=0, epoch=0, position=0,
                              config={}, rng=ck.capture_rng())
    expected = (torch.rand(4), np.random.rand(4), np.random.randn(3), [random.random() for _ in range(4)])
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    ck.restore_rng(ck.load_checkpoint(path)["rng"])
    got = (torch.rand(4), np.random.rand(4), np.random.randn(3), [random.random() for _ in range(4)])
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert np.array_equal(got[2], expected[2]) and got[3] == expected[3]


def test_checkpoints_from_before_the_encoder_kinds_load_as_the_small_imagenet_resnet(tmp_path: Path) -> None:
    """Older checkpoints have no model.encoder.kind / model.input_norm: they are the small ResNet
    trained on ImageNet-normalised images (not the new release defaults)."""
    net, _, config = _setup()
    legacy = {**config, "model": {k: v for k, v in config["model"].items() if k != "input_norm"}}
    legacy["model"]["encoder"] = {k: v for k, v in config["model"]["encoder"].items() if k != "kind"}
    path = ck.save_checkpoint(tmp_path / "old.pt", model=net, step=1, epoch=0, position=0, config=legacy,
                              rng=ck.capture_rng())
    loaded, stored = ck.load_model(path)
    assert stored["model"]["encoder"]["kind"] == "resnet" and stored["model"]["input_norm"] == "imagenet"
    assert loaded.config.encoder.kind == "resnet" and loaded.config.input_norm == "imagenet"
