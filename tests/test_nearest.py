"""benchmark.nearest against brute-force float64 distances (scipy cdist), near and far queries."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from benchmark import nearest
from benchmark.nearest import grid_distances, kdtree_distances, nearest_distances


def brute_force(query: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(N,) exact nearest distances by cdist, in query chunks to bound memory."""
    return np.concatenate([cdist(q, ref).min(axis=1) for q in np.array_split(query, 8)])


def box_surface(n: int, rng: np.random.Generator, size=(4.0, 3.0, 5.0)) -> np.ndarray:
    """(n, 3) points uniform on the six faces of an axis-aligned box at the origin (a room)."""
    size = np.asarray(size)
    pts = rng.random((n, 3)) * size
    axis = rng.integers(0, 3, n)
    pts[np.arange(n), axis] = np.where(rng.random(n) < 0.5, 0.0, size[axis])
    return pts


def offset(points: np.ndarray, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    """Each point moved lo..hi metres in a random direction."""
    u = rng.normal(size=points.shape)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    return points + u * rng.uniform(lo, hi, (len(points), 1))


@pytest.fixture
def kdtree_calls(monkeypatch):
    """Records how many queries grid_distances hands to the KD-tree fallback."""
    calls = []

    def counting(query, ref):
        calls.append(len(query))
        return kdtree_distances(query, ref)

    monkeypatch.setattr(nearest, "kdtree_distances", counting)
    return calls


@pytest.mark.parametrize("case", ["near", "offset", "mix"])
def test_grid_matches_brute_force_on_a_room(case, kdtree_calls):
    rng = np.random.default_rng(11)
    ref = box_surface(20_000, rng)
    surface = box_surface(6_000, rng)
    query = {"near": surface + rng.normal(0, 0.01, surface.shape),
             "offset": offset(surface, 0.2, 2.0, rng)}.get(case)
    if case == "mix":  # near, offset, and floaters anywhere in the room
        query = np.concatenate([surface[:2000] + rng.normal(0, 0.01, (2000, 3)),
                                offset(surface[2000:4000], 0.2, 2.0, rng),
                                rng.random((2000, 3)) * [4.0, 3.0, 5.0]])
    expected = brute_force(query, ref)
    np.testing.assert_allclose(grid_distances(query, ref), expected, rtol=0, atol=1e-12)
    # The fine level settles near queries; the coarser level takes most of the rest, and only
    # what is still open (the farthest offsets) reaches the KD-tree.
    if case == "near":
        assert kdtree_calls == []
    else:
        assert sum(kdtree_calls) < len(query) / 2


def test_grid_far_outside_the_reference_box(kdtree_calls):
    rng = np.random.default_rng(12)
    ref = box_surface(20_000, rng)
    direction = rng.normal(size=(3000, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    query = np.array([2.0, 1.5, 2.5]) + direction * rng.uniform(10, 200, (3000, 1))
    np.testing.assert_allclose(grid_distances(query, ref), brute_force(query, ref), atol=1e-12)
    assert sum(kdtree_calls) > 0  # beyond every grid level: the last resort answers


def test_grid_single_reference_point():
    rng = np.random.default_rng(13)
    ref = np.array([[0.3, -1.0, 2.0]])
    query = np.concatenate([ref + rng.normal(0, 1e-7, (10, 3)), ref,
                            ref + rng.normal(0, 3.0, (2000, 3))])
    expected = np.linalg.norm(query - ref, axis=1)
    np.testing.assert_allclose(grid_distances(query, ref), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(nearest_distances(query, ref, "grid"), expected, atol=1e-12)


@pytest.mark.parametrize("case", ["cube", "surface", "far", "duplicates", "single"])
def test_grid_nearest_matches_brute_force(case):
    rng = np.random.default_rng(7)
    ref = rng.random((3000, 3))
    query = rng.random((2000, 3))
    if case == "surface":  # points on two planes, queries near them: the evaluation's geometry
        ref[:, 2] = np.where(rng.random(3000) < 0.5, 0.0, 1.0)
        query[:, 2] = rng.normal(0, 0.03, 2000)
    elif case == "far":  # most queries far outside the grid: exercises the KD-tree hand-off
        query = rng.normal(0, 20, (2000, 3))
    elif case == "duplicates":
        query = ref[rng.integers(0, 3000, 2000)]
    elif case == "single":
        ref = ref[:1]
    expected = cdist(query, ref).min(axis=1)
    np.testing.assert_allclose(grid_distances(query, ref), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(kdtree_distances(query, ref), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(nearest_distances(query, ref, "grid"), expected, atol=1e-12)


def test_grid_nearest_with_tiny_cells_stays_exact(kdtree_calls):
    rng = np.random.default_rng(3)
    ref, query = rng.random((500, 3)), rng.random((400, 3))
    got = grid_distances(query, ref, cell=1e-3)  # the grid levels prove almost nothing
    np.testing.assert_allclose(got, cdist(query, ref).min(axis=1), atol=1e-12)
    assert 0 < sum(kdtree_calls) <= len(query)  # the KD-tree answers what the levels left open


def test_auto_uses_the_grid_on_large_sets_and_agrees(kdtree_calls):
    rng = np.random.default_rng(5)
    ref = box_surface(20_000, rng)
    query = offset(box_surface(20_000, rng), 0.0, 0.5, rng)
    got = nearest_distances(query, ref)
    assert kdtree_calls == []  # the grid answered every query
    check = rng.choice(len(query), 2000, replace=False)  # brute force on a subset keeps it fast
    np.testing.assert_allclose(got[check], brute_force(query[check], ref), rtol=0, atol=1e-12)


def test_nearest_input_checks():
    p = np.zeros((3, 3))
    with pytest.raises(ValueError, match="empty"):
        nearest_distances(p, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        nearest_distances(p, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="method"):
        nearest_distances(p, p, "octree")
    assert nearest_distances(np.zeros((0, 3)), p).shape == (0,)
