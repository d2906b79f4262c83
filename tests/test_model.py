"""Encoder, decoder (plain and forward-mode), positional encoding and weight loading."""
import math

import pytest
import torch

from dgs_core.camera import normalised_intrinsics, project
from dgs_core.model.decoder import FourierEncoding, PositionalEncoding, ResnetFC, sigmoid_tracked
from dgs_core.model.encoder import Encoder, EncoderConfig
from dgs_core.model.weights import load_pretrained
from dgs_core.model.net import DGSNet, ModelConfig


def test_positional_encoding_dims_and_values():
    pe = PositionalEncoding(6)
    p = torch.tensor([[0.25, -0.5, 2.0]], dtype=torch.float64)
    out = pe(p)
    assert pe.d_out == 39 and out.shape == (1, 39)
    assert torch.equal(out[0, :3], p[0])
    # frequency k=2 (π·4), sin block then cos block, coordinates x, y, z
    f = math.pi * 4
    expect = [math.sin(f * c) for c in p[0].tolist()] + [math.cos(f * c) for c in p[0].tolist()]
    torch.testing.assert_close(out[0, 3 + 2 * 6: 3 + 3 * 6], torch.tensor(expect, dtype=torch.float64))


def test_positional_encoding_tangents_match_autograd():
    pe = PositionalEncoding(6)
    p = torch.randn(5, 3, dtype=torch.float64)
    jac = torch.stack([torch.autograd.functional.jacobian(pe, p[i]) for i in range(5)])  # (5, 39, 3)
    torch.testing.assert_close(pe.tangents(p), jac.transpose(1, 2), rtol=1e-12, atol=1e-12)


def test_forward_mode_decoder_matches_autograd():
    torch.manual_seed(0)
    dec = ResnetFC(39, 7, d_hidden=24, zero_init=False).double()
    pe = PositionalEncoding(6)
    w = torch.randn(7, 3, dtype=torch.float64)  # latent z(p) = tanh(W p): a smooth stand-in for sampling

    def occ(p):
        return torch.sigmoid(dec(pe(p), torch.tanh(p @ w.T)))

    p = torch.randn(40, 3, dtype=torch.float64)
    z = torch.tanh(p @ w.T)
    dz = (1 - z ** 2)[:, None, :] * w.T[None]  # (40, 3, 7)
    x_t = torch.cat((pe(p)[:, None], pe.tangents(p)), dim=1)
    t = sigmoid_tracked(dec.forward_tracked(x_t, torch.cat((z[:, None], dz), dim=1)))
    pr = p.clone().requires_grad_(True)
    o = occ(pr)
    (g,) = torch.autograd.grad(o.sum(), pr)
    torch.testing.assert_close(t[:, 0], o.detach(), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(t[:, 1:], g, rtol=1e-10, atol=1e-12)


def test_encoder_strides_channels_and_positive_depth():
    cfg = EncoderConfig(kind="resnet", widths=(8, 8, 12, 12, 16), blocks=(1, 2, 1, 1), out_channels=(3, 4, 5, 6, 7))
    enc = Encoder(cfg)
    out = enc(torch.randn(2, 3, 64, 96))
    assert [tuple(f.shape) for f in out.features] == [(2, c, 64 // s, 96 // s)
                                                      for c, s in zip(cfg.out_channels, Encoder.strides)]
    assert out.depth.shape == (2, 1, 64, 96) and bool((out.depth > 0).all())
    assert enc.feature_channels == 25
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        enc(torch.randn(2, 1, 64, 96))


def test_load_pretrained_round_trip_and_mismatch(tmp_path):
    torch.manual_seed(1)
    cfg = ModelConfig.tiny()
    a, b = DGSNet(cfg), DGSNet(cfg)
    path = tmp_path / "w.pt"
    torch.save(a.state_dict(), path)
    load_pretrained(b, path)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    other = DGSNet(ModelConfig.tiny(channels=5))
    with pytest.raises(ValueError, match="shape mismatch"):
        load_pretrained(other, path)
    torch.save({k: v for k, v in a.state_dict().items() if not k.startswith("decoder.lin_out")}, path)
    with pytest.raises(ValueError, match="missing"):
        load_pretrained(DGSNet(cfg), path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_pretrained(b, tmp_path / "nope.pt")
    # Non-strict loading takes the matching keys only.
    c = DGSNet(ModelConfig.tiny(channels=5))
    load_pretrained(c, tmp_path / "w.pt", strict=False)
    assert torch.equal(c.encoder.stem[0].weight, a.encoder.stem[0].weight)


def test_net_forward_range_and_projection():
    torch.manual_seed(2)
    net = DGSNet(ModelConfig.tiny()).eval()
    k = torch.tensor([normalised_intrinsics(230.4, 230.4, 128, 96, 256, 192)] * 2)
    assert torch.allclose(k[0], torch.tensor([1.8, 2.4, 0.0, 0.0]))
    pts = torch.rand(2, 10, 3) + torch.tensor([-0.5, -0.5, 1.0])
    uv = project(pts, k)
    torch.testing.assert_close(uv[..., 0], 1.8 * pts[..., 0] / pts[..., 2])
    o = net(torch.randn(2, 3, 32, 48), pts, k)
    assert o.shape == (2, 10) and bool(((o >= 0) & (o <= 1)).all())
    with pytest.raises(ValueError, match=r"\(B, Q, 3\)"):
        net(torch.randn(2, 3, 32, 48), pts[..., :2], k)


def test_fourier_features_values_jacobian_and_seed():
    enc = FourierEncoding(features=8, sigma=0.8, seed=3).double()
    p = torch.randn(5, 3, dtype=torch.float64)
    angles = 2 * math.pi * p @ enc.B.T
    torch.testing.assert_close(enc(p), torch.cat((torch.cos(angles), torch.sin(angles)), -1))
    assert enc.d_out == 16 and 0.3 < enc.B.std().item() < 1.5
    jac = torch.stack([torch.autograd.functional.jacobian(enc, p[i]) for i in range(5)])  # (5, 16, 3)
    torch.testing.assert_close(enc.tangents(p), jac.transpose(1, 2), rtol=1e-12, atol=1e-12)
    assert torch.equal(FourierEncoding(8, 0.8, 3).B, FourierEncoding(8, 0.8, 3).B)
    assert not torch.equal(FourierEncoding(8, 0.8, 3).B, FourierEncoding(8, 0.8, 4).B)
    with pytest.raises(ValueError, match="sigma"):
        FourierEncoding(8, 0.0)


def test_fourier_matrix_travels_in_the_state_dict():
    cfg = ModelConfig(**{**vars(ModelConfig.tiny()), "embedding": "fourier", "fourier_features": 4})
    a = DGSNet(cfg)
    assert "pe.B" in a.state_dict() and a.pe.d_out == 8 and a.decoder.lin_in.in_features == 8
    b = DGSNet(cfg)
    b.pe.B.zero_()
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.pe.B, b.pe.B)
    with pytest.raises(ValueError, match="model.embedding"):
        ModelConfig(embedding="hash")


def test_colour_head_range_and_shared_trunk():
    torch.manual_seed(3)
    net = DGSNet(ModelConfig(**{**vars(ModelConfig.tiny()), "color": True})).eval()
    k = torch.tensor([[1.8, 2.4, 0.0, 0.0]])
    feats = net.encode(torch.randn(1, 3, 32, 48)).features
    pts = torch.randn(1, 50, 3) * 3 + torch.tensor([0.0, 0.0, 4.0])
    net.color_head.bias.data.fill_(30.0)  # saturating pre-activations still map into [0, 1]
    logit, rgb = net.query_color(feats, pts, k)
    assert rgb.shape == (1, 50, 3) and bool(((rgb >= 0) & (rgb <= 1)).all())
    torch.testing.assert_close(logit, net.query(feats, pts, k))  # the colour head reads the same trunk
    with pytest.raises(ValueError, match="model.color"):
        DGSNet(ModelConfig.tiny()).query_color(feats, pts, k)
