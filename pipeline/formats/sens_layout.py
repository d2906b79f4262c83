"""Byte layout of ScanNet `.sens` version 4 files (SPEC §6), shared by the reader and the writer.

All values little endian. Header::

    u32 version (= 4) | u64 n + n bytes sensor name
    4 x (4x4 f32 row-major): color intrinsics, color extrinsics, depth intrinsics, depth extrinsics
    i32 color compression | i32 depth compression
    u32 color width, height | u32 depth width, height | f32 depth shift | u64 frame count

Each frame: 4x4 f32 camera-to-world, u64 color timestamp, u64 depth timestamp, u64 color bytes,
u64 depth bytes, then the color payload and the depth payload.
"""
from __future__ import annotations

import struct

SENS_VERSION = 4

COLOR_COMPRESSION = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
DEPTH_COMPRESSION = {-1: "unknown", 0: "raw_ushort", 1: "zlib_ushort", 2: "occi_ushort"}
COLOR_CODE = {name: code for code, name in COLOR_COMPRESSION.items()}
DEPTH_CODE = {name: code for code, name in DEPTH_COMPRESSION.items()}

U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")
MATRICES = struct.Struct("<64f")  # the four 4x4 header matrices in a row
# compression codes, sizes, depth shift, frame count: everything after the matrices
HEADER_TAIL = struct.Struct("<iiIIIIfQ")
HEADER_TAIL_FIELDS = ("color_compression", "depth_compression", "color_width", "color_height",
                      "depth_width", "depth_height", "depth_shift", "num_frames")
# offset of the frame count inside HEADER_TAIL, used by the writer to patch it at close
NUM_FRAMES_OFFSET_IN_TAIL = HEADER_TAIL.size - 8

FRAME_HEAD = struct.Struct("<16fQQQQ")  # pose, color ts, depth ts, color bytes, depth bytes

# A sensor name longer than this is taken as a corrupt length field rather than allocated.
MAX_SENSOR_NAME = 1 << 16
