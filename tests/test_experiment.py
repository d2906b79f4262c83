"""Experiment configs: release defaults, YAML deltas merged in order, overrides, and errors that
name the file and the dotted key; the shipped ablation files change exactly the gradient mode."""
from __future__ import annotations

from pathlib import Path

import pytest

from dgs_core.experiment import ConfigError, Experiment, flatten, from_dict, load_experiment, parse_set, to_dict
from dgs_core.model import ModelConfig

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "config" / "experiments"
ABLATIONS = ("nograd", "fixed_encoder", "numerical", "autograd")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_release_settings() -> None:
    """SPEC §3: 2048 + 512 points per image, batch 32, Adam lr 1e-4, λ = 0.01, 5 × 256-channel maps."""
    exp = load_experiment()
    assert exp == Experiment()
    assert (exp.data.near_points, exp.data.non_points, exp.optim.batch_size, exp.optim.lr) == (2048, 512, 32, 1e-4)
    assert 100_000 <= exp.optim.iterations <= 200_000
    assert exp.loss.gradient_mode == "dgs" and exp.loss.grad_weight == 0.01 and not exp.data.augment
    assert exp.model.encoder.out_channels == (256,) * 5 and exp.model.d_hidden == 512
    assert exp.model.encoder.kind == "leres_resnext101" and exp.model.input_norm == "none"  # the released model


def test_files_merge_in_order_and_sets_win(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.yaml", "optim: {lr: 1e-3, batch_size: 4}\nmodel: {encoder: {kind: resnet, widths: [8, 8, 8, 8, 8]}}\n")
    b = _write(tmp_path, "b.yaml", "optim: {batch_size: 2}\n")
    exp = load_experiment([a, b], ["optim.grad_clip=0.5", "model.encoder.blocks=[1, 1, 1, 1]"])
    assert exp.optim.lr == 1e-3          # "1e-3" is a YAML 1.1 string; float fields accept it
    assert exp.optim.batch_size == 2     # later file wins
    assert exp.optim.grad_clip == 0.5
    assert exp.model.encoder.widths == (8,) * 5 and exp.model.encoder.blocks == (1,) * 4
    assert exp.model.encoder.out_channels == (256,) * 5  # untouched siblings keep the default


@pytest.mark.parametrize("text, key", [
    ("optim: {learning_rate: 0.1}\n", "optim.learning_rate"),
    ("optimizer: {lr: 0.1}\n", "optimizer"),
    ("model: {encoder: {width: [1]}}\n", "model.encoder.width"),
])
def test_unknown_keys_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError, match=f"{path}.*'{key}'"):
        load_experiment([path])


@pytest.mark.parametrize("text, match", [
    ("optim: {batch_size: 2.5}\n", "'optim.batch_size' must be int"),
    ("data: {augment: 1}\n", "'data.augment' must be bool"),
    ("loss: {gradient_mode: magic}\n", "gradient_mode"),
    ("optim: {iterations: null, epochs: null}\n", "stop criterion"),
    ("optim: 3\n", "'optim' must be a mapping"),
    ("model: {encoder: {kind: vgg}}\n", "encoder.kind"),
    ("model: {encoder: {widths: [8, 8, 8, 8, 8]}}\n", "encoder.widths shapes the 'resnet' kind only"),
    ("model: {input_norm: zscore}\n", "model.input_norm"),
    ("optim: {schedule: cosine}\n", "optim.schedule: expected one of"),
    ("optim: {schedule: one_cycle}\n", "one_cycle needs max_lr > lr"),
    ("optim: {schedule: one_cycle, lr: 0.001, max_lr: 0.01, warmup_fraction: 1.5}\n", "0 < warmup_fraction < 1"),
])
def test_bad_values_name_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(ConfigError, match=match) as err:
        load_experiment([path])
    assert str(path) in str(err.value)


def test_set_errors_name_the_argument() -> None:
    with pytest.raises(ConfigError, match=r"--set optim\.lr=abc"):
        load_experiment([], ["optim.lr=abc"])
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_set("optim.lr")
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_experiment(["missing.yaml"])


def test_round_trip_through_plain_dicts() -> None:
    exp = load_experiment([EXPERIMENTS / "tiny.yaml"])
    tree = to_dict(exp)
    assert isinstance(tree["model"]["encoder"]["widths"], list)
    assert from_dict(Experiment, tree) == exp
    assert from_dict(ModelConfig, tree["model"]) == exp.model


@pytest.mark.parametrize("overlay", [[], ["tiny.yaml"]])
@pytest.mark.parametrize("mode", ABLATIONS)
def test_ablation_files_change_only_the_gradient_mode(overlay: list[str], mode: str) -> None:
    files = [EXPERIMENTS / f for f in overlay]
    ref = flatten(to_dict(load_experiment(files + [EXPERIMENTS / "dgs.yaml"])))
    got = flatten(to_dict(load_experiment(files + [EXPERIMENTS / f"{mode}.yaml"])))
    assert {k for k in ref if ref[k] != got[k]} == {"loss.gradient_mode"}
    assert got["loss.gradient_mode"] == mode and ref["loss.gradient_mode"] == "dgs"


def test_dgs_file_is_the_release_default() -> None:
    assert load_experiment([EXPERIMENTS / "dgs.yaml"]) == Experiment()
