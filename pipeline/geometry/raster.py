"""Rendered and amodal depth by rasterising the mesh into three z-buffers in one pass (SPEC §4).

For every pixel ray of the virtual camera (pixel centres at integer + 0.5, direction (x/z, y/z, 1)
in the camera frame, so a hit's ray parameter t *is* its z-depth) the kernel keeps the nearest hit
over all faces, the nearest hit over structure faces and the farthest hit over all faces; the
amodal depth is min(first structure hit, farthest hit), exactly as ``depth_maps_listed`` defines it
with Embree's ``list_intersections``. The hit test is the exact ray–triangle test in float64 camera
coordinates, not a screen-space approximation: a pixel is inside a face iff the three edge planes
through the camera centre, n_ab = p_a × p_b, give d·n_ab of one sign (zero counts as inside). A
shared edge yields exactly negated values in its two faces, so no ray slips through a mesh
(watertight); faces crossing the camera plane are clipped only to bound the pixels tested.
Only faces of the chunks in view (``pipeline.geometry.chunks``) are visited, and each of their
vertices is transformed once, on first use. Depths are z-depths in metres, NaN where nothing is hit.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from pipeline.geometry.chunks import FaceChunks, chunk_members, chunks_in_view

_Z_CLIP = 1e-6  # metres: the part of a face closer than this to the camera plane is not bounded
_PAD = 1e-3     # pixels: the tested box is this much larger than the projected face (rounding)


def view_planes(fx: float, fy: float, cx: float, cy: float, width: int, height: int) -> np.ndarray:
    """(5, 4) camera-frame half-spaces a·x + b·y + c·z + d ≥ 0 of what the image can see: the image
    borders widened by one pixel (planes through the camera centre, as in the vertex outcodes of
    ``_camera_vertex``) and z ≥ _Z_CLIP."""
    return np.array([[fx, 0.0, cx + 1.0, 0.0], [-fx, 0.0, width + 1.0 - cx, 0.0],
                     [0.0, fy, cy + 1.0, 0.0], [0.0, -fy, height + 1.0 - cy, 0.0],
                     [0.0, 0.0, 1.0, -_Z_CLIP]])


@njit(cache=True)
def _camera_vertex(vertices: np.ndarray, i: int, rotation_cw: np.ndarray, translation_cw: np.ndarray,
                   fx: float, fy: float, cx: float, cy: float, width: int, height: int,
                   cam: np.ndarray, code: np.ndarray) -> None:
    """Write vertex i in camera coordinates into cam[i] (3,) and its outcode into code[i] (uint8).

    Outcode bits: 1 = z ≤ _Z_CLIP, 2/4 = left/right of the image, 8/16 = above/below it, each by
    more than one pixel, tested as half-spaces through the camera centre so they hold for any z.
    """
    for a in range(3):
        cam[i, a] = (rotation_cw[a, 0] * vertices[i, 0] + rotation_cw[a, 1] * vertices[i, 1]
                     + rotation_cw[a, 2] * vertices[i, 2] + translation_cw[a])
    x, y, z = cam[i, 0], cam[i, 1], cam[i, 2]
    c = 0
    if z <= _Z_CLIP:
        c |= 1
    if fx * x + (cx + 1.0) * z < 0.0:
        c |= 2
    if fx * x + (cx - width - 1.0) * z > 0.0:
        c |= 4
    if fy * y + (cy + 1.0) * z < 0.0:
        c |= 8
    if fy * y + (cy - height - 1.0) * z > 0.0:
        c |= 16
    code[i] = c


@njit(cache=True)
def _pixel_box(p: np.ndarray, fx: float, fy: float, cx: float, cy: float, width: int,
               height: int) -> tuple[int, int, int, int]:
    """Pixel range (j0, j1, i0, i1), inclusive, whose centres may see the face p (3, 3) camera.

    The face is clipped to z ≥ _Z_CLIP first (vertices in front, plus edge crossings of that plane),
    so faces reaching behind the camera get a finite box; empty when j0 > j1 or i0 > i1.
    """
    xmin, xmax, ymin, ymax = np.inf, -np.inf, np.inf, -np.inf
    for k in range(3):  # scalar indexing only: array views cost reference counting per face
        a = k
        b = (k + 1) % 3
        for q in range(2):  # the vertex a if in front, then the crossing of edge a→b if any
            if q == 0:
                if p[a, 2] <= _Z_CLIP:
                    continue
                x, y, z = p[a, 0], p[a, 1], p[a, 2]
            else:
                if (p[a, 2] > _Z_CLIP) == (p[b, 2] > _Z_CLIP):
                    continue
                s = (_Z_CLIP - p[a, 2]) / (p[b, 2] - p[a, 2])
                x, y, z = p[a, 0] + s * (p[b, 0] - p[a, 0]), p[a, 1] + s * (p[b, 1] - p[a, 1]), _Z_CLIP
            u = fx * x / z + cx
            v = fy * y / z + cy
            xmin, xmax = min(xmin, u), max(xmax, u)
            ymin, ymax = min(ymin, v), max(ymax, v)
    if xmin > xmax or ymin > ymax:
        return 0, -1, 0, -1
    # Centre j + 0.5 in [xmin, xmax]  <=>  j in [ceil(xmin − 0.5), floor(xmax − 0.5)].
    j0 = int(np.ceil(max(xmin - 0.5 - _PAD, -1.0)))
    j1 = int(np.floor(min(xmax - 0.5 + _PAD, width)))
    i0 = int(np.ceil(max(ymin - 0.5 - _PAD, -1.0)))
    i1 = int(np.floor(min(ymax - 0.5 + _PAD, height)))
    return max(j0, 0), min(j1, width - 1), max(i0, 0), min(i1, height - 1)


@njit(cache=True)
def rasterise_depths(vertices: np.ndarray, faces: np.ndarray, structure: np.ndarray,
                     members: np.ndarray, rotation_cw: np.ndarray,
                     translation_cw: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                     width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest, nearest-structure and farthest hit depth per pixel, each (height, width) float64.

    vertices (V, 3) float64 world metres; faces (F, 3) int vertex ids (any winding) and structure
    (F,) bool in chunk order; members (n,) int64: the positions drawn (``chunk_members`` of the
    chunks in view, ``pipeline.geometry.chunks``); rotation_cw (3, 3), translation_cw
    (3,) world → camera (OpenCV); fx, fy, cx, cy pixels. A hit counts where t > 0.
    No hit: +inf (nearest) and −inf (farthest). Zero-area faces never hit.
    """
    # Vertices are transformed on first use: only those of chunks in view are ever touched.
    cam = np.empty(vertices.shape)
    code = np.empty(vertices.shape[0], dtype=np.uint8)
    done = np.zeros(vertices.shape[0], dtype=np.bool_)
    near = np.full((height, width), np.inf)
    near_structure = np.full((height, width), np.inf)
    far = np.full((height, width), -np.inf)
    xs = (np.arange(width) + 0.5 - cx) / fx
    ys = (np.arange(height) + 0.5 - cy) / fy
    p = np.empty((3, 3))
    edge = np.empty((3, 3))  # edge[k] = p[k+1] × p[k+2]: the plane of the edge opposite vertex k
    for f in members:
        ia, ib, ic = faces[f, 0], faces[f, 1], faces[f, 2]
        for v in (ia, ib, ic):
            if not done[v]:
                _camera_vertex(vertices, v, rotation_cw, translation_cw, fx, fy, cx, cy, width, height,
                               cam, code)
                done[v] = True
        if code[ia] & code[ib] & code[ic]:
            continue  # all three vertices beyond one frustum plane (or all behind the camera)
        for a in range(3):
            p[0, a], p[1, a], p[2, a] = cam[ia, a], cam[ib, a], cam[ic, a]
        j0, j1, i0, i1 = _pixel_box(p, fx, fy, cx, cy, width, height)
        if j0 > j1 or i0 > i1:
            continue
        for k in range(3):
            a, b = (k + 1) % 3, (k + 2) % 3
            edge[k, 0] = p[a, 1] * p[b, 2] - p[a, 2] * p[b, 1]
            edge[k, 1] = p[a, 2] * p[b, 0] - p[a, 0] * p[b, 2]
            edge[k, 2] = p[a, 0] * p[b, 1] - p[a, 1] * p[b, 0]
        # Face normal from differences (accurate far from the camera) and the plane offset n·p0.
        e1x, e1y, e1z = p[1, 0] - p[0, 0], p[1, 1] - p[0, 1], p[1, 2] - p[0, 2]
        e2x, e2y, e2z = p[2, 0] - p[0, 0], p[2, 1] - p[0, 1], p[2, 2] - p[0, 2]
        nx, ny, nz = e1y * e2z - e1z * e2y, e1z * e2x - e1x * e2z, e1x * e2y - e1y * e2x
        offset = nx * p[0, 0] + ny * p[0, 1] + nz * p[0, 2]
        zlo = min(p[0, 2], min(p[1, 2], p[2, 2]))
        zhi = max(p[0, 2], max(p[1, 2], p[2, 2]))
        is_structure = structure[f]
        for i in range(i0, i1 + 1):
            y = ys[i]
            r0 = edge[0, 1] * y + edge[0, 2]
            r1 = edge[1, 1] * y + edge[1, 2]
            r2 = edge[2, 1] * y + edge[2, 2]
            rn = ny * y + nz
            for j in range(j0, j1 + 1):
                x = xs[j]
                s0 = edge[0, 0] * x + r0
                s1 = edge[1, 0] * x + r1
                s2 = edge[2, 0] * x + r2
                if not ((s0 >= 0.0 and s1 >= 0.0 and s2 >= 0.0) or (s0 <= 0.0 and s1 <= 0.0 and s2 <= 0.0)):
                    continue
                den = nx * x + rn
                if den == 0.0:
                    continue  # the ray lies in the face's plane (or the face has no area)
                # The hit's z is a convex combination of the vertex z: clamp rounding of edge-on faces.
                t = min(max(offset / den, zlo), zhi)
                if t <= 0.0:
                    continue
                if t < near[i, j]:
                    near[i, j] = t
                if t > far[i, j]:
                    far[i, j] = t
                if is_structure and t < near_structure[i, j]:
                    near_structure[i, j] = t
    return near, near_structure, far


def _buffers(vertices: np.ndarray, chunks: FaceChunks, world_to_camera: np.ndarray,
             intrinsics: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``rasterise_depths`` over the chunks in view: nearest, nearest-structure, farthest (±inf = none)."""
    t_cw = np.asarray(world_to_camera, dtype=np.float64)
    rotation, translation = np.ascontiguousarray(t_cw[:3, :3]), np.ascontiguousarray(t_cw[:3, 3])
    fx, fy, cx, cy = (float(a) for a in intrinsics)
    ok = chunks_in_view(chunks.lo, chunks.hi, rotation, translation,
                        view_planes(fx, fy, cx, cy, width, height))
    return rasterise_depths(vertices, chunks.faces, chunks.structure, chunk_members(chunks.starts, ok),
                            rotation, translation, fx, fy, cx, cy, int(width), int(height))


def _finite(d: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(d), d, np.nan).astype(np.float32)


def depth_maps_raster(vertices: np.ndarray, chunks: FaceChunks, world_to_camera: np.ndarray,
                      intrinsics: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Rendered (nearest hit) and amodal depth, each (height, width) float32 metres, NaN = no hit.

    vertices (V, 3) float64 world; chunks: the scene's faces in chunks (``build_chunks``);
    world_to_camera (4, 4) float64; intrinsics (4,) fx, fy, cx, cy pixels.
    Amodal = min(first structure hit, farthest hit).
    """
    near, near_structure, far = _buffers(vertices, chunks, world_to_camera, intrinsics, width, height)
    return _finite(near), _finite(np.minimum(near_structure, far))


def structure_depth_raster(vertices: np.ndarray, chunks: FaceChunks, world_to_camera: np.ndarray,
                           intrinsics: np.ndarray, width: int, height: int) -> np.ndarray:
    """Depth of the first structure hit alone, (height, width) float32 metres, NaN where a ray meets
    no structure face (arguments as :func:`depth_maps_raster`)."""
    return _finite(_buffers(vertices, chunks, world_to_camera, intrinsics, width, height)[1])
