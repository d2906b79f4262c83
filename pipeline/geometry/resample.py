"""Resample a real frame to the virtual camera (SPEC §1): same field of view, new pixel grid.

A virtual pixel centre (j + 0.5, i + 0.5) looks along x/z = (j + 0.5 − cx_v)/f_v; in the source
image that ray lands at the continuous pixel coordinate x_s = cx_s + fx_s·x/z (OpenCV, pixel centres
at integer + 0.5). This is "crop around the principal point to the same field of view and resize",
written per axis so fx ≠ fy and an off-centre principal point are handled exactly. Lens distortion
is not modelled (ScanNet/Matterport images are used as undistorted pinhole images).
"""
from __future__ import annotations

import numpy as np
from numba import njit
from PIL import Image


def source_coordinates(n_virtual: int, c_virtual: float, f_virtual: float,
                       c_source: float, f_source: float) -> np.ndarray:
    """(n_virtual,) float64 continuous source pixel coordinates of the virtual pixel centres on one axis."""
    return c_source + f_source * (np.arange(n_virtual) + 0.5 - c_virtual) / f_virtual


def resample_color(color: np.ndarray, source_k: np.ndarray, width: int, height: int,
                   virtual_k: np.ndarray) -> np.ndarray:
    """Bicubic crop-and-resize of an RGB image to the virtual camera.

    color: (h, w, 3) uint8. source_k: (3, 3) pixel intrinsics of ``color``. virtual_k: (4,) fx, fy,
    cx, cy of the (width × height) virtual image. Returns (height, width, 3) uint8.
    Uses Pillow's bicubic filter with a source box (antialiased when shrinking, as a resize should
    be; large shrinks start with an exact integer box reduction); where the virtual view reaches past the source image the edge pixels are replicated.
    """
    if color.ndim != 3 or color.shape[2] != 3:
        raise ValueError(f"resample_color: expected an (h, w, 3) RGB image, found shape {color.shape}; "
                         "convert grey/RGBA frames to RGB in the reader")
    fx_v, fy_v, cx_v, cy_v = (float(a) for a in virtual_k)
    k = np.asarray(source_k, dtype=np.float64)
    # Box edges = source coordinates of the virtual image edges (pixel edges, not centres).
    x0 = k[0, 2] + k[0, 0] * (0.0 - cx_v) / fx_v
    x1 = k[0, 2] + k[0, 0] * (width - cx_v) / fx_v
    y0 = k[1, 2] + k[1, 1] * (0.0 - cy_v) / fy_v
    y1 = k[1, 2] + k[1, 1] * (height - cy_v) / fy_v
    h, w = color.shape[:2]
    # Pillow wants the box inside the image: pad by edge replication where the view overhangs.
    overhang = max(0.0, -x0, -y0, x1 - w, y1 - h)
    pad = int(np.ceil(overhang)) + 2 if overhang > 0 else 0  # skip the copy when the view fits
    src = np.ascontiguousarray(color, dtype=np.uint8)
    if pad:
        src = np.pad(src, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    img = Image.fromarray(src)  # (h, w, 3) uint8 → RGB
    box = (x0 + pad, y0 + pad, x1 + pad, y1 + pad)
    # reducing_gap=2: Pillow first box-reduces by an integer factor while the remaining scale stays
    # ≥ 2, then runs the bicubic filter (its fast path; 2.4× faster on 1296×968, same result to ±1).
    out = img.resize((width, height), Image.Resampling.BICUBIC, box=box, reducing_gap=2.0)
    return np.asarray(out, dtype=np.uint8)


def resample_depth(depth: np.ndarray, source_k: np.ndarray, width: int, height: int,
                   virtual_k: np.ndarray, edge_tolerance: float = 1.0) -> np.ndarray:
    """Bilinear resampling of a z-depth map to the virtual camera, NaN holes kept.

    depth: (h, w) float metres, NaN (or ≤ 0) where the sensor has no reading. source_k: (3, 3).
    Returns (height, width) float32. A sample whose 2×2 bilinear footprint touches a hole is NaN
    (holes are never filled by interpolation). Samples up to ``edge_tolerance`` source pixels past the
    outer pixel centres are clamped to the border; farther out they are NaN (no reading there).
    """
    d = np.ascontiguousarray(depth, dtype=np.float32)
    h, w = d.shape
    fx_v, fy_v, cx_v, cy_v = (float(a) for a in virtual_k)
    k = np.asarray(source_k, dtype=np.float64)
    # Continuous coordinate → array index: index = coordinate − 0.5 (pixel centres at +0.5).
    xs = source_coordinates(width, cx_v, fx_v, k[0, 2], k[0, 0]) - 0.5
    ys = source_coordinates(height, cy_v, fy_v, k[1, 2], k[1, 1]) - 0.5
    x_out = (xs < -edge_tolerance) | (xs > w - 1 + edge_tolerance)
    y_out = (ys < -edge_tolerance) | (ys > h - 1 + edge_tolerance)
    xs = np.clip(xs, 0.0, w - 1.0)
    ys = np.clip(ys, 0.0, h - 1.0)
    x0 = np.minimum(np.floor(xs).astype(np.int64), max(w - 2, 0))
    y0 = np.minimum(np.floor(ys).astype(np.int64), max(h - 2, 0))
    # float32 weights: exact to ~0.1 µm at 5 m.
    return _bilinear(d, x0, y0, (xs - x0).astype(np.float32), (ys - y0).astype(np.float32), x_out, y_out)


@njit(cache=True)
def _tap(v: np.float32) -> np.float32:
    """A depth reading, or NaN where there is none (≤ 0 or NaN in the raw formats)."""
    return v if v > 0 else np.float32(np.nan)


@njit(cache=True)
def _bilinear(d: np.ndarray, x0: np.ndarray, y0: np.ndarray, ax: np.ndarray, ay: np.ndarray,
              x_out: np.ndarray, y_out: np.ndarray) -> np.ndarray:
    """(len(y0), len(x0)) float32 bilinear samples of d (h, w) float32 at rows y0 + ay, columns
    x0 + ax (int64 / float32 per axis); NaN where a tap is a hole (even at weight 0) and on rows /
    columns flagged in y_out / x_out (bool)."""
    h, w = d.shape
    out = np.empty((y0.shape[0], x0.shape[0]), dtype=np.float32)
    one = np.float32(1.0)
    for i in range(y0.shape[0]):
        r0 = y0[i]
        r1 = min(r0 + 1, h - 1)
        wy = ay[i]
        for j in range(x0.shape[0]):
            if y_out[i] or x_out[j]:
                out[i, j] = np.nan
                continue
            c0 = x0[j]
            c1 = min(c0 + 1, w - 1)
            wx = ax[j]
            top = _tap(d[r0, c0]) * (one - wx) + _tap(d[r0, c1]) * wx
            bottom = _tap(d[r1, c0]) * (one - wx) + _tap(d[r1, c1]) * wx
            out[i, j] = top * (one - wy) + bottom * wy
    return out
