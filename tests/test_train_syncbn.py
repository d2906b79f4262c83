"""SyncBatchNorm only under CUDA DDP, and checkpoints stay loadable into a plain (BatchNorm) network.

No GPU is needed: converting only builds modules, so ``torch.device("cuda")`` is passed, never used.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from dgs_core.model import DGSNet, ModelConfig
from dgs_core.distributed import sync_batchnorm


def _names(net: nn.Module, kind: type) -> set[str]:
    return {name for name, m in net.named_modules() if isinstance(m, kind)}


@pytest.mark.parametrize("device, world_size", [("cuda", 2), ("cuda", 4)])
def test_cuda_ddp_converts_every_batchnorm(device: str, world_size: int) -> None:
    net = DGSNet(ModelConfig.tiny())
    batchnorms = _names(net, nn.BatchNorm2d)
    assert len(batchnorms) > 5  # stem + every residual block (and shortcut) of the encoder
    out = sync_batchnorm(net, torch.device(device), world_size)
    assert _names(out, nn.SyncBatchNorm) == batchnorms
    assert not _names(out, nn.BatchNorm2d)


@pytest.mark.parametrize("device, world_size", [("cpu", 2), ("cpu", 1), ("cuda", 1)])
def test_cpu_ddp_and_single_process_keep_batchnorm(device: str, world_size: int) -> None:
    net = DGSNet(ModelConfig.tiny())
    batchnorms = _names(net, nn.BatchNorm2d)
    out = sync_batchnorm(net, torch.device(device), world_size)
    assert out is net and _names(out, nn.BatchNorm2d) == batchnorms and not _names(out, nn.SyncBatchNorm)


def test_converted_state_dict_loads_into_a_plain_network() -> None:
    torch.manual_seed(0)
    net = DGSNet(ModelConfig.tiny())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    synced = sync_batchnorm(net, torch.device("cuda"), 2)
    # Same keys and values as before the conversion (the tensors are carried over, not re-initialised).
    assert list(synced.state_dict()) == list(before)
    for key, value in synced.state_dict().items():
        assert torch.equal(value, before[key]), key
    # Move the running statistics away from their initial values: a training-mode pass (no process
    # group, so SyncBatchNorm falls back to local BatchNorm on CPU), then perturb the affine weights.
    images = torch.rand(2, 3, 48, 64)
    synced.train()
    synced.encode(images)
    with torch.no_grad():
        for m in synced.modules():
            if isinstance(m, nn.SyncBatchNorm):
                m.weight.add_(torch.rand_like(m.weight))
    stats = [k for k in before if k.endswith("running_mean")]
    assert any(not torch.equal(synced.state_dict()[k], before[k]) for k in stats)

    torch.manual_seed(1)  # a differently initialised plain network
    plain = DGSNet(ModelConfig.tiny())
    plain.load_state_dict(synced.state_dict(), strict=True)
    synced.eval()
    plain.eval()
    with torch.no_grad():
        for a, b in zip(synced.encode(images).features, plain.encode(images).features):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
