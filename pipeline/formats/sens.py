"""ScanNet `.sens` (version 4) reader and writer (SPEC §6; byte layout in `sens_layout`).

The reader opens the file once, parses the header, and walks the frames once reading only the
96-byte frame heads (seeking past the payloads), which gives every frame's pose, timestamps and
payload offsets. Any frame is then read with one positioned read (`os.pread`) and decoded on its
own: memory does not grow with the file size and access is O(1) in the frame index.

Arrays: poses are camera-to-world (OpenCV camera: x right, y down, z forward; metres), (4, 4)
float32; ScanNet marks frames without tracking with -inf entries, which is *not* an error here
(see `SensReader.valid_pose_mask`). Color is (H, W, 3) uint8 RGB, depth (H, W) float32 metres with
NaN where the sensor stored 0.
"""
from __future__ import annotations

import os
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from . import sens_layout as L
from .errors import FormatError
from .images import decode_color, draft_size, image_kind, image_size
from .sens_writer import SensWriter  # noqa: F401  (re-exported: one module per format for users)

__all__ = ["SensHeader", "SensFrame", "SensReader", "SensWriter"]


@dataclass(frozen=True)
class SensHeader:
    """The `.sens` header. Intrinsics are 4x4 float32 pixel matrices (fx, fy, cx, cy in the usual
    places); extrinsics (usually identity) are 4x4 float32. Sizes are (W, H) pixels; depth in
    metres = stored uint16 / depth_shift."""

    version: int
    sensor_name: str
    color_intrinsics: np.ndarray
    color_extrinsics: np.ndarray
    depth_intrinsics: np.ndarray
    depth_extrinsics: np.ndarray
    color_compression: str
    depth_compression: str
    color_size: tuple[int, int]
    depth_size: tuple[int, int]
    depth_shift: float
    num_frames: int


@dataclass(frozen=True)
class SensFrame:
    """One decoded frame. `color`/`depth` are None when not requested."""

    index: int
    camera_to_world: np.ndarray  # (4, 4) float32, may contain -inf (invalid pose)
    color_timestamp: int
    depth_timestamp: int
    color: np.ndarray | None  # (H, W, 3) uint8 RGB
    depth: np.ndarray | None  # (H, W) float32 metres, NaN = no reading

    @property
    def pose_valid(self) -> bool:
        """True when every pose entry is finite (ScanNet writes -inf for lost tracking)."""
        return bool(np.isfinite(self.camera_to_world).all())


def _read_exact(f, n: int, path, offset: int, what: str, hint: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise FormatError(path, f"truncated: expected {n} bytes of {what}, found {len(data)} before "
                          "the end of the file.", offset=offset, field=what, hint=hint)
    return data


DECODABLE_DEPTH = ("raw_ushort", "zlib_ushort")
"""Depth codecs the reader decodes; a header naming another one (OCCI) is refused when opened."""
_COLOR_KIND = {"jpeg": "JPEG", "png": "PNG", "raw": None}  # header codec -> payload signature

_HINT_TRUNCATED = ("the file is incomplete (interrupted download or copy); download it again and "
                   "compare its size with the source.")


def _parse_header(f, path) -> tuple[SensHeader, int]:
    """Parse the header from an open binary file; returns it and the offset of frame 0."""
    (version,) = L.U32.unpack(_read_exact(f, 4, path, 0, "version", _HINT_TRUNCATED))
    if version != L.SENS_VERSION:
        raise FormatError(path, f"expected .sens version {L.SENS_VERSION}, found {version}.",
                          offset=0, field="version",
                          hint="only ScanNet v2 .sens files (version 4) are supported; check that "
                               "this is a .sens file and not another format.")
    (name_len,) = L.U64.unpack(_read_exact(f, 8, path, 4, "sensor_name length", _HINT_TRUNCATED))
    if name_len > L.MAX_SENSOR_NAME:
        raise FormatError(path, f"sensor name length {name_len} is implausible (max "
                          f"{L.MAX_SENSOR_NAME}).", offset=4, field="sensor_name length",
                          hint="the header is corrupt; download the file again.")
    name = _read_exact(f, name_len, path, 12, "sensor_name", _HINT_TRUNCATED)
    pos = 12 + name_len
    mats = np.array(L.MATRICES.unpack(_read_exact(f, L.MATRICES.size, path, pos, "matrices",
                                                  _HINT_TRUNCATED)), np.float32).reshape(4, 4, 4)
    pos += L.MATRICES.size
    tail = L.HEADER_TAIL.unpack(_read_exact(f, L.HEADER_TAIL.size, path, pos, "header tail",
                                            _HINT_TRUNCATED))
    values = dict(zip(L.HEADER_TAIL_FIELDS, tail))
    for field, table, at in (("color_compression", L.COLOR_COMPRESSION, pos),
                             ("depth_compression", L.DEPTH_COMPRESSION, pos + 4)):
        if values[field] not in table or values[field] == -1:
            known = ", ".join(f"{k} {v}" for k, v in table.items() if k >= 0)
            raise FormatError(path, f"unknown compression code {values[field]} (known: {known}).",
                              offset=at, field=field, hint="the header is corrupt or the file was "
                              "written by an unsupported tool; re-export it.")
    depth_codec = L.DEPTH_COMPRESSION[values["depth_compression"]]
    if depth_codec not in DECODABLE_DEPTH:  # refused once here, not as "every frame corrupt"
        raise FormatError(path, f"depth compression {depth_codec!r} is not supported (this reader "
                          f"decodes {', '.join(DECODABLE_DEPTH)}).", offset=pos + 4,
                          field="depth_compression",
                          hint="convert the file with ScanNet's tools to zlib depth.")
    header = SensHeader(
        version=version, sensor_name=name.decode("utf-8", errors="replace"),
        color_intrinsics=mats[0], color_extrinsics=mats[1],
        depth_intrinsics=mats[2], depth_extrinsics=mats[3],
        color_compression=L.COLOR_COMPRESSION[values["color_compression"]],
        depth_compression=L.DEPTH_COMPRESSION[values["depth_compression"]],
        color_size=(values["color_width"], values["color_height"]),
        depth_size=(values["depth_width"], values["depth_height"]),
        depth_shift=float(values["depth_shift"]), num_frames=values["num_frames"])
    if not header.depth_shift > 0:
        raise FormatError(path, f"depth shift must be > 0, found {header.depth_shift}.",
                          offset=pos + 24, field="depth_shift", hint="the header is corrupt.")
    return header, pos + L.HEADER_TAIL.size


class SensReader:
    """Random-access reader of a ScanNet `.sens` v4 file. Use as a context manager.

    Attributes:
        path: the file.
        header: `SensHeader`.
        poses: (N, 4, 4) float32 camera-to-world, read during indexing.
        valid_pose_mask: (N,) bool, True where the pose is finite.
        color_timestamps, depth_timestamps: (N,) uint64 as stored.
        color_offsets, color_nbytes, depth_nbytes: (N,) int64 payload locations and sizes.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FormatError(self.path, "expected a ScanNet .sens file, found nothing at this path.",
                              hint="check the dataset root and the scene id (see docs/formats.md).")
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._lock = threading.Lock()  # only used where os.pread is missing (Windows)
        try:
            with open(self.path, "rb", buffering=1 << 16) as f:
                self.header, first = _parse_header(f, self.path)
                self._index(f, first)
            self._check_codecs()
        except BaseException:
            os.close(self._fd)
            raise

    def _index(self, f, offset: int) -> None:
        """Read every frame head once, seeking past the payloads."""
        n = self.header.num_frames
        file_size = os.fstat(f.fileno()).st_size
        if n > (file_size - offset) // L.FRAME_HEAD.size:
            raise FormatError(self.path, f"header promises {n} frames but only "
                              f"{file_size - offset} bytes follow the header.", offset=offset,
                              field="num_frames", hint=_HINT_TRUNCATED)
        poses = np.empty((n, 16), np.float32)
        meta = np.empty((n, 4), np.uint64)
        offsets = np.empty(n, np.int64)
        for i in range(n):
            f.seek(offset)
            head = _read_exact(f, L.FRAME_HEAD.size, self.path, offset, f"frame {i} head",
                               _HINT_TRUNCATED)
            values = L.FRAME_HEAD.unpack(head)
            poses[i] = values[:16]
            meta[i] = values[16:]
            payload = offset + L.FRAME_HEAD.size
            end = payload + values[18] + values[19]
            if end > file_size:
                raise FormatError(self.path, f"truncated frame {i}: its color ({values[18]} B) and "
                                  f"depth ({values[19]} B) payloads end at byte {end}, past the "
                                  f"end of the file ({file_size} B).", offset=offset,
                                  field=f"frame {i}", hint=_HINT_TRUNCATED)
            offsets[i] = payload
            offset = end
        self.poses = poses.reshape(n, 4, 4)
        self.valid_pose_mask = np.isfinite(self.poses).all(axis=(1, 2))
        self.color_timestamps, self.depth_timestamps = meta[:, 0].copy(), meta[:, 1].copy()
        self.color_nbytes = meta[:, 2].astype(np.int64)
        self.depth_nbytes = meta[:, 3].astype(np.int64)
        self.color_offsets = offsets

    def _check_codecs(self) -> None:
        """Refuse, once, a file whose payloads are not what its header says.

        The first frame with a colour payload must be of the header's colour codec at the header's
        size, and the first depth payload must not be positively another codec (zlib vs raw).
        Payloads that are merely damaged are left to the per-frame decode (``corrupt_payload``).
        """
        h = self.header
        for i in np.flatnonzero(self.color_nbytes > 0)[:1]:
            data = self._pread(int(self.color_nbytes[i]), int(self.color_offsets[i]))
            kind, want = image_kind(data), _COLOR_KIND[h.color_compression]
            if kind is not None and kind != want:
                raise FormatError(self.path, f"the header says colour compression "
                                  f"{h.color_compression!r}, but frame {i}'s payload is {kind} data.",
                                  field="color_compression", hint="the header is wrong or the file "
                                  "was written by an unsupported tool; re-export it.")
            if kind is not None and image_size(data, path=self.path) != h.color_size:
                found = "x".join(map(str, image_size(data, path=self.path)))
                raise FormatError(self.path, f"the header says colour frames are "
                                  f"{h.color_size[0]}x{h.color_size[1]}, but frame {i}'s {kind} is "
                                  f"{found}.", field="color_width/height", hint="the header is "
                                  "wrong; re-export the file (intrinsics would not fit the images).")
        for i in np.flatnonzero(self.depth_nbytes > 0)[:1]:
            data = self._pread(int(self.depth_nbytes[i]), int(self.color_offsets[i] + self.color_nbytes[i]))
            raw_size = h.depth_size[0] * h.depth_size[1] * 2
            zlib_like = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            if h.depth_compression == "zlib_ushort" and len(data) == raw_size and not zlib_like:
                found = "raw uint16 data"
            elif h.depth_compression == "raw_ushort" and len(data) != raw_size and zlib_like:
                found = "zlib data"
            else:
                continue
            raise FormatError(self.path, f"the header says depth compression "
                              f"{h.depth_compression!r}, but frame {i}'s payload is {found}.",
                              field="depth_compression", hint="the header is wrong or the file was "
                              "written by an unsupported tool; re-export it.")

    # -- life cycle -------------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        """Pickle the index, not the descriptor, so a reader can be shipped to dask/multiprocessing
        workers without re-indexing; the worker reopens the file."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_fd", "_lock")}
        state["_size"] = os.path.getsize(self.path)
        return state

    def __setstate__(self, state: dict) -> None:
        size = state.pop("_size")
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        if os.fstat(self._fd).st_size != size:
            os.close(self._fd)
            raise FormatError(self.path, f"file size changed from {size} to "
                              f"{os.path.getsize(self.path)} bytes since it was indexed.",
                              hint="open a new SensReader on the current file.")

    def close(self) -> None:
        """Close the file descriptor (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> SensReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self.header.num_frames

    # -- raw access -------------------------------------------------------------------------------
    def _check_index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{self.path}: frame {i} out of range, the file has {n} frames")
        return int(i) % n

    def _pread(self, n: int, offset: int) -> bytes:
        if self._fd < 0:
            raise ValueError(f"{self.path}: reader is closed")
        if hasattr(os, "pread"):
            data = os.pread(self._fd, n, offset)
        else:
            with self._lock:
                os.lseek(self._fd, offset, os.SEEK_SET)
                data = os.read(self._fd, n)
        if len(data) != n:
            raise FormatError(self.path, f"expected {n} bytes, read {len(data)}: the file shrank "
                              "after it was indexed.", offset=offset, hint="do not modify the file "
                              "while it is being read; open it again.")
        return data

    def read_raw_payloads(self, i: int) -> tuple[bytes, bytes]:
        """The exact stored (color, depth) payload bytes of frame i."""
        i = self._check_index(i)
        nc, nd = int(self.color_nbytes[i]), int(self.depth_nbytes[i])
        data = self._pread(nc + nd, int(self.color_offsets[i]))
        return data[:nc], data[nc:]

    # -- decoding ---------------------------------------------------------------------------------
    def _decode_color(self, i: int, data: bytes, draft) -> np.ndarray:
        w, h = self.header.color_size
        offset = int(self.color_offsets[i])
        kind = _COLOR_KIND[self.header.color_compression]
        if kind is None:
            if len(data) != w * h * 3:
                raise FormatError(self.path, f"raw color of frame {i}: expected {w * h * 3} bytes "
                                  f"({w}x{h}x3), found {len(data)}.", offset=offset,
                                  field="color", hint="the file is corrupt; re-export it.")
            return np.frombuffer(data, np.uint8).reshape(h, w, 3).copy()
        draft = draft if kind == "JPEG" else None
        rgb = decode_color(data, path=self.path, offset=offset, draft=draft, expected=kind)
        want = draft_size((w, h), draft)
        if rgb.shape[:2] != (want[1], want[0]):  # never rescale intrinsics to a wrong-sized image
            raise FormatError(self.path, f"color of frame {i} decoded to {rgb.shape[1]}x"
                              f"{rgb.shape[0]}, the header says {w}x{h} (expected {want[0]}x"
                              f"{want[1]} at this draft scale).", offset=offset, field="color",
                              hint="the frame does not belong to this file; re-export it.")
        return rgb

    def _decode_depth_raw(self, i: int, data: bytes) -> np.ndarray:
        w, h = self.header.depth_size
        offset = int(self.color_offsets[i] + self.color_nbytes[i])
        kind = self.header.depth_compression
        if kind == "zlib_ushort":  # else raw_ushort: the header admits no other (DECODABLE_DEPTH)
            try:
                data = zlib.decompress(data)
            except zlib.error as exc:
                raise FormatError(self.path, f"depth payload of frame {i} ({len(data)} bytes) is "
                                  f"not valid zlib data ({exc}).", offset=offset, field="depth",
                                  hint="the file is corrupt; download it again.") from exc
        if len(data) != w * h * 2:
            raise FormatError(self.path, f"depth of frame {i}: expected {w * h * 2} bytes "
                              f"({w}x{h} uint16) after decompression, found {len(data)}.",
                              offset=offset, field="depth",
                              hint="the header's depth size does not match the frames; the file "
                                   "is corrupt or was written with the wrong size.")
        return np.frombuffer(data, "<u2").reshape(h, w)

    def _to_metres(self, raw: np.ndarray) -> np.ndarray:
        depth = raw.astype(np.float32)
        depth /= np.float32(self.header.depth_shift)
        depth[raw == 0] = np.nan
        return depth

    def read_frame(self, i: int, *, color: bool = True, depth: bool = True,
                   color_draft: tuple[int, int] | None = None) -> SensFrame:
        """Read and decode frame i (negative indices count from the end).

        color_draft=(W, H): decode the JPEG at the smallest libjpeg scale whose size is >= (W, H);
        the returned color is then smaller than `header.color_size` (scale it intrinsics by
        color.shape / color_size). Ignored for raw/PNG color.
        """
        i = self._check_index(i)
        nc = int(self.color_nbytes[i])
        if color and depth:
            data = self._pread(nc + int(self.depth_nbytes[i]), int(self.color_offsets[i]))
            cdata, ddata = data[:nc], data[nc:]
        else:
            cdata = self._pread(nc, int(self.color_offsets[i])) if color else None
            ddata = (self._pread(int(self.depth_nbytes[i]), int(self.color_offsets[i]) + nc)
                     if depth else None)
        return SensFrame(
            index=i, camera_to_world=self.poses[i].copy(),
            color_timestamp=int(self.color_timestamps[i]),
            depth_timestamp=int(self.depth_timestamps[i]),
            color=self._decode_color(i, cdata, color_draft) if color else None,
            depth=self._to_metres(self._decode_depth_raw(i, ddata)) if depth else None)

    def read_color(self, i: int, *, draft: tuple[int, int] | None = None) -> np.ndarray:
        """(H, W, 3) uint8 RGB of frame i (see `read_frame` for `draft`)."""
        return self.read_frame(i, depth=False, color_draft=draft).color

    def read_depth(self, i: int) -> np.ndarray:
        """(H, W) float32 metres of frame i, NaN where the stored value is 0."""
        return self.read_frame(i, color=False).depth

    def read_depth_raw(self, i: int) -> np.ndarray:
        """(H, W) uint16 depth of frame i exactly as stored (units of 1/depth_shift metres)."""
        i = self._check_index(i)
        offset = int(self.color_offsets[i] + self.color_nbytes[i])
        return self._decode_depth_raw(i, self._pread(int(self.depth_nbytes[i]), offset)).copy()

    def iter_frames(self, indices: Iterable[int] | None = None, *, progress: bool = True,
                    **read_kwargs) -> Iterator[SensFrame]:
        """Yield `read_frame(i, **read_kwargs)` for each index (all frames by default)."""
        indices = range(len(self)) if indices is None else list(indices)
        for i in tqdm(indices, desc=os.path.basename(self.path), unit="frame",
                      disable=not progress):
            yield self.read_frame(i, **read_kwargs)
