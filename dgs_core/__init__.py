"""DGS core: the Differentiable Gradient Sampling op, the model, the losses and the gradient modes.

`dgs_sample(features, points, intrinsics)` samples a feature map at camera-space points and returns
the value and its closed-form gradient w.r.t. x, y, z (see `dgs_core.ops` and docs/dgs_op.md).
"""
from dgs_core.ops import dgs_sample, dgs_sample_3d

__all__ = ["dgs_sample", "dgs_sample_3d"]
