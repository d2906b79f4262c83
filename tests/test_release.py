"""The DGS release checkpoint (two files with the names and shapes of tests/data's tables) into the
toolkit's format and back: exact round trip, strict refusals that name the tensor, wrapper prefixes,
and the converted model through dgs predict-image. Uses the ResNet-50 variant (~200 MB) once."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from dgs.predict_image import main as predict_main
from dgs_core.checkpoint import load_checkpoint, load_model
from dgs_core.release import RELEASE_FILES, export_main, main, toolkit_to_release
from weight_tables import LERES_PREFIX, read_table, table_state
from pipeline.errors import run_main

DEPTH_BIAS = "decoder_modules.outconv.adapt_conv.3.bias"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> SimpleNamespace:
    """Release files of the ResNet-50 model with seeded values, and their conversion."""
    base = tmp_path_factory.mktemp("release")
    encoder = {k[len(LERES_PREFIX):]: v for k, v in
               table_state(read_table("leres_res50_depth_model.tsv"), "cpu", seed=1).items()}
    encoder[DEPTH_BIAS] = torch.tensor([2.0])  # a depth head near 2 m, so predict-image has a box
    decoder = table_state(read_table("dgs_release_decoder.tsv"), "cpu", seed=2)
    paths = {part: base / name for part, name in RELEASE_FILES.items()}
    torch.save(encoder, paths["encoder"])
    torch.save({f"module.{k}": v for k, v in decoder.items()}, paths["decoder"])  # as a DDP-wrapped copy
    checkpoint = base / "dgs_release.pt"
    assert main(["--encoder", str(paths["encoder"]), "--decoder", str(paths["decoder"]), "--out", str(checkpoint)]) == 0
    return SimpleNamespace(encoder=encoder, decoder=decoder, paths=paths, checkpoint=checkpoint, base=base)


def _assert_equal_states(got: dict, expected: dict) -> None:
    assert sorted(got) == sorted(expected)  # same names (the order of a state dict carries no meaning)
    for name, tensor in expected.items():
        assert got[name].dtype == tensor.dtype and torch.equal(got[name], tensor), name


def test_conversion_is_exact_and_round_trips(release, tmp_path: Path) -> None:
    net, config = load_model(release.checkpoint)
    assert config["model"]["encoder"]["kind"] == "leres_resnet50" and config["model"]["input_norm"] == "none"
    assert load_checkpoint(release.checkpoint)["source"]["complete"] is True
    parts = toolkit_to_release(net.state_dict())
    _assert_equal_states(parts["encoder"], release.encoder)
    _assert_equal_states(parts["decoder"], release.decoder)
    assert export_main(["--checkpoint", str(release.checkpoint), "--out", str(tmp_path)]) == 0
    for part, expected in (("encoder", release.encoder), ("decoder", release.decoder)):
        _assert_equal_states(torch.load(tmp_path / RELEASE_FILES[part], weights_only=True), expected)


def test_a_renamed_or_reshaped_tensor_is_refused_by_name(release, tmp_path: Path, capsys) -> None:
    bad = dict(release.decoder)
    bad["lin_z.1.w"] = bad.pop("lin_z.1.weight")
    bad["lin_in.weight"] = torch.zeros(512, 42)
    path = tmp_path / "decoder.pth"
    torch.save(bad, path)
    args = ["--encoder", str(release.paths["encoder"]), "--decoder", str(path), "--out", str(tmp_path / "c.pt")]
    assert run_main(main, args) == 2
    err = capsys.readouterr().err
    assert "missing (1): decoder.lin_z.1.weight" in err and "unexpected (1): decoder.lin_z.1.w" in err
    assert "decoder.lin_in.weight: file (512, 42) vs model (512, 39)" in err and "--allow-partial" in err
    assert not (tmp_path / "c.pt").exists()
    assert main(args + ["--allow-partial"]) == 0
    out = capsys.readouterr().out
    assert "PARTIAL" in out and "decoder.lin_z.1.weight" in out
    assert load_checkpoint(tmp_path / "c.pt")["source"]["complete"] is False


def test_a_file_that_is_no_leres_encoder_is_named(release, tmp_path: Path, capsys) -> None:
    torch.save(release.decoder, tmp_path / "decoder_twice.pth")
    assert run_main(main, ["--encoder", str(tmp_path / "decoder_twice.pth"), "--decoder", str(release.paths["decoder"]),
                           "--out", str(tmp_path / "c.pt")]) == 2
    assert "decoder_twice.pth: not a LeReS encoder" in capsys.readouterr().err


def test_the_converted_model_reconstructs_a_photo(release, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    pixels = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(photo)
    out = tmp_path / "out"
    assert predict_main([str(photo), "--checkpoint", str(release.checkpoint), "--out", str(out), "--focal", "300",
                         "--resolution", "8", "--device", "cpu"]) == 0
    summary = json.loads((out / "prediction.json").read_text())
    assert summary["virtual_camera"] == {"width": 256, "height": 192, "focal": 230.4}
    assert np.load(out / "depth.npy").shape == (192, 256) and (out / "figure.png").is_file()
