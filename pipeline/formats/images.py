"""JPEG/PNG encode and decode, shared by the ScanNet and Matterport readers and writers.

Images are numpy arrays in row-major image order (row 0 = top of the picture): color (H, W, 3)
uint8 RGB, 16-bit depth (H, W) uint16 raw sensor units.

JPEG is decoded by libjpeg-turbo through ``simplejpeg`` in strict mode: a payload whose headers are
intact but whose entropy-coded data is garbage makes libjpeg emit *warnings* ("Corrupt JPEG data:
…") and still return an image, which Pillow accepts silently; here every warning is a FormatError
(the prepare job counts the frame as ``corrupt_payload``). Draft decoding picks the libjpeg scale
exactly as Pillow's ``Image.draft`` does (1/1, 1/2, 1/4, 1/8), so the pixels equal Pillow's. PNG and
encoding use Pillow.
"""
from __future__ import annotations

import io
import os

import numpy as np
import simplejpeg
from PIL import Image

from .errors import FormatError

JPEG_SCALES = (1, 2, 4, 8)
"""libjpeg draft reductions :func:`decode_color` uses: an image W×H decodes to ⌈W/s⌉×⌈H/s⌉."""
_MAGIC = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


def encode_jpeg(color: np.ndarray, quality: int = 90) -> bytes:
    """Encode (H, W, 3) uint8 RGB as baseline JPEG bytes (4:2:0, deterministic for a given Pillow)."""
    if color.ndim != 3 or color.shape[2] != 3 or color.dtype != np.uint8:
        raise ValueError(f"encode_jpeg: expected (H, W, 3) uint8 RGB, got {color.shape} {color.dtype}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(color)).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def image_kind(data: bytes) -> str | None:
    """"JPEG" or "PNG" from the payload's signature bytes, None for anything else."""
    return next((kind for magic, kind in _MAGIC.items() if data[:len(magic)] == magic), None)


def draft_size(size: tuple[int, int], draft: tuple[int, int] | None) -> tuple[int, int]:
    """(W, H) a JPEG of ``size`` (W, H) decodes to when asked for at least ``draft`` (W, H): the
    largest reduction s of :data:`JPEG_SCALES` with s ≤ min(W // draft_W, H // draft_H), giving
    (⌈W/s⌉, ⌈H/s⌉) — Pillow's ``Image.draft`` rule; ``size`` itself when draft is None."""
    w, h = size
    if draft is None:
        return w, h
    limit = min(w // max(int(draft[0]), 1), h // max(int(draft[1]), 1))
    s = max(s for s in JPEG_SCALES if s <= max(limit, 1))
    return -(-w // s), -(-h // s)


def image_size(data: bytes, *, path: str | os.PathLike, offset: int | None = None) -> tuple[int, int]:
    """(W, H) from a JPEG or PNG payload's header, without decoding it; FormatError otherwise."""
    try:
        if image_kind(data) == "JPEG":
            h, w, _, _ = simplejpeg.decode_jpeg_header(data)
            return int(w), int(h)
        return Image.open(io.BytesIO(data)).size
    except (OSError, SyntaxError, ValueError) as exc:
        raise _undecodable(data, path, offset, exc) from exc


def _undecodable(data: bytes, path, offset, exc: Exception) -> FormatError:
    return FormatError(path, f"color payload of {len(data)} bytes is not a decodable image "
                       f"({exc}).", offset=offset, field="color",
                       hint="the file is corrupt or truncated; re-download or re-export it.")


def decode_color(
    data: bytes,
    *,
    path: str | os.PathLike,
    offset: int | None = None,
    draft: tuple[int, int] | None = None,
    expected: str | None = None,
) -> np.ndarray:
    """Decode JPEG or PNG bytes to (H, W, 3) uint8 RGB.

    Args:
        data: the encoded image.
        path, offset: where the bytes came from, only for the error message.
        draft: (W, H). For JPEG, let libjpeg decode at a reduced DCT scale (:func:`draft_size`)
            whose size is still >= (W, H) on both axes; far cheaper than decoding in full and then
            resizing. The returned image is then *larger than or equal to* draft, never resized here.
        expected: "JPEG" or "PNG": the codec the container declares; another one is an error.

    Raises:
        FormatError: the bytes are not a decodable image (corrupt or truncated payload, a libjpeg
            warning, another codec than ``expected``, or a decoded size that is not the header's
            size at the draft scale).
    """
    kind = image_kind(data)
    if expected is not None and kind != expected:
        raise FormatError(path, f"color payload of {len(data)} bytes is not a decodable image "
                          f"(expected {expected} data, found {kind or 'unrecognised'} data).",
                          offset=offset, field="color",
                          hint="the file is corrupt; re-download or re-export it.")
    if kind != "JPEG":
        try:
            img = Image.open(io.BytesIO(data))
            img.load()  # forces the decode, so corrupt data fails here
            return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise _undecodable(data, path, offset, exc) from exc
    want = draft_size(image_size(data, path=path, offset=offset), draft)
    try:  # strict: libjpeg warnings ("Corrupt JPEG data: ...") raise instead of passing garbage
        rgb = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=want[0], min_height=want[1],
                                     strict=True)
    except ValueError as exc:
        raise _undecodable(data, path, offset, exc) from exc
    if rgb.shape[:2] != (want[1], want[0]):
        raise FormatError(path, f"JPEG decoded to {rgb.shape[1]}x{rgb.shape[0]}, expected "
                          f"{want[0]}x{want[1]} (its header size at the draft scale).",
                          offset=offset, field="color", hint="the file is corrupt; re-download it.")
    return rgb


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
