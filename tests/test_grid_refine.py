"""Coarse-to-fine grid evaluation (dgs_core.grid_refine) against the dense grid on analytic fields.

Fields are occupancy ramps of one grid cell around an analytic surface, o = clip(0.5 + s, 0, 1) with
s the signed distance in cells (positive inside), so marching cubes at 0.5 extracts the surface.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pipeline.geometry.isosurface import extract_mesh
from dgs_core.grid_refine import lattice, refine, start_stride
from dgs_core.infer import predict_grid

R = 64


def _ramp(signed: np.ndarray) -> np.ndarray:
    return np.clip(0.5 + signed, 0.0, 1.0).astype(np.float32)


FIELDS = {
    "sphere": lambda ijk: _ramp(20.3 - np.linalg.norm(ijk - [31.2, 35.7, 30.1], axis=1)),
    "plane": lambda ijk: _ramp(ijk @ np.array([0.3, -0.2, 0.93]) - 25.4),
    # one grid cell thick: the thinnest slab the fine grid resolves
    "thin_slab": lambda ijk: _ramp(0.5 - np.abs(ijk[:, 2] - 33.3)),
}


def _dense(field, inside: np.ndarray) -> np.ndarray:
    values = np.zeros(inside.shape, dtype=np.float32)
    values[inside] = field(np.argwhere(inside))
    return values


def _counting(field, inside: np.ndarray):
    calls = []

    def evaluate(ijk: np.ndarray) -> np.ndarray:
        assert inside[tuple(ijk.T)].all(), "a point outside the mask was queried"
        calls.append(len(ijk))
        return field(ijk)
    return evaluate, calls


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_same_mesh_as_dense_with_fewer_queries(name):
    inside = np.ones((R, R, R), dtype=bool)
    inside[:, :, :4] = False  # a "near plane": never queried, free
    evaluate, calls = _counting(FIELDS[name], inside)
    values, stats = refine(evaluate, inside)
    dense = _dense(FIELDS[name], inside)
    mesh, mesh_dense = extract_mesh(values, np.zeros(3), 1.0), extract_mesh(dense, np.zeros(3), 1.0)
    assert len(mesh_dense[1]) > 100
    np.testing.assert_array_equal(mesh[0], mesh_dense[0])
    np.testing.assert_array_equal(mesh[1], mesh_dense[1])
    assert np.array_equal(values >= 0.5, dense >= 0.5)
    assert stats.mismatches == 0 and stats.verified > 0
    assert stats.queries == sum(calls) and stats.dense == inside.sum()
    assert stats.queries < stats.dense / 2


def test_a_slab_between_coarse_samples_is_flagged():
    inside = np.ones((R, R, R), dtype=bool)
    thin = lambda ijk: _ramp(0.3 - np.abs(ijk[:, 2] - 36.0))  # noqa: E731 — between lattice planes 32 and 40
    values, stats = refine(thin, inside, stride=8)
    assert not (values >= 0.5).any()  # the coarse lattice never saw it ...
    assert stats.mismatches > 0       # ... and the verification says so


def test_stride_one_is_the_dense_grid():
    inside = np.ones((16, 16, 16), dtype=bool)
    values, stats = refine(FIELDS["sphere"], inside, stride=1)
    np.testing.assert_array_equal(values, _dense(FIELDS["sphere"], inside))
    assert stats.queries == stats.dense and stats.verified == 0


def test_lattice_and_start_stride():
    np.testing.assert_array_equal(lattice(10, 4), [0, 4, 8, 9])
    assert [start_stride(r) for r in (16, 63, 64, 128, 256)] == [1, 1, 2, 4, 8]
    with pytest.raises(ValueError, match="power of two"):
        refine(FIELDS["sphere"], np.ones((8, 8, 8), bool), stride=3)


class SphereNet(torch.nn.Module):
    """A stand-in network whose logit is 20 × the signed distance to a sphere (metres, camera frame)."""

    config = SimpleNamespace(input_norm="none")

    def encode(self, images, intrinsics=None):
        return type("Encoded", (), {"features": []})()

    def query(self, features, points, intrinsics):
        return 20.0 * (0.6 - torch.linalg.vector_norm(points - torch.tensor([0.1, 0.0, 2.5]), dim=-1))


def test_predict_grid_coarse_to_fine_gives_the_dense_mesh():
    image = np.zeros((3, 48, 64), np.uint8)
    args = (SphereNet(), image, np.array([57.6, 57.6, 32.0, 24.0]), np.array([-1.0, -1.0, 1.5]),
            np.array([1.0, 1.0, 3.5]), 64)
    dense = predict_grid(*args, grid="dense")
    fine = predict_grid(*args, grid="coarse_to_fine")
    a, b = extract_mesh(*dense), extract_mesh(*fine)
    assert len(a[1]) > 100
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
