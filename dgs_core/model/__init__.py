"""Encoders, ResNetFC decoder, DGSNet, input conventions and weight loading (see docs/model.md)."""
from .decoder import PositionalEncoding, ResnetFC
from .encoder import ENCODER_KINDS, Encoder, EncoderConfig, EncoderOutput
from .inputs import INPUT_NORMS, image_to_tensor, normalise_images
from .leres import LeReSEncoder
from .net import DGSNet, ModelConfig, build_encoder, sample_maps
from .weights import LoadReport, WeightsError, load_pretrained

__all__ = ["DGSNet", "ModelConfig", "Encoder", "EncoderConfig", "EncoderOutput", "ENCODER_KINDS", "LeReSEncoder",
           "ResnetFC", "PositionalEncoding", "build_encoder", "sample_maps", "INPUT_NORMS", "image_to_tensor",
           "normalise_images", "LoadReport", "WeightsError", "load_pretrained"]
