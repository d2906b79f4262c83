"""How images enter the network: the model's input convention (``ModelConfig.input_norm``, SPEC §3.1).

- ``"none"`` (the release): RGB/255 in [0, 1], no mean/std normalisation. The DGS release trains
  and predicts this way, starting from LeReS weights, so a converted release model must see it.
- ``"imagenet"``: ``(RGB/255 − mean)/std`` with the ImageNet statistics, the convention of
  ImageNet-pretrained (torchvision) weights.

Training, validation and inference all call :func:`normalise_images` with the model's setting.
"""
from __future__ import annotations

import numpy as np
import torch

INPUT_NORMS = ("none", "imagenet")
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

_SCALE = {"none": torch.full((1, 3, 1, 1), 1.0 / 255.0),
          "imagenet": (1.0 / (255.0 * torch.tensor(IMAGE_STD))).view(1, 3, 1, 1)}
_SHIFT = {"none": torch.zeros(1, 3, 1, 1),
          "imagenet": (-torch.tensor(IMAGE_MEAN) / torch.tensor(IMAGE_STD)).view(1, 3, 1, 1)}


def normalise_images(images: torch.Tensor, input_norm: str) -> torch.Tensor:
    """(B, 3, H, W) uint8 RGB → float32 network input under ``input_norm`` (module docstring), on
    the images' device, in one fused pass (x·scale + shift)."""
    if input_norm not in INPUT_NORMS:
        raise ValueError(f"input_norm: expected one of {INPUT_NORMS}, found {input_norm!r}")
    x = images.to(torch.float32)
    return torch.addcmul(_SHIFT[input_norm].to(x.device), x, _SCALE[input_norm].to(x.device))


def image_to_tensor(image: np.ndarray, input_norm: str) -> torch.Tensor:
    """(3, H, W) uint8 RGB array → (3, H, W) float32 network input (see :func:`normalise_images`)."""
    return normalise_images(torch.from_numpy(np.ascontiguousarray(image))[None], input_norm)[0]
