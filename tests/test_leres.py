"""The release encoders against the public weight layouts (tests/data/*.tsv, derived from the LeReS
and DGS model definitions, docs/release_parity.md): names and shapes, strict loads that name what
does not fit, the five maps of a 192×256 input, LeReS's rectified skip path, and torchvision
ImageNet layouts. ResNeXt-101 (~460 MB of weights) is checked on the ``meta`` device."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn as nn

from dgs_core.model import DGSNet, EncoderConfig, ModelConfig, WeightsError, build_encoder, load_pretrained
from dgs_core.model.leres import FTB
from dgs_core.model.weights import load_state
from weight_tables import LERES_PREFIX, read_table, table_state

TABLES = {"leres_resnext101": "leres_res101_depth_model.tsv", "leres_resnet50": "leres_res50_depth_model.tsv"}
RELEASE_MAPS = [(256, 6, 8), (256, 12, 16), (256, 24, 32), (256, 48, 64), (256, 96, 128)]  # s32 … s2 at 192×256


def meta_encoder(kind: str) -> nn.Module:
    with torch.device("meta"):
        return build_encoder(EncoderConfig(kind=kind))


@pytest.mark.parametrize("kind", list(TABLES))
def test_state_dict_is_the_leres_file_after_stripping_the_prefix(kind: str) -> None:
    rows = read_table(TABLES[kind])
    assert all(k.startswith(LERES_PREFIX) for k, _, _ in rows)
    expected = [(k[len(LERES_PREFIX):], s) for k, s, _ in rows]
    got = [(k, tuple(v.shape)) for k, v in meta_encoder(kind).state_dict().items()]
    assert got == expected  # same names, shapes and order


@pytest.mark.parametrize("kind", list(TABLES))
def test_leres_file_loads_strictly(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "res.pth"  # LeReS files hold {"depth_model": {"module.depth_model.…": tensor}}
    torch.save({"depth_model": table_state(read_table(TABLES[kind]))}, path)
    report = load_pretrained(meta_encoder(kind), path)
    assert report.complete and not report.fresh and len(report.loaded) == len(read_table(TABLES[kind]))


def test_the_release_model_default_is_resnext101_whose_latent_the_decoder_reads() -> None:
    with torch.device("meta"):
        net = DGSNet(ModelConfig())
    assert net.config.encoder.kind == "leres_resnext101" and net.config.input_norm == "none"
    assert net.encoder.strides == (32, 16, 8, 4, 2) and net.encoder.feature_channels == 1280
    assert tuple(net.decoder.lin_z[0].weight.shape) == (512, 1280)


def test_renamed_or_reshaped_tensor_fails_naming_it() -> None:
    state = {k[len(LERES_PREFIX):]: v for k, v in table_state(read_table(TABLES["leres_resnext101"])).items()}
    renamed = dict(state)
    renamed["decoder_modules.ffm1.ftb2.conv1.kernel"] = renamed.pop("decoder_modules.ffm1.ftb2.conv1.weight")
    with pytest.raises(WeightsError, match="missing") as err:
        load_state(meta_encoder("leres_resnext101"), renamed, "renamed.pth")
    assert "decoder_modules.ffm1.ftb2.conv1.weight" in str(err.value)
    assert "unexpected (1): decoder_modules.ffm1.ftb2.conv1.kernel" in str(err.value)
    reshaped = dict(state)  # ResNeXt-101 64x4d's grouped convolution (64 groups of 8) instead of 32x8d's
    reshaped["encoder_modules.encoder.layer2.0.conv2.weight"] = torch.empty(512, 8, 3, 3, device="meta")
    with pytest.raises(WeightsError, match="shape mismatch") as err:
        load_state(meta_encoder("leres_resnext101"), reshaped, "reshaped.pth")
    assert ("encoder_modules.encoder.layer2.0.conv2.weight: file (512, 8, 3, 3) vs model (512, 16, 3, 3)"
            in str(err.value))
    # A partial load takes the rest and lists what it skipped.
    report = load_state(meta_encoder("leres_resnext101"), renamed, "renamed.pth", allow_partial=True)
    assert report.missing == ["decoder_modules.ffm1.ftb2.conv1.weight"]
    assert report.unexpected == ["decoder_modules.ffm1.ftb2.conv1.kernel"]
    assert len(report.loaded) == len(state) - 1


@pytest.mark.filterwarnings("ignore:.*non-meta parameter:UserWarning")  # BatchNorm fills the absent counter
def test_missing_batchnorm_counters_are_tolerated() -> None:
    """Files from before PyTorch 0.4.1 have no num_batches_tracked; they still load strictly."""
    state = {k[len(LERES_PREFIX):]: v for k, v in table_state(read_table(TABLES["leres_resnet50"])).items()
             if not k.endswith("num_batches_tracked")}
    report = load_state(meta_encoder("leres_resnet50"), state, "old.pth")
    assert report.complete and report.fresh and all(k.endswith("num_batches_tracked") for k in report.fresh)


def test_five_release_maps_and_depth_for_a_192x256_image() -> None:
    torch.manual_seed(0)
    enc = build_encoder(EncoderConfig(kind="leres_resnet50")).eval()
    with torch.no_grad():
        out = enc(torch.rand(1, 3, 192, 256))
    assert [tuple(f.shape[1:]) for f in out.features] == RELEASE_MAPS
    assert tuple(out.depth.shape) == (1, 1, 192, 256) and bool(torch.isfinite(out.depth).all())
    meta = meta_encoder("leres_resnext101")(torch.empty(1, 3, 192, 256, device="meta"))
    assert [tuple(f.shape[1:]) for f in meta.features] == RELEASE_MAPS and tuple(meta.depth.shape) == (1, 1, 192, 256)
    with pytest.raises(ValueError, match="multiples of 32"):
        enc(torch.rand(1, 3, 100, 128))


def test_feature_transfer_block_rectifies_its_skip_path_as_leres_does() -> None:
    """LeReS writes ``x = conv1(x); x = x + branch(x)`` with an in-place ReLU heading ``branch``: the
    ReLU rewrites ``x`` before the sum reads it. Replay exactly that with the block's own weights."""
    torch.manual_seed(3)
    ftb = FTB(6, 5).eval()
    inplace = nn.Sequential(nn.ReLU(inplace=True), *list(ftb.conv_branch)[1:])
    x = torch.randn(2, 6, 7, 9)
    with torch.no_grad():
        y = ftb.conv1(x)
        expected = torch.relu(y + inplace(y))
        torch.testing.assert_close(ftb(x), expected, rtol=0, atol=0)
        c = ftb.conv1(x)
        assert not torch.allclose(torch.relu(c + ftb.conv_branch(c)), expected)  # the difference is real


def _torchvision_resnet18() -> list[tuple[str, tuple[int, ...]]]:
    """torchvision's ImageNet ResNet-18 names and shapes (BasicBlock, layers 2-2-2-2, fc 1000)."""
    def bn(p, c):
        return [(f"{p}.weight", (c,)), (f"{p}.bias", (c,)), (f"{p}.running_mean", (c,)), (f"{p}.running_var", (c,)),
                (f"{p}.num_batches_tracked", ())]
    rows = [("conv1.weight", (64, 3, 7, 7)), *bn("bn1", 64)]
    c_in = 64
    for i, c in enumerate((64, 128, 256, 512), 1):
        for j in range(2):
            p = f"layer{i}.{j}"
            rows += [(f"{p}.conv1.weight", (c, c_in if j == 0 else c, 3, 3)), *bn(f"{p}.bn1", c),
                     (f"{p}.conv2.weight", (c, c, 3, 3)), *bn(f"{p}.bn2", c)]
            if j == 0 and c != c_in:
                rows += [(f"{p}.downsample.0.weight", (c, c_in, 1, 1)), *bn(f"{p}.downsample.1", c)]
        c_in = c
    return rows + [("fc.weight", (1000, 512)), ("fc.bias", (1000,))]


def test_small_encoder_takes_torchvision_imagenet_weights(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(1)
    state = {k: (torch.randint(0, 9, s, generator=g) if not s else torch.randn(s, generator=g)) for k, s in
             _torchvision_resnet18()}
    state = {k: (v.to(torch.int64) if k.endswith("num_batches_tracked") else v.float()) for k, v in state.items()}
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    enc = build_encoder(EncoderConfig(kind="resnet"))
    report = load_pretrained(enc, path)
    assert report.layout == "torchvision ResNet" and report.complete
    assert report.ignored == ["fc.bias", "fc.weight"]
    assert {k.split(".")[0] for k in report.fresh} == {"proj", "depth_head", "stages"}
    assert all(k.startswith("stages.0.0.shortcut.") for k in report.fresh if k.startswith("stages"))
    own = enc.state_dict()
    assert torch.equal(own["stem.0.weight"], state["conv1.weight"])
    assert torch.equal(own["stages.2.0.shortcut.1.running_var"], state["layer3.0.downsample.1.running_var"])
    assert torch.equal(own["stages.3.1.conv2.weight"], state["layer4.1.conv2.weight"])
    # The same file into a ResNet-18 of other widths names the mis-shaped tensors.
    with pytest.raises(WeightsError, match=r"stem\.0\.weight: file \(64, 3, 7, 7\) vs model \(8, 3, 7, 7\)"):
        load_pretrained(build_encoder(EncoderConfig(kind="resnet", widths=(8, 8, 16, 16, 32))), path)


@pytest.mark.filterwarnings("ignore:.*non-meta parameter:UserWarning")  # BatchNorm fills the absent counter
def test_leres_backbone_takes_torchvision_imagenet_weights(tmp_path: Path) -> None:
    prefix = LERES_PREFIX + "encoder_modules.encoder."
    rows = [(k[len(prefix):], s, d) for k, s, d in read_table(TABLES["leres_resnet50"]) if k.startswith(prefix)]
    state = table_state(rows) | {"fc.weight": torch.empty(1000, 2048, device="meta"),
                                 "fc.bias": torch.empty(1000, device="meta")}
    report = load_state(meta_encoder("leres_resnet50"), state, "resnet50.pth")
    assert report.complete and report.ignored == ["fc.bias", "fc.weight"]
    assert len(report.loaded) == len(rows) and all(k.startswith("decoder_modules.") for k in report.fresh)


def test_unreadable_or_foreign_files_are_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("not a weights file")
    with pytest.raises(WeightsError, match="notes.pth: cannot be read as a weights file"):
        load_pretrained(meta_encoder("leres_resnet50"), text)
    counts = tmp_path / "counts.pth"
    torch.save({"epoch": torch.tensor(3), "depth_model": {}}, counts)
    with pytest.raises(WeightsError, match="counts.pth: expected a mapping of tensor names to tensors"):
        load_pretrained(meta_encoder("leres_resnet50"), counts)
    with pytest.raises(WeightsError, match=r"missing \(345\)"):  # 406 tensors less 61 BatchNorm counters
        load_state(meta_encoder("leres_resnet50"), {}, "empty.pth")
