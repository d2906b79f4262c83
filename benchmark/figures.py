"""Fig. 5-style qualitative renders: the prediction coloured by precision, the ground truth by recall.

For one frame: points are sampled on the delineated prediction and on the ground-truth visible
mesh; a predicted sample is *correct* (green) when it lies within ``threshold`` (5 cm) of the
ground-truth samples, else red (the precision flag), and a ground-truth sample is *recovered*
(green) when it lies within ``threshold`` of the prediction's samples, else red (the recall flag).
Each mesh is rendered by headless ray casting (open3d ``RaycastingScene``: one ray per pixel, no GL
context): a hit pixel takes the flag of the nearest sample on the surface it hit and is shaded by
|normal · ray|. The three panels (input image, prediction, ground truth) are saved as one PNG with
matplotlib (Agg). :func:`photo_figure` draws a reconstruction without ground truth (input, depth,
the mesh in its vertex colours from the camera and from the side) for ``dgs predict-image``.

All geometry is in the frame's camera frame (OpenCV: x right, y down, z forward), metres.
"""
from __future__ import annotations

import os
from pathlib import Path
import numpy as np
import open3d as o3d
from scipy.spatial import cKDTree

from benchmark.nearest import nearest_distances
from benchmark.sampling import sample_surface
from pipeline.atomic import atomic_path

GREEN = np.array([0.15, 0.75, 0.2])
RED = np.array([0.85, 0.15, 0.1])
BACKGROUND = np.array([1.0, 1.0, 1.0])


def _pyplot():
    """matplotlib.pyplot on the Agg back end (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | os.PathLike, title: str) -> Path:
    """Title ``fig``, write it as PNG atomically, close it; returns the path."""
    if title:
        fig.suptitle(title, fontsize=8)
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def flags(points: np.ndarray, reference: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """(N,) bool: True where a point of ``points`` (N, 3) is within ``threshold`` metres of
    ``reference`` (M, 3) — the per-sample precision (pred vs GT) or recall (GT vs pred) flag."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    if len(reference) == 0:
        return np.zeros(len(points), dtype=bool)
    return nearest_distances(points, reference) < threshold


def orbit_eye(target: np.ndarray, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """(3,) eye position: the input camera's centre (the origin) orbited about ``target`` (3,)
    by ``yaw_deg`` to the right (about the camera y axis) and ``pitch_deg`` upward."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), np.sin(pitch)], [0, -np.sin(pitch), np.cos(pitch)]])
    target = np.asarray(target, dtype=np.float64)
    return target + ry @ rx @ (-target)


def view_rays(eye: np.ndarray, target: np.ndarray, focal: float, width: int,
              height: int) -> np.ndarray:
    """(height, width, 6) float32 rays (origin, unit direction) of a pinhole camera at ``eye``
    looking at ``target`` (camera frame metres), image "down" along +y, focal in pixels."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    forward /= np.linalg.norm(forward)
    right = np.cross([0.0, 1.0, 0.0], forward)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    jj, ii = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    d = (((jj - width / 2) / focal)[..., None] * right + ((ii - height / 2) / focal)[..., None] * down
         + forward)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return np.concatenate([np.broadcast_to(eye, d.shape), d], axis=-1).astype(np.float32)


def cast(vertices: np.ndarray, faces: np.ndarray, rays: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First hits of ``rays`` (H, W, 6) on a mesh (vertices (V, 3) metres, faces (F, 3) int).

    Returns hit (H, W) bool, and for the hit pixels (in ``hit`` order) the points (K, 3), the
    triangle ids (K,) and the shading factor 0.35 + 0.65·|normal · ray| (K,).
    """
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(np.asarray(vertices, dtype=np.float32)),
                        o3d.core.Tensor(np.asarray(faces, dtype=np.uint32).reshape(-1, 3)))
    out = scene.cast_rays(o3d.core.Tensor(rays))
    t = out["t_hit"].numpy()
    ok = np.isfinite(t)
    points = rays[..., :3][ok] + t[ok][:, None] * rays[..., 3:][ok]
    shade = 0.35 + 0.65 * np.abs(np.sum(out["primitive_normals"].numpy()[ok] * rays[..., 3:][ok], axis=1))
    return ok, points, out["primitive_ids"].numpy()[ok].astype(np.int64), shade


def render_flags(vertices: np.ndarray, faces: np.ndarray, samples: np.ndarray, sample_flags: np.ndarray,
                 rays: np.ndarray) -> np.ndarray:
    """Ray-cast a mesh and colour each hit by the flag of the nearest sample.

    Args:
        vertices: (V, 3) float metres; faces: (F, 3) int; samples: (N, 3) float metres, points on
            the mesh; sample_flags: (N,) bool; rays: (H, W, 6) float32 from :func:`view_rays`.
    Returns:
        (H, W, 3) float in [0, 1]: GREEN (flag True) or RED, times 0.35 + 0.65·|n·ray|; white
        where the ray misses or the mesh has no samples.
    """
    h, w = rays.shape[:2]
    image = np.broadcast_to(BACKGROUND, (h, w, 3)).copy()
    if len(faces) == 0 or len(samples) == 0:
        return image
    ok, points, _, shade = cast(vertices, faces, rays)
    _, nearest = cKDTree(samples).query(points)
    colour = np.where(np.asarray(sample_flags)[nearest][:, None], GREEN, RED)
    image[ok] = colour * shade[:, None]
    return image


def render_colours(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Ray-cast a mesh coloured per vertex: (H, W, 3) float in [0, 1], each hit the mean colour of its
    triangle's vertices (``colours`` (V, 3) uint8) times the shading of :func:`cast`; white on a miss."""
    h, w = rays.shape[:2]
    image = np.broadcast_to(BACKGROUND, (h, w, 3)).copy()
    if len(faces) == 0:
        return image
    ok, _, triangles, shade = cast(vertices, faces, rays)
    colour = np.asarray(colours, dtype=np.float64)[np.asarray(faces)[triangles]].mean(axis=1) / 255.0
    image[ok] = colour * shade[:, None]
    return image


def frame_figure(image: np.ndarray, pred_vertices: np.ndarray, pred_faces: np.ndarray,
                 gt_vertices: np.ndarray, gt_faces: np.ndarray, path: str | os.PathLike, *,
                 focal: float, threshold: float = 0.05, n_samples: int = 50_000, seed: int = 0,
                 yaw_deg: float = 25.0, pitch_deg: float = 20.0, title: str = "") -> Path:
    """Write the three-panel figure of one frame as PNG (atomically); returns its path.

    Args:
        image: (3, H, W) uint8 RGB input image; its size is also the render size.
        pred_vertices, pred_faces: (V, 3) float metres camera frame, (F, 3) int — the delineated
            prediction (only the kept faces).
        gt_vertices, gt_faces: the ground-truth visible mesh, same frame.
        focal: render focal length in pixels (the frame's virtual focal).
        threshold: precision/recall distance, metres; n_samples, seed: surface samples per mesh.
        yaw_deg, pitch_deg: viewpoint orbit about the ground truth's centre (0, 0 = input view).
    """
    plt = _pyplot()
    gt_pts = sample_surface(gt_vertices, gt_faces, n_samples, seed)
    pred_pts = sample_surface(pred_vertices, pred_faces, n_samples, seed + 1)
    target = 0.5 * (gt_pts.min(axis=0) + gt_pts.max(axis=0)) if len(gt_pts) else np.array([0, 0, 1.0])
    _, h, w = image.shape
    rays = view_rays(orbit_eye(target, yaw_deg, pitch_deg), target, focal, w, h)
    panels = [("input", np.moveaxis(image, 0, -1)),
              ("prediction (precision)", render_flags(pred_vertices, pred_faces, pred_pts,
                                                      flags(pred_pts, gt_pts, threshold), rays)),
              ("ground truth (recall)", render_flags(gt_vertices, gt_faces, gt_pts,
                                                     flags(gt_pts, pred_pts, threshold), rays))]
    fig, axes = plt.subplots(1, 3, figsize=(3 * w / 80 + 0.5, h / 80 + 0.6), dpi=100)
    for ax, (name, pixels) in zip(axes, panels):
        ax.imshow(pixels, interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    return _save(plt, fig, path, title)


def photo_figure(image: np.ndarray, depth: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                 colours: np.ndarray, path: str | os.PathLike, *, focal: float, yaw_deg: float = 50.0,
                 pitch_deg: float = 15.0, title: str = "") -> Path:
    """Write a four-panel PNG of one reconstruction (atomically): input, predicted depth, the mesh from
    the camera and from the side (orbit by ``yaw_deg``/``pitch_deg`` about the mesh's box centre).

    image: (3, H, W) uint8, the model's input (its size is the render size); depth: (H, W) metres;
    vertices (V, 3) metres, camera frame; faces (F, 3); colours (V, 3) uint8; focal in pixels.
    """
    plt = _pyplot()
    _, h, w = image.shape
    target = (0.5 * (vertices.min(axis=0) + vertices.max(axis=0)) if len(vertices)
              else np.array([0.0, 0.0, float(np.nanmedian(depth)) if np.isfinite(depth).any() else 1.0]))
    views = [("mesh, camera view", np.zeros(3), np.array([0.0, 0.0, 1.0])),
             ("mesh, side view", orbit_eye(target, yaw_deg, pitch_deg), target)]
    inches = max(w / 80, 2.4)  # per panel; small virtual cameras are drawn enlarged
    fig, axes = plt.subplots(1, 4, figsize=(4 * inches + 0.8, inches * h / w + 0.6), dpi=100)
    axes[0].imshow(np.moveaxis(image, 0, -1), interpolation="nearest")
    axes[0].set_title("input", fontsize=8)
    shown = axes[1].imshow(np.where(np.isfinite(depth), depth, np.nan), cmap="turbo", interpolation="nearest")
    fig.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
    axes[1].set_title("depth head [m]", fontsize=8)
    for ax, (name, eye, look_at) in zip(axes[2:], views):
        ax.imshow(render_colours(vertices, faces, colours, view_rays(eye, look_at, focal, w, h)),
                  interpolation="nearest")
        ax.set_title(name, fontsize=8)
    for ax in axes:
        ax.axis("off")
    return _save(plt, fig, path, title)
