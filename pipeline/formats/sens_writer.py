"""Writer of ScanNet `.sens` v4 files (JPEG color, zlib uint16 depth), as ScanNet's own tools do.

Used by the synthetic scene generator and by the tests. Imported and re-exported by `sens`.
"""
from __future__ import annotations

import os
import zlib

import numpy as np

from pipeline.atomic import commit, temporary_sibling

from . import sens_layout as L
from .images import encode_jpeg


def _as_4x4(matrix: np.ndarray, name: str) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float32)
    if m.shape == (3, 3):
        out = np.eye(4, dtype=np.float32)
        out[:3, :3] = m
        return out
    if m.shape != (4, 4):
        raise ValueError(f"SensWriter: {name} must be (3, 3) or (4, 4), got {m.shape}")
    return m


def encode_depth(depth_m: np.ndarray, depth_shift: float) -> np.ndarray:
    """(H, W) float metres (NaN/inf/<=0 = hole) -> (H, W) uint16 round(depth * shift), 0 = hole.

    Raises ValueError when a valid depth does not fit in uint16 (> 65535 / shift metres).
    """
    d = np.asarray(depth_m, dtype=np.float64)
    valid = np.isfinite(d) & (d > 0)
    scaled = np.rint(np.where(valid, d, 0.0) * depth_shift)
    if scaled.max(initial=0) > 65535:
        raise ValueError(f"depth {d[valid].max():.3f} m does not fit in uint16 with depth_shift "
                         f"{depth_shift} (max {65535 / depth_shift:.3f} m); clip it or mark it NaN")
    return scaled.astype("<u2")


class SensWriter:
    """Write a `.sens` v4 file frame by frame. Use as a context manager.

    Writes a temporary sibling (`pipeline.atomic.temporary_sibling`) and commits it as `path` only
    on a clean `close()`; when the `with` block raises, the temporary file is deleted. At close the
    frame count in the header is patched and, as ScanNet's own C++ writer does, the IMU trailer is
    appended after the last frame: a u64 IMU frame count, here 0 (no IMU records).

    Args:
        path: output file.
        color_intrinsics, depth_intrinsics: (3, 3) or (4, 4) pixel intrinsics.
        color_size, depth_size: (W, H) pixels.
        depth_shift: stored uint16 = round(depth metres * depth_shift); 1000 = millimetres.
        sensor_name: stored verbatim.
        jpeg_quality: Pillow JPEG quality for `add_frame`.
        zlib_level: zlib compression level of depth (ScanNet's tools use the default, 6).
    """

    def __init__(self, path: str | os.PathLike, *, color_intrinsics: np.ndarray,
                 depth_intrinsics: np.ndarray, color_size: tuple[int, int],
                 depth_size: tuple[int, int], depth_shift: float = 1000.0,
                 sensor_name: str = "StructureSensor", jpeg_quality: int = 90,
                 zlib_level: int = 6) -> None:
        self.path = os.fspath(path)
        self.partial_path = temporary_sibling(self.path)
        self.color_size = (int(color_size[0]), int(color_size[1]))
        self.depth_size = (int(depth_size[0]), int(depth_size[1]))
        self.depth_shift = float(depth_shift)
        self.jpeg_quality = int(jpeg_quality)
        self.zlib_level = int(zlib_level)
        self.num_frames = 0
        eye = np.eye(4, dtype=np.float32)
        mats = np.stack([_as_4x4(color_intrinsics, "color_intrinsics"), eye,
                         _as_4x4(depth_intrinsics, "depth_intrinsics"), eye])
        name = sensor_name.encode("utf-8")
        self._file = open(self.partial_path, "wb")
        self._file.write(L.U32.pack(L.SENS_VERSION) + L.U64.pack(len(name)) + name)
        self._file.write(L.MATRICES.pack(*mats.reshape(-1).tolist()))
        self._count_offset = self._file.tell() + L.NUM_FRAMES_OFFSET_IN_TAIL
        self._file.write(L.HEADER_TAIL.pack(
            L.COLOR_CODE["jpeg"], L.DEPTH_CODE["zlib_ushort"], *self.color_size, *self.depth_size,
            self.depth_shift, 0))

    def add_frame(self, camera_to_world: np.ndarray, color: np.ndarray, depth: np.ndarray, *,
                  timestamp: int | None = None) -> None:
        """Append one frame.

        Args:
            camera_to_world: (4, 4) pose, metres; -inf entries mark an invalid pose.
            color: (H, W, 3) uint8 RGB with (W, H) = color_size; stored as JPEG.
            depth: (H, W) float metres with (W, H) = depth_size; NaN/inf/<=0 = hole. Stored as
                zlib uint16 round(depth * depth_shift); values under 0.5/depth_shift become holes.
            timestamp: used for both color and depth; default frame index x 33333 (30 Hz, us).
        """
        w, h = self.color_size
        if color.shape != (h, w, 3) or color.dtype != np.uint8:
            raise ValueError(f"SensWriter.add_frame: color must be ({h}, {w}, 3) uint8, got "
                             f"{color.shape} {color.dtype}")
        w, h = self.depth_size
        if depth.shape != (h, w):
            raise ValueError(f"SensWriter.add_frame: depth must be ({h}, {w}), got {depth.shape}")
        ts = self.num_frames * 33333 if timestamp is None else int(timestamp)
        self.add_encoded_frame(camera_to_world, encode_jpeg(color, self.jpeg_quality),
                               zlib.compress(encode_depth(depth, self.depth_shift).tobytes(),
                                             self.zlib_level),
                               color_timestamp=ts, depth_timestamp=ts)

    def add_encoded_frame(self, camera_to_world: np.ndarray, color_bytes: bytes,
                          depth_bytes: bytes, *, color_timestamp: int,
                          depth_timestamp: int) -> None:
        """Append a frame whose payloads are already encoded (stored verbatim, not checked)."""
        pose = np.asarray(camera_to_world, dtype=np.float32)
        if pose.shape != (4, 4):
            raise ValueError(f"SensWriter: camera_to_world must be (4, 4), got {pose.shape}")
        if self._file is None:
            raise ValueError(f"SensWriter: {self.path} is already closed")
        self._file.write(L.FRAME_HEAD.pack(*pose.reshape(-1).tolist(), int(color_timestamp),
                                           int(depth_timestamp), len(color_bytes),
                                           len(depth_bytes)))
        self._file.write(color_bytes)
        self._file.write(depth_bytes)
        self.num_frames += 1

    def close(self) -> None:
        """Append the IMU trailer (count 0), patch the frame count, close, and commit the
        temporary file as `path` (idempotent)."""
        if self._file is None:
            return
        self._file.write(L.U64.pack(0))  # IMU frame count: ScanNet's writer always stores it
        self._file.seek(self._count_offset)
        self._file.write(L.U64.pack(self.num_frames))
        self._file.close()
        self._file = None
        commit(self.partial_path, self.path)

    def abort(self) -> None:
        """Close and delete the partial file without producing `path`."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self.partial_path.unlink(missing_ok=True)

    def __enter__(self) -> SensWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
