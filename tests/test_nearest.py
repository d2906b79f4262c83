"""benchmark.nearest (both back ends) against brute-force float64 distances (scipy cdist), near and far queries."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from benchmark import nearest
from benchmark.nearest import nearest_distances


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


def _room_queries(case: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(query, ref) for one geometry case of the evaluation: a room's surface samples as reference."""
    ref = box_surface(20_000, rng)
    surface = box_surface(6_000, rng)
    if case == "near":
        return surface + rng.normal(0, 0.01, surface.shape), ref
    if case == "offset":  # a poor prediction: every point 0.2–2 m off the surface
        return offset(surface, 0.2, 2.0, rng), ref
    if case == "mix":  # near, offset, and floaters anywhere in the room
        return np.concatenate([surface[:2000] + rng.normal(0, 0.01, (2000, 3)),
                               offset(surface[2000:4000], 0.2, 2.0, rng),
                               rng.random((2000, 3)) * [4.0, 3.0, 5.0]]), ref
    # far outside the reference box, 10–200 m away
    direction = rng.normal(size=(3000, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return np.array([2.0, 1.5, 2.5]) + direction * rng.uniform(10, 200, (3000, 1)), ref


@pytest.mark.parametrize("method", nearest.METHODS)
@pytest.mark.parametrize("case", ["near", "offset", "mix", "far"])
def test_matches_brute_force_on_a_room(case, method):
    query, ref = _room_queries(case, np.random.default_rng(11))
    np.testing.assert_allclose(nearest_distances(query, ref, method), brute_force(query, ref), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", nearest.METHODS)
@pytest.mark.parametrize("case", ["cube", "surface", "duplicates", "single", "float32"])
def test_matches_brute_force_on_small_sets(case, method):
    rng = np.random.default_rng(7)
    ref = rng.random((3000, 3))
    query = rng.random((2000, 3))
    if case == "surface":  # points on two planes, queries near them: the evaluation's geometry
        ref[:, 2] = np.where(rng.random(3000) < 0.5, 0.0, 1.0)
        query[:, 2] = rng.normal(0, 0.03, 2000)
    elif case == "duplicates":
        query = ref[rng.integers(0, 3000, 2000)]
    elif case == "single":
        ref = ref[:1]
    elif case == "float32":  # computed in float64 whatever the input dtype
        ref, query = ref.astype(np.float32), query.astype(np.float32)
    expected = cdist(query.astype(np.float64), ref.astype(np.float64)).min(axis=1)
    got = nearest_distances(query, ref, method)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_nearest_input_checks():
    p = np.zeros((3, 3))
    with pytest.raises(ValueError, match="empty"):
        nearest_distances(p, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        nearest_distances(p, np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="method"):
        nearest_distances(p, p, "octree")
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        nearest_distances(np.zeros((3, 6)), p)
    assert nearest_distances(np.zeros((0, 3)), p).shape == (0,)
