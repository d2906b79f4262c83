"""Ray-cast rendering of a `SceneMesh`: z-depth, shaded colour and an optional depth-sensor model.

One open3d `RaycastingScene` (Embree BVH) is built per scene and reused for every frame. Rays go
through pixel centres (SPEC §1: pixel (i, j) has centre (j + 0.5, i + 0.5)); their directions have
camera-frame z = 1, so Embree's hit distance *is* the z-depth in metres.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import open3d as o3d

from .scene import SceneMesh
from .shading import gamma_table, shade_kernel

_GAMMA = 2.2
_ENCODE = gamma_table(_GAMMA)


@lru_cache(maxsize=8)
def _directions(camera: "PinholeCamera") -> np.ndarray:
    """Cached (H, W, 3) float32 camera-frame ray directions of `camera` (read-only)."""
    out = camera.ray_directions().astype(np.float32)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class PinholeCamera:
    """Pinhole intrinsics in pixels for a `width` x `height` image (SPEC §1 pixel-centre convention)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def matrix(self) -> np.ndarray:
        """(3, 3) float64 intrinsic matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @staticmethod
    def scaled(native_size: tuple[int, int], native: tuple[float, float, float, float],
               size: tuple[int, int]) -> "PinholeCamera":
        """Camera of a resized image: intrinsics `native` (fx, fy, cx, cy) at `native_size` (W, H)
        rescaled to `size` (W, H). Pixel j covers image coordinates [j, j + 1], so the image border
        is at 0 and W at any size and every parameter scales by the same factor."""
        sx, sy = size[0] / native_size[0], size[1] / native_size[1]
        fx, fy, cx, cy = native
        return PinholeCamera(int(size[0]), int(size[1]), fx * sx, fy * sy, cx * sx, cy * sy)

    def ray_directions(self) -> np.ndarray:
        """(H, W, 3) float64 camera-frame directions (x, y, 1) through the pixel centres.

        Project convention (SPEC §1): pixel (i, j) has its centre at image coordinates
        (j + 0.5, i + 0.5), i.e. x/z = (j + 0.5 - cx) / fx.
        """
        j, i = np.meshgrid(np.arange(self.width) + 0.5, np.arange(self.height) + 0.5)
        return np.stack([(j - self.cx) / self.fx, (i - self.cy) / self.fy, np.ones_like(j)], axis=-1)


@dataclass
class Hits:
    """First hits of one image's rays (float32 arrays). depth: (H, W) z metres, NaN on miss; face: (H, W)
    int64 face index, -1 on miss; uv: (H, W, 2) barycentrics (point = (1-u-v)·v0 + u·v1 + v·v2);
    normal: (H, W, 3) unit world normals turned toward the camera; cos_incidence: (H, W) |cos| of
    the angle between ray and normal; directions: (H, W, 3) world ray directions (camera z = 1)."""

    depth: np.ndarray
    face: np.ndarray
    uv: np.ndarray
    normal: np.ndarray
    cos_incidence: np.ndarray
    directions: np.ndarray


class SceneRenderer:
    """Renders depth and colour of one scene from any pose; build once per scene.

    Args:
        mesh: the scene (world frame, metres).
        light: (3,) world position of a point light (metres); ambient: fraction of light that is
            uniform; threads: Embree threads (0 = all cores).
    """

    def __init__(self, mesh: SceneMesh, light: np.ndarray, ambient: float = 0.35, threads: int = 0):
        self._scene = o3d.t.geometry.RaycastingScene()
        self._scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(mesh.vertices, np.float32)),
                                  o3d.core.Tensor(np.ascontiguousarray(mesh.faces, np.uint32)))
        self._faces = mesh.faces.astype(np.int64)
        self._albedo = (mesh.vertex_colors.astype(np.float32) / 255.0) ** _GAMMA  # linear light
        self._light = np.asarray(light, dtype=np.float32)
        self._ambient = float(ambient)
        self._threads = int(threads)

    def cast(self, camera: PinholeCamera, camera_to_world: np.ndarray) -> Hits:
        """Cast one ray per pixel of `camera` placed at `camera_to_world` ((4, 4), OpenCV axes)."""
        pose = np.asarray(camera_to_world, dtype=np.float64)
        directions = (_directions(camera) @ pose[:3, :3].T.astype(np.float32))
        rays = np.empty(directions.shape[:2] + (6,), np.float32)
        rays[..., :3] = pose[:3, 3]
        rays[..., 3:] = directions
        out = self._scene.cast_rays(o3d.core.Tensor(rays), nthreads=self._threads)
        t = out["t_hit"].numpy()
        hit = np.isfinite(t)
        face = np.where(hit, out["primitive_ids"].numpy().astype(np.int64), -1)
        normal = out["primitive_normals"].numpy()
        dot = np.einsum("hwc,hwc->hw", normal, directions)
        normal *= np.where(dot > 0, -1.0, 1.0).astype(np.float32)[..., None]  # face the camera
        cos = np.abs(dot) / np.linalg.norm(directions, axis=-1)
        return Hits(np.where(hit, t, np.nan), face, out["primitive_uvs"].numpy(),
                    normal, np.where(hit, cos, 0.0), directions)

    def depth(self, camera: PinholeCamera, camera_to_world: np.ndarray) -> np.ndarray:
        """(H, W) float32 z-depth in metres (camera frame), NaN where the ray hits nothing."""
        return self.cast(camera, camera_to_world).depth.astype(np.float32)

    def shade(self, hits: Hits, camera_to_world: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 sRGB: interpolated vertex albedo x (ambient + Lambert from the point
        light with a soft distance falloff), gamma-encoded; black where nothing is hit."""
        origin = np.asarray(camera_to_world, dtype=np.float64)[:3, 3]
        return shade_kernel(hits.face, hits.uv, hits.normal, np.nan_to_num(hits.depth),
                            hits.directions, origin, self._light.astype(np.float64), self._faces,
                            self._albedo, self._ambient, _ENCODE)

    def shade_reference(self, hits: Hits, camera_to_world: np.ndarray) -> np.ndarray:
        """NumPy version of `shade` (same formula), kept as the test oracle of the kernel."""
        hit = hits.face >= 0
        tri = self._faces[np.where(hit, hits.face, 0)]
        u, v = hits.uv[..., 0:1], hits.uv[..., 1:2]
        albedo = (1 - u - v) * self._albedo[tri[..., 0]]
        albedo += u * self._albedo[tri[..., 1]]
        albedo += v * self._albedo[tri[..., 2]]
        depth = np.where(hit, hits.depth, 0.0).astype(np.float32)
        origin = np.asarray(camera_to_world, dtype=np.float32)[:3, 3]
        to_light = (self._light - origin) - hits.directions * depth[..., None]
        dist2 = np.einsum("hwc,hwc->hw", to_light, to_light)
        cos = np.einsum("hwc,hwc->hw", hits.normal, to_light) / np.sqrt(np.maximum(dist2, 1e-12))
        lambert = np.clip(cos, 0.0, 1.0)
        light = self._ambient + (1.0 - self._ambient) * 1.6 * lambert / (1.0 + 0.08 * dist2)
        light[~hit] = 0.0
        linear = np.clip(albedo * light[..., None], 0.0, 1.0)
        return np.round(linear ** (1.0 / _GAMMA) * 255.0).astype(np.uint8)

    def color(self, camera: PinholeCamera, camera_to_world: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 sRGB image of the scene from `camera_to_world`."""
        return self.shade(self.cast(camera, camera_to_world), camera_to_world)


@dataclass(frozen=True)
class SensorModel:
    """Depth-sensor imperfections. noise: relative sigma (sigma = noise * z); blobs: mean number of
    hole blobs per frame; blob_radius: their mean radius as a fraction of the image width;
    grazing_deg: drop depth where the incidence angle exceeds this (None: keep); max_range: no
    reading beyond this z-depth in metres, as an active depth sensor's range ends (None: unlimited)."""

    noise: float = 0.0
    blobs: float = 0.0
    blob_radius: float = 0.02
    grazing_deg: float | None = None
    max_range: float | None = None

    def apply(self, hits: Hits, rng: np.random.Generator) -> np.ndarray:
        """(H, W) float32 sensor depth in metres from the exact hits, NaN = no reading."""
        depth = hits.depth.copy()
        height, width = depth.shape
        if self.noise > 0:
            depth += rng.normal(0.0, 1.0, depth.shape) * self.noise * np.nan_to_num(depth)
        if self.grazing_deg is not None:
            depth[hits.cos_incidence < np.cos(np.radians(self.grazing_deg))] = np.nan
        if self.max_range is not None:
            depth[hits.depth > self.max_range] = np.nan
        count = rng.poisson(self.blobs) if self.blobs > 0 else 0
        if count:
            i, j = np.mgrid[0:height, 0:width]
            for _ in range(count):
                ci, cj = rng.uniform(0, height), rng.uniform(0, width)
                radius = self.blob_radius * width * rng.uniform(0.5, 1.5)
                depth[(i - ci) ** 2 + (j - cj) ** 2 <= radius ** 2] = np.nan
        return depth.astype(np.float32)
