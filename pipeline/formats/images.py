"""JPEG/PNG encode and decode with Pillow, shared by the ScanNet and Matterport readers and writers.

Images are numpy arrays in row-major image order (row 0 = top of the picture): color (H, W, 3)
uint8 RGB, 16-bit depth (H, W) uint16 raw sensor units.
"""
from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from .errors import FormatError


def encode_jpeg(color: np.ndarray, quality: int = 90) -> bytes:
    """Encode (H, W, 3) uint8 RGB as baseline JPEG bytes (4:2:0, deterministic for a given Pillow)."""
    if color.ndim != 3 or color.shape[2] != 3 or color.dtype != np.uint8:
        raise ValueError(f"encode_jpeg: expected (H, W, 3) uint8 RGB, got {color.shape} {color.dtype}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(color)).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def decode_color(
    data: bytes,
    *,
    path: str | os.PathLike,
    offset: int | None = None,
    draft: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode JPEG or PNG bytes to (H, W, 3) uint8 RGB.

    Args:
        data: the encoded image.
        path, offset: where the bytes came from, only for the error message.
        draft: (W, H). For JPEG, let libjpeg decode at the smallest DCT scale (1/1, 1/2, 1/4, 1/8)
            whose size is still >= (W, H) on both axes; far cheaper than decoding in full and then
            resizing. The returned image is then *larger than or equal to* draft, never resized here.

    Raises:
        FormatError: the bytes are not a decodable image (corrupt or truncated payload).
    """
    try:
        img = Image.open(io.BytesIO(data))
        if draft is not None and img.format == "JPEG":
            img.draft("RGB", (int(draft[0]), int(draft[1])))
        img.load()  # forces the decode, so corrupt data fails here
        if img.mode != "RGB":  # convert() copies even when nothing changes: skip it for RGB
            img = img.convert("RGB")
        return np.asarray(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise FormatError(
            path,
            f"color payload of {len(data)} bytes is not a decodable image ({exc}).",
            offset=offset,
            field="color",
            hint="the file is corrupt or truncated; re-download or re-export it.",
        ) from exc


def encode_png16(image: np.ndarray) -> bytes:
    """Encode (H, W) uint16 as a 16-bit greyscale PNG."""
    if image.ndim != 2 or image.dtype != np.uint16:
        raise ValueError(f"encode_png16: expected (H, W) uint16, got {image.shape} {image.dtype}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype="<u2")).save(buf, format="PNG")
    return buf.getvalue()


def decode_png16(data: bytes, *, path: str | os.PathLike) -> np.ndarray:
    """Decode a 16-bit greyscale PNG to (H, W) uint16; FormatError if it is not one."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise FormatError(path, f"not a decodable PNG ({exc}).",
                          hint="the file is corrupt or truncated; re-download it.") from exc
    if img.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise FormatError(path, f"expected a 16-bit greyscale PNG, found mode {img.mode!r}.",
                          field="mode", hint="depth images must be 16-bit single-channel PNGs.")
    arr = np.asarray(img)
    if arr.dtype != np.uint16:  # mode "I" (int32) holding 16-bit values
        arr = arr.astype(np.uint16)
    return arr
