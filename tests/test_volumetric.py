"""Volumetric and object-level surface metrics (benchmark.volumetric) on hand-computed cases: two offset
unit cubes, a sphere against a polyhedral (octahedral) sphere, a surface against itself flipped, plus a
brute-force twin of the nearest-neighbour parts."""
import numpy as np
import pytest

from benchmark.volumetric import (EMPTY_DISTANCE, NO_WATERTIGHT_REFERENCE, iou_or_reason, oriented_samples,
                                  surface_metrics, uniform_points, volumetric_iou)
from pipeline.synthetic.primitives import box


def _cube(offset_x=0.0):
    v, f = box(np.ones(3), edge=1.0)  # closed, outward normals, centred on the origin
    return v + [0.5 + offset_x, 0.5, 0.5], f


def _inside_cube(offset_x=0.0):
    return lambda p: np.all((p >= [offset_x, 0, 0]) & (p <= [1 + offset_x, 1, 1]), axis=1)


def test_iou_of_two_unit_cubes_offset_by_half_is_one_third():
    # cell centres of a 30×20×20 lattice over the union's box: A holds x < 1, B x > 0.5 → 20, 20, 10 columns
    axes = [(np.arange(n) + 0.5) / n * s for n, s in ((30, 1.5), (20, 1.0), (20, 1.0))]
    lattice = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    assert volumetric_iou(_inside_cube(0.0), _inside_cube(0.5), lattice) == pytest.approx(1 / 3, abs=1e-12)
    # uniform points: the same within Monte-Carlo error
    pts = uniform_points([0, 0, 0], [1.5, 1, 1], 100_000, seed=1)
    assert volumetric_iou(_inside_cube(0.0)(pts), _inside_cube(0.5)(pts)) == pytest.approx(1 / 3, abs=0.01)
    assert volumetric_iou(_inside_cube(0.0), _inside_cube(0.0), pts) == 1.0


def test_chamfer_of_two_unit_cubes_offset_by_half():
    """Hand-computed: from A's surface to B's, face x=0 is 0.5 away, face x=1 has the mean distance to a
    unit square's border (1/6), and the four side faces mean(max(0, 0.5 − x)) = 1/8: accuracy =
    (0.5 + 1/6 + 4/8)/6 = 7/36; squared: (1/4 + 1/24 + 4/24)/6 = 11/144. Completeness is the same by symmetry."""
    a, b = _cube(0.0), _cube(0.5)
    n = 200_000
    m = surface_metrics(*oriented_samples(*a, n, seed=1), *oriented_samples(*b, n, seed=2))
    gap = np.sqrt(6.0 / n)  # sample spacing: nearest-sample distances exceed surface distances by < this
    assert m["reason"] == ""
    assert m["accuracy"] == pytest.approx(7 / 36, abs=gap) and m["completeness"] == pytest.approx(7 / 36, abs=gap)
    assert m["chamfer_l1"] == pytest.approx(7 / 36, abs=gap)
    assert m["chamfer_l2"] == pytest.approx(11 / 144, abs=gap)


def _octahedron(r):
    v = np.array([[r, 0, 0], [-r, 0, 0], [0, r, 0], [0, -r, 0], [0, 0, r], [0, 0, -r]], dtype=float)
    faces = []
    for sx, ix in ((1, 0), (-1, 1)):
        for sy, iy in ((1, 2), (-1, 3)):
            for sz, iz in ((1, 4), (-1, 5)):
                tri = [ix, iy, iz]
                if sx * sy * sz < 0:  # keep the normal outward
                    tri = tri[::-1]
                faces.append(tri)
    return v, np.array(faces)


def _sphere_samples(r, n, seed):
    d = np.random.default_rng(seed).normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return r * d, d


def test_sphere_against_an_inscribed_octahedron():
    """IoU = V_octahedron / V_sphere = (4/3 r³)/(4/3 π r³) = 1/π (the octahedron lies inside). Accuracy =
    mean over the octahedron's surface of r − |p| (quadrature on one face, by symmetry the same on all)."""
    r = 0.5
    v, f = _octahedron(r)
    inside_sphere = lambda p: np.linalg.norm(p, axis=1) < r  # noqa: E731
    inside_octahedron = lambda p: np.abs(p).sum(axis=1) < r  # noqa: E731
    pts = uniform_points([-r] * 3, [r] * 3, 200_000, seed=3)
    assert volumetric_iou(inside_octahedron, inside_sphere, pts) == pytest.approx(1 / np.pi, abs=0.006)
    k = 400  # barycentric lattice on the face x + y + z = r
    i, j = np.meshgrid(np.arange(k) + 1 / 3, np.arange(k) + 1 / 3, indexing="ij")
    keep = i + j < k
    bary = np.stack([i[keep], j[keep], k - i[keep] - j[keep]], 1) / k
    expected_acc = float(np.mean(r - np.linalg.norm(bary * r, axis=1)))
    n = 20_000  # queries ~0.1 from the other surface visit many k-d tree leaves: keep the samples few
    m = surface_metrics(*oriented_samples(v, f, n, seed=4), *_sphere_samples(r, n, seed=5))
    assert m["accuracy"] == pytest.approx(expected_acc, abs=np.sqrt(4 * np.pi * r * r / n))
    # normals: octahedron → sphere, |n_face · p̂| (quadrature); sphere → octahedron, the nearest face is
    # the one of q's octant (up to samples next to an edge), |n_face · q̂| = (|q_x| + |q_y| + |q_z|)/√3,
    # whose mean over the sphere is 3·E|q_x|/√3 = √3/2
    unit = bary / np.linalg.norm(bary, axis=1, keepdims=True)
    expected_nc = 0.5 * (float(np.mean(unit @ (np.ones(3) / np.sqrt(3)))) + np.sqrt(3) / 2)
    assert m["normal_consistency"] == pytest.approx(expected_nc, abs=0.005)


def test_normal_consistency_of_a_flipped_surface_is_one():
    v, f = _cube(0.0)
    p, n = oriented_samples(v, f, 5000, seed=7)
    m = surface_metrics(p, -n, p, n)  # the same surface, normals flipped
    assert m["normal_consistency"] == 1.0
    assert m["chamfer_l1"] == 0.0 and m["chamfer_l2"] == 0.0
    # a mesh with reversed winding, sampled independently: its normals are the negated face normals and
    # it scores exactly what the same samples with the original orientation score
    p2, n2 = oriented_samples(v, f[:, ::-1], 5000, seed=8)
    flipped, plain = surface_metrics(p2, n2, p, n), surface_metrics(p2, -n2, p, n)
    assert flipped == plain and flipped["normal_consistency"] > 0.95  # < 1: samples near an edge match the next face


def test_matches_a_brute_force_twin():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(700, 3)), rng.normal(size=(500, 3)) * 1.2 + 0.1
    na, nb = rng.normal(size=(700, 3)), rng.normal(size=(500, 3))
    m = surface_metrics(a, na, b, nb)
    d = np.linalg.norm(a[:, None] - b[None], axis=-1)
    ua, ub = na / np.linalg.norm(na, axis=1, keepdims=True), nb / np.linalg.norm(nb, axis=1, keepdims=True)
    acc, comp = d.min(1), d.min(0)
    nc = 0.5 * (np.abs(np.sum(ua * ub[d.argmin(1)], 1)).mean() + np.abs(np.sum(ub * ua[d.argmin(0)], 1)).mean())
    assert m["chamfer_l1"] == pytest.approx(0.5 * (acc.mean() + comp.mean()), rel=1e-12)
    assert m["chamfer_l2"] == pytest.approx(0.5 * ((acc ** 2).mean() + (comp ** 2).mean()), rel=1e-12)
    assert m["normal_consistency"] == pytest.approx(nc, rel=1e-12)


def test_empty_prediction_and_missing_reference():
    gt = oriented_samples(*_cube(), 100, seed=0)
    m = surface_metrics(np.zeros((0, 3)), np.zeros((0, 3)), *gt)
    assert m == {"accuracy": EMPTY_DISTANCE, "completeness": EMPTY_DISTANCE, "chamfer_l1": EMPTY_DISTANCE,
                 "chamfer_l2": 3.0, "normal_consistency": 0.0, "reason": "empty_prediction"}
    pts = uniform_points([0, 0, 0], [1, 1, 1], 1000)
    iou, reason = iou_or_reason(np.zeros(1000, bool), None, pts)
    assert np.isnan(iou) and reason == NO_WATERTIGHT_REFERENCE
    assert iou_or_reason(np.zeros(1000, bool), _inside_cube(), pts) == (0.0, "")
    with pytest.raises(ValueError, match="same points"):
        volumetric_iou(np.zeros(3, bool), np.zeros(4, bool))
