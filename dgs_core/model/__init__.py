"""Encoder, ResNetFC decoder and DGSNet (see docs/model.md)."""
from .decoder import PositionalEncoding, ResnetFC
from .encoder import Encoder, EncoderConfig, EncoderOutput, load_pretrained
from .net import DGSNet, ModelConfig, sample_maps

__all__ = ["DGSNet", "ModelConfig", "Encoder", "EncoderConfig", "EncoderOutput", "ResnetFC",
           "PositionalEncoding", "load_pretrained", "sample_maps"]
