"""Room structure (floor, walls, ceiling) inferred from mesh geometry alone, for scans without labels.

The amodal depth (SPEC §4.3) is bounded by the first hit on a *structure* face. Labelled scenes name
those faces by their NYU40 label; the official ScanNet test scenes ship no labels, so here they are
inferred from the geometry (SPEC §4.9). World frame: metres, **+Z up** (ScanNet meshes, the synthetic
generator; Matterport houses are z up too). Face normals follow the winding (right-hand rule), which in
ScanNet's reconstructions and the generator's meshes points to the observed, free side; a mesh whose
lowest horizontal faces mostly face down is taken to be wound the other way and flipped as a whole.

The faces are grouped into planes by their plane parameters rather than by growing regions over
shared edges: a wall in a scan is cut into many pieces by the furniture in front of it, and the
generator's surfaces share no vertices at all, yet every piece of one wall has the same plane.

1. Floor: up-facing faces (normal within ``max_tilt_deg`` of +Z) grouped by height (modes of the
   area-weighted height histogram, ``plane_tolerance`` wide); the floor is the lowest group holding at
   least ``min_area`` and ``floor_fraction`` of the largest group's area.
2. Ceiling: down-facing faces at least ``min_ceiling_height`` above the floor, grouped by height;
   every group of at least ``min_area`` is ceiling (soffits and lowered ceilings included).
3. Walls: vertical faces (normal within ``max_tilt_deg`` of horizontal) grouped by direction (modes
   of the azimuth histogram, ``max_tilt_deg`` wide), then by offset along it, then cut into pieces
   where the faces leave a gap wider than ``lateral_gap`` along the wall. A piece is a wall when
   (a) it holds at least ``min_area``, (b) it reaches down to within ``floor_reach`` of the floor and
   up to ``height_fraction`` of the room height (floor to the highest ceiling, or to the top of the
   scan when no ceiling was found), and (c) the scene lies on its inner side: the faces behind it
   (farther than ``behind_margin``, nearer than ``behind_depth``, inside its extent) that face it
   hold at most ``max_behind_ratio`` of its area. Tall furniture fails (b) or (c): a bookcase front
   has the wall behind it, facing it; a wall has nothing that faces it from behind (a doorway's view
   into the next room shows that room's far side, which lies deeper than ``behind_depth``).

Planes are found from the faces within ``max_tilt_deg``; then every face within ``plane_tolerance``
of a found plane (and, for a wall, within its extent) whose normal lies within ``absorb_deg`` of the
plane's joins it, so that noisy faces of a scan are not lost. Door and window panels are not told
apart: they lie within ``plane_tolerance`` of their wall and join it. Validation against labelled scenes: ``benchmarks/bench_structure.py``, docs/structure.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from numba import njit

from pipeline.errors import UserError

NONE, FLOOR, WALL, CEILING = 0, 1, 2, 3
CLASS_NAMES = ("none", "floor", "wall", "ceiling")
MODES = ("auto", "labels", "inferred")
"""Values of ``prepare.structure``: labels when the scene has them (else inferred), labels, inferred."""
SOURCES = ("labels", "inferred")
"""Where a frame's structure faces came from; v1 shards and old manifests read as "unknown"."""


@dataclass(frozen=True)
class StructureParams:
    """Thresholds of :func:`infer_structure` (metres, m², degrees); see the module docstring."""

    max_tilt_deg: float = 20.0
    absorb_deg: float = 80.0
    plane_tolerance: float = 0.05
    min_area: float = 1.0
    floor_fraction: float = 0.25
    min_ceiling_height: float = 1.8
    lateral_gap: float = 0.5
    floor_reach: float = 0.3
    height_fraction: float = 0.85
    behind_margin: float = 0.05
    behind_depth: float = 1.0
    max_behind_ratio: float = 0.3


@dataclass(frozen=True)
class InferredStructure:
    """Per-face classes (F,) uint8 (:data:`NONE`, :data:`FLOOR`, :data:`WALL`, :data:`CEILING`),
    the floor and ceiling heights found (world z, metres; NaN = none) and the number of walls."""

    classes: np.ndarray
    floor_z: float
    ceiling_z: float
    walls: int

    @property
    def mask(self) -> np.ndarray:
        """(F,) bool, True for structure faces (floor, wall or ceiling)."""
        return self.classes != NONE

    def summary(self) -> str:
        """One line for logs: heights, wall count and the share of faces per class."""
        counts = np.bincount(self.classes, minlength=4)
        parts = ", ".join(f"{CLASS_NAMES[k]} {counts[k]}" for k in (FLOOR, WALL, CEILING))
        return (f"floor z = {self.floor_z:.2f} m, ceiling z = {self.ceiling_z:.2f} m, "
                f"{self.walls} wall pieces; faces: {parts} of {len(self.classes)}")


def face_geometry(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit normals by winding (F, 3) (zero for degenerate faces), areas (F,) m², centroids (F, 3)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    norm = np.linalg.norm(cross, axis=1)
    normals = np.divide(cross, norm[:, None], out=np.zeros_like(cross), where=norm[:, None] > 0)
    return normals, 0.5 * norm, (a + b + c) / 3.0


def modes(values: np.ndarray, weights: np.ndarray, tolerance: float, min_weight: float,
          period: float | None = None) -> list[tuple[float, np.ndarray]]:
    """Weighted modes of 1-D ``values``, heaviest first: (centre, member indices) per mode.

    Repeatedly takes the window of width 2·``tolerance`` holding the most weight among the values not
    yet assigned, centres it on their weighted mean, and assigns every unassigned value within
    ``tolerance`` of that centre; stops when no window holds ``min_weight``. ``period``: the values
    are angles modulo ``period`` (the window wraps around). Deterministic (ties: lowest bin).
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    out: list[tuple[float, np.ndarray]] = []
    if values.size == 0:
        return out
    step = tolerance / 4.0
    lo = 0.0 if period is not None else float(values.min())
    n_bins = int(np.ceil(period / step)) if period is not None else int((values.max() - lo) / step) + 1
    bins = np.minimum(((values - lo) / step).astype(np.int64), n_bins - 1)
    remaining = np.ones(values.size, dtype=bool)
    while remaining.any():
        hist = np.bincount(bins[remaining], weights=weights[remaining], minlength=n_bins)
        window = _window_sums(hist, 4, period is not None)
        peak = int(np.argmax(window))
        if window[peak] < min_weight:
            break
        offset = bins - peak
        if period is not None:
            offset = (offset + n_bins // 2) % n_bins - n_bins // 2
        near = remaining & (np.abs(offset) <= 4)  # the values of the heaviest window
        centre = _weighted_centre(values[near], weights[near], lo + (peak + 0.5) * step, period)
        members = np.flatnonzero(remaining & (_distance(values, centre, period) <= tolerance))
        if members.size == 0:  # cannot happen with a positive window; guards the loop anyway
            break
        remaining[members] = False
        out.append((centre, members))
    return out


def _window_sums(hist: np.ndarray, half: int, circular: bool) -> np.ndarray:
    """Sum of ``hist`` over bins [i − half, i + half] for every i (wrapping when ``circular``)."""
    if circular:
        padded = np.concatenate([hist[-half:], hist, hist[:half]])
    else:
        padded = np.concatenate([np.zeros(half), hist, np.zeros(half)])
    cs = np.concatenate([[0.0], np.cumsum(padded)])
    return cs[2 * half + 1:] - cs[:-(2 * half + 1)]


def _distance(values: np.ndarray, centre: float, period: float | None) -> np.ndarray:
    d = np.abs(values - centre)
    return d if period is None else np.minimum(d % period, period - d % period)


def _weighted_centre(values: np.ndarray, weights: np.ndarray, around: float, period: float | None) -> float:
    if weights.sum() <= 0:
        return around
    if period is None:
        return float(np.average(values, weights=weights))
    shifted = (values - around + period / 2) % period - period / 2  # unwrap around the window
    return float((around + np.average(shifted, weights=weights)) % period)


def infer_structure(vertices: np.ndarray, faces: np.ndarray,
                    params: StructureParams = StructureParams()) -> InferredStructure:
    """Label the floor, wall and ceiling faces of a +Z-up scene mesh from its geometry.

    Args:
        vertices: (V, 3) float, world metres, +Z up.
        faces: (F, 3) int vertex indices.
        params: thresholds (see :class:`StructureParams` and the module docstring).
    Returns:
        :class:`InferredStructure` with (F,) classes; a scene without any qualifying plane gets
        all :data:`NONE` (the prepare job then skips the scene's frames, ``pipeline.prepare``).
    """
    normals, areas, centroids = face_geometry(vertices, faces)
    classes = np.zeros(len(areas), dtype=np.uint8)
    if not np.any(areas > 0):
        return InferredStructure(classes, float("nan"), float("nan"), 0)
    cos_tilt = np.cos(np.radians(params.max_tilt_deg))
    horizontal = np.abs(normals[:, 2]) >= cos_tilt
    if horizontal.any():  # winding check: the bottom of the scene (the floor) must face up
        low = horizontal & (centroids[:, 2] <= np.quantile(centroids[horizontal, 2], 0.05))
        if np.sum(areas[low] * normals[low, 2]) < 0:
            normals = -normals
    floor_z = _floor(normals, areas, centroids, cos_tilt, params, classes)
    heights = centroids[areas > 0, 2]
    base = floor_z if np.isfinite(floor_z) else float(heights.min())
    ceiling_z = _ceilings(normals, areas, centroids, cos_tilt, base, params, classes)
    top = ceiling_z if np.isfinite(ceiling_z) else float(np.quantile(heights, 0.995))
    walls = _walls(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64), normals,
                   areas, centroids, base, top, params, classes)
    return InferredStructure(classes, floor_z, ceiling_z, walls)


def _floor(normals, areas, centroids, cos_tilt, params, classes) -> float:
    """Mark the floor faces in ``classes``; return the floor height (NaN when none qualifies)."""
    up = np.flatnonzero((normals[:, 2] >= cos_tilt) & (areas > 0))
    found = modes(centroids[up, 2], areas[up], params.plane_tolerance, params.min_area)
    if not found:
        return float("nan")
    largest = max(areas[up[m]].sum() for _, m in found)
    big = [(z, m) for z, m in found if areas[up[m]].sum() >= params.floor_fraction * largest]
    z, _ = min(big, key=lambda zm: zm[0])
    classes[_absorbed(normals @ [0.0, 0.0, 1.0], centroids[:, 2] - z, areas, params)] = FLOOR
    return z


def _ceilings(normals, areas, centroids, cos_tilt, floor_z, params, classes) -> float:
    """Mark every large down-facing plane high above the floor; return the highest (NaN: none)."""
    down = np.flatnonzero((normals[:, 2] <= -cos_tilt) & (areas > 0)
                          & (centroids[:, 2] >= floor_z + params.min_ceiling_height))
    found = modes(centroids[down, 2], areas[down], params.plane_tolerance, params.min_area)
    for z, _ in found:
        classes[_absorbed(-normals[:, 2], centroids[:, 2] - z, areas, params) & (classes == NONE)] = CEILING
    return max((z for z, _ in found), default=float("nan"))


def _absorbed(facing: np.ndarray, distance: np.ndarray, areas: np.ndarray, params: StructureParams) -> np.ndarray:
    """(F,) bool: faces of a found plane: within ``plane_tolerance`` of it (``distance`` (F,) m) and
    facing its way within ``absorb_deg`` (``facing`` (F,) = cosine to its normal). Planes are found
    from the faces within ``max_tilt_deg``; noisy faces near them (scans, fine meshes) join here."""
    return ((np.abs(distance) <= params.plane_tolerance) & (facing >= np.cos(np.radians(params.absorb_deg)))
            & (areas > 0))


def _walls(vertices, faces, normals, areas, centroids, floor_z, top_z, params, classes) -> int:
    """Mark the wall pieces (module docstring, step 3) in ``classes``; return how many were found."""
    sin_tilt = np.sin(np.radians(params.max_tilt_deg))
    vertical = np.flatnonzero((np.abs(normals[:, 2]) <= sin_tilt) & (areas > 0))
    azimuth = np.arctan2(normals[vertical, 1], normals[vertical, 0]) % (2 * np.pi)
    pieces = []  # (direction (3,), offset, member face ids)
    for angle, group in modes(azimuth, areas[vertical], np.radians(params.max_tilt_deg),
                              params.min_area, period=2 * np.pi):
        for direction, offset, members in _vertical_planes(vertical[group], angle, centroids, areas, params):
            pieces += [(direction, offset, p) for p in _lateral_pieces(members, centroids, direction,
                                                                     areas, params)]
    if not pieces:
        return 0
    extent = np.array([_extent(vertices, faces, ids, direction) for direction, _, ids in pieces])
    planes = np.array([[d[0], d[1], off] for d, off, _ in pieces])
    behind = area_behind(centroids, normals, areas, planes, extent, params.behind_margin,
                         params.behind_depth)
    height = top_z - floor_z
    walls = 0
    for (direction, offset, ids), (s_lo, s_hi, z_lo, z_hi), hidden in zip(pieces, extent, behind):
        area = areas[ids].sum()
        reaches = z_lo <= floor_z + params.floor_reach and z_hi >= floor_z + params.height_fraction * height
        if reaches and hidden <= params.max_behind_ratio * area:
            along = centroids @ np.array([-direction[1], direction[0], 0.0])
            tol = params.plane_tolerance
            inside = ((along >= s_lo - tol) & (along <= s_hi + tol) & (centroids[:, 2] >= z_lo - tol)
                      & (centroids[:, 2] <= z_hi + tol))
            near = _absorbed(normals @ direction, centroids @ direction - offset, areas, params)
            classes[ids] = WALL
            classes[inside & near & (classes == NONE)] = WALL
            walls += 1
    return walls


def _vertical_planes(ids: np.ndarray, angle: float, centroids: np.ndarray, areas: np.ndarray,
                     params: StructureParams) -> Iterator[tuple[np.ndarray, float, np.ndarray]]:
    """The planes of one direction group of vertical faces: (unit direction (3,), offset, face ids).

    Noisy normals put the group's mean direction a few degrees off, which would cut a long wall into
    slices of different offsets; so each plane is seeded by the heaviest offset mode along the mean
    direction and then refitted to the centroids (positions are far less noisy than normals), twice.
    """
    remaining = ids
    rough = np.array([np.cos(angle), np.sin(angle), 0.0])
    while remaining.size:
        found = modes(centroids[remaining] @ rough, areas[remaining], params.plane_tolerance, params.min_area)
        if not found:
            return
        members = remaining[found[0][1]]
        for _ in range(2):
            direction, offset = _fit_vertical_plane(centroids[members], areas[members], rough)
            near = np.abs(centroids[remaining] @ direction - offset) <= params.plane_tolerance
            members = remaining[near] if near.any() else members
        yield direction, offset, members
        remaining = np.setdiff1d(remaining, members, assume_unique=True)


def _fit_vertical_plane(points: np.ndarray, weights: np.ndarray, rough: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares vertical plane through points (N, 3): its horizontal unit normal (turned to
    agree with ``rough``) and offset; ``rough`` itself when the points do not fix a line."""
    xy = points[:, :2]
    mean = np.average(xy, axis=0, weights=weights)
    cov = np.cov((xy - mean).T, aweights=weights) if len(xy) > 2 else np.zeros((2, 2))
    values, vectors = np.linalg.eigh(cov)
    if not values[1] > 0:
        return rough, float(np.dot(mean, rough[:2]))
    normal = vectors[:, 0] * (1.0 if np.dot(vectors[:, 0], rough[:2]) >= 0 else -1.0)
    direction = np.array([normal[0], normal[1], 0.0])
    return direction, float(np.dot(mean, normal))


def _lateral_pieces(ids: np.ndarray, centroids: np.ndarray, direction: np.ndarray, areas: np.ndarray,
                    params: StructureParams) -> list[np.ndarray]:
    """Split coplanar faces where their centroids leave a gap > ``lateral_gap`` along the plane;
    pieces under ``min_area`` are dropped."""
    along = centroids[ids] @ np.array([-direction[1], direction[0], 0.0])
    order = np.argsort(along, kind="stable")
    cuts = np.flatnonzero(np.diff(along[order]) > params.lateral_gap) + 1
    return [ids[np.sort(part)] for part in np.split(order, cuts) if areas[ids[part]].sum() >= params.min_area]


def _extent(vertices: np.ndarray, faces: np.ndarray, ids: np.ndarray,
            direction: np.ndarray) -> tuple[float, float, float, float]:
    """(s_min, s_max, z_min, z_max) of a piece's vertices: s along the plane, z height (metres)."""
    corners = vertices[faces[ids].ravel()]
    along = corners @ np.array([-direction[1], direction[0], 0.0])
    return float(along.min()), float(along.max()), float(corners[:, 2].min()), float(corners[:, 2].max())


@njit(cache=True)
def area_behind(centroids: np.ndarray, normals: np.ndarray, areas: np.ndarray, planes: np.ndarray,
                extent: np.ndarray, margin: float, depth: float) -> np.ndarray:
    """Per vertical plane, the area of faces behind it that face it (the wall test of step 3).

    centroids, normals (F, 3) float64 (world, unit normals); areas (F,) m²; planes (P, 3): the
    horizontal unit direction (d_x, d_y) the plane faces and its offset o (points p on it have
    d·p = o); extent (P, 4): s_min, s_max, z_min, z_max with s = (−d_y, d_x)·p. A face counts when
    its centroid lies margin < o − d·c ≤ depth behind the plane, within the extent, and its normal
    faces the plane (n·d ≥ 0.5). Returns (P,) float64 m².
    """
    out = np.zeros(planes.shape[0])
    for j in range(centroids.shape[0]):
        cx, cy, cz = centroids[j, 0], centroids[j, 1], centroids[j, 2]
        for k in range(planes.shape[0]):
            dx, dy = planes[k, 0], planes[k, 1]
            if normals[j, 0] * dx + normals[j, 1] * dy < 0.5:
                continue
            behind = planes[k, 2] - (dx * cx + dy * cy)
            if behind <= margin or behind > depth:
                continue
            s = -dy * cx + dx * cy
            if extent[k, 0] <= s <= extent[k, 1] and extent[k, 2] <= cz <= extent[k, 3]:
                out[k] += areas[j]
    return out


class StructureError(UserError, ValueError):
    """``prepare.structure: labels`` was asked for a scene without labels."""


@dataclass(frozen=True)
class StructureChoice:
    """The structure faces of a scene: mask (F,) bool, source ("labels" | "inferred"), and a line
    describing what was found (for the job's log and ``done`` summary)."""

    mask: np.ndarray
    source: str
    detail: str


def choose_structure(vertices: np.ndarray, faces: np.ndarray, face_labels: np.ndarray | None,
                     mode: str, structure_labels: tuple[int, ...]) -> StructureChoice:
    """The structure faces of a scene under ``prepare.structure`` = ``mode`` (:data:`MODES`).

    vertices (V, 3) world metres (+Z up); faces (F, 3); face_labels (F,) NYU40 ids or None (an
    unlabelled scan); structure_labels: the NYU40 ids that are structure. Raises StructureError for
    ``labels`` without labels. An empty mask is returned as is: the prepare job reports it.
    """
    if mode not in MODES:
        raise StructureError(f"prepare.structure must be one of {MODES}, found {mode!r}")
    if mode == "labels" and face_labels is None:
        raise StructureError("prepare.structure is 'labels' but this scene has no face labels (an "
                             "unlabelled scan such as ScanNet's scans_test); use 'auto' or 'inferred'")
    if face_labels is not None and mode != "inferred":
        mask = np.isin(np.asarray(face_labels), np.asarray(structure_labels))
        return StructureChoice(mask, "labels", f"labels: {int(mask.sum())} of {len(mask)} faces "
                                               f"in NYU40 {list(structure_labels)}")
    inferred = infer_structure(vertices, faces)
    return StructureChoice(inferred.mask, "inferred", "inferred: " + inferred.summary())
