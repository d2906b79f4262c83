"""DGS ops: ``dgs_sample`` (2-D, camera-space gradient) and ``dgs_sample_3d`` (trilinear), see docs/dgs_op.md."""
from .api import dgs_sample, dgs_sample_3d
from .reference import dgs_sample_3d_reference, dgs_sample_reference

__all__ = ["dgs_sample", "dgs_sample_3d", "dgs_sample_reference", "dgs_sample_3d_reference"]
