"""Speed and memory of reading a ScanNet `.sens` file: official-style reader vs `SensReader`.

Writes a `.sens` of N frames (1296x968 textured JPEG color, ~270 KB each, + 640x480 zlib depth)
with `SensWriter`, then decodes every frame with three readers, each in a fresh subprocess so that
its peak-RSS increase is its own:

  (a) official  the way ScanNet's SensorData.py works: every frame's payloads pulled into memory
                with `struct.unpack('c' * n, ...)` and joined, then PIL / zlib + frombuffer decode
  (b) full      SensReader, full-resolution color + depth in metres
  (c) draft     SensReader with color_draft=(256, 192) (what the virtual camera needs)

Timings include opening/indexing (a: loading). Also prints O(1) random access: time to read frame
0 and frame N-1 after indexing. The reader (a) is :func:`official_style_read`;
``tests/test_bench_references.py`` checks that it decodes the same poses, colours and depths as
``SensReader``. Usage::

    python benchmarks/bench_sens_reader.py --frames 100
"""
from __future__ import annotations

import argparse
import io
import json
import os
import struct
import tempfile
import time
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np

if __package__:  # python -m benchmarks.bench_sens_reader, or imported by a test
    from . import common
else:  # python benchmarks/bench_sens_reader.py: this folder is sys.path[0]
    import common

COLOR_SIZE, DEPTH_SIZE = (1296, 968), (640, 480)
READERS = ("official", "full", "draft")


# -- synthetic file ---------------------------------------------------------------------------------
def _texture(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Multi-octave bicubic value noise: (h, w, 3) uint8, JPEG size close to real indoor frames."""
    from PIL import Image
    tex = np.zeros((h, w, 3), np.float32)
    for step, amp in ((64, 60.0), (16, 25.0), (4, 8.0), (1, 2.5)):
        small = rng.normal(size=(h // step + 2, w // step + 2, 3)).astype(np.float32)
        if step > 1:
            small = np.stack([np.asarray(Image.fromarray(small[..., c]).resize(
                (w + step, h + step), Image.BICUBIC))[:h, :w] for c in range(3)], -1)
        tex += amp * small[:h, :w]
    return np.clip(128 + tex, 0, 255).astype(np.uint8)


def write_file(path: Path, frames: int, seed: int, color_size: tuple[int, int] = COLOR_SIZE,
               depth_size: tuple[int, int] = DEPTH_SIZE, progress: bool = True) -> None:
    """Write a ``.sens`` of ``frames`` frames with ``SensWriter``: textured JPEG colour of
    ``color_size`` (w, h) panning over one texture, a depth ramp of ``depth_size`` in metres (1 mm
    steps, 5 % holes), poses moving 1 cm per frame along x, every 25th (from frame 7) invalid (-inf)."""
    from tqdm import tqdm

    from pipeline.formats.sens import SensWriter
    rng = np.random.default_rng(seed)
    (cw, ch), (dw, dh) = color_size, depth_size
    big = _texture(rng, cw + 256, ch + 192)  # frames are shifted crops: a camera panning
    yy, xx = np.mgrid[0:dh, 0:dw].astype(np.float32)
    k = np.array([[1170.0, 0, 648], [0, 1170.0, 484], [0, 0, 1]])
    with SensWriter(path, color_intrinsics=k, depth_intrinsics=np.diag([577.0, 577, 1]) +
                    np.array([[0, 0, 320], [0, 0, 240], [0, 0, 0]]), color_size=color_size,
                    depth_size=depth_size) as w:
        for i in tqdm(range(frames), desc="writing .sens", unit="frame", disable=not progress):
            ox, oy = rng.integers(0, 256), rng.integers(0, 192)
            color = big[oy:oy + ch, ox:ox + cw]
            depth = 1.5 + 0.002 * xx + 0.001 * yy + np.round(rng.normal(0, 0.0015, (dh, dw)), 3)
            depth[rng.random((dh, dw)) < 0.05] = np.nan
            pose = np.eye(4)
            pose[:3, 3] = [0.01 * i, 0, 0]
            if i % 25 == 7:
                pose[:] = -np.inf
            w.add_frame(pose, color, depth)


# -- (a) the official SensorData.py way -------------------------------------------------------------
def official_style_read(path: str | os.PathLike) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Read a ``.sens`` the way ScanNet's SensorData.py does: yields (pose, colour, depth) per frame.

    On the first ``next()`` every frame's payloads are pulled into memory like ``SensorData.load``
    (``struct.unpack('c' * n, ...)`` per payload, joined); each frame is then decoded like its
    exporters: PIL for the JPEG colour, ``zlib`` + ``frombuffer`` for the depth.

    Yields:
        pose: (4, 4) float32 camera-to-world as stored (-inf rows where the pose is invalid).
        color: (H, W, 3) uint8 RGB at the stored colour size.
        depth: (h, w) float32 metres (stored uint16 / depth shift), 0 where there is no depth
            (``SensReader`` gives NaN there instead).
    """
    from PIL import Image
    with open(path, "rb") as f:
        struct.unpack("I", f.read(4))
        strlen = struct.unpack("Q", f.read(8))[0]
        b"".join(struct.unpack("c" * strlen, f.read(strlen)))
        for _ in range(4):
            np.asarray(struct.unpack("f" * 16, f.read(16 * 4)), dtype=np.float32).reshape(4, 4)
        struct.unpack("i", f.read(4)), struct.unpack("i", f.read(4))
        struct.unpack("I", f.read(4)), struct.unpack("I", f.read(4))
        dw, dh = struct.unpack("I", f.read(4))[0], struct.unpack("I", f.read(4))[0]
        shift = struct.unpack("f", f.read(4))[0]
        n = struct.unpack("Q", f.read(8))[0]
        frames = []
        for _ in range(n):
            pose = np.asarray(struct.unpack("f" * 16, f.read(16 * 4)), dtype=np.float32)
            struct.unpack("Q", f.read(8)), struct.unpack("Q", f.read(8))
            cs, ds = struct.unpack("Q", f.read(8))[0], struct.unpack("Q", f.read(8))[0]
            color = b"".join(struct.unpack("c" * cs, f.read(cs)))
            depth = b"".join(struct.unpack("c" * ds, f.read(ds)))
            frames.append((pose.reshape(4, 4), color, depth))
    for pose, color, depth in frames:
        d = np.frombuffer(zlib.decompress(depth), dtype=np.uint16).reshape(dh, dw)
        yield pose, np.asarray(Image.open(io.BytesIO(color))), d.astype(np.float32) / shift


def _worker(kind: str, path: str) -> dict:
    """Runs in a fresh subprocess; returns timings and the peak-RSS increase in MB."""
    from pipeline.formats.sens import SensReader
    base = common.reset_peak_rss()
    t0 = time.perf_counter()
    out: dict = {"kind": kind}
    if kind == "official":
        out["frames"] = sum(1 for _ in official_style_read(path))  # each decoded frame dropped at once
    else:
        draft = (256, 192) if kind == "draft" else None
        with SensReader(path) as r:
            out["index_s"] = time.perf_counter() - t0
            for fr in r.iter_frames(progress=False, color_draft=draft):
                pass
            out["frames"] = len(r)
            out["color_shape"] = list(fr.color.shape)
            t_all = time.perf_counter() - t0
            for label, i in (("frame0_ms", 0), ("last_ms", len(r) - 1)):
                ts = []
                for _ in range(5):
                    t = time.perf_counter()
                    r.read_frame(i, color_draft=draft)
                    ts.append(time.perf_counter() - t)
                out[label] = 1000 * min(ts)
            out["seconds"] = t_all
    out.setdefault("seconds", time.perf_counter() - t0)
    out["peak_rss_mb"] = (common.peak_rss_kib() - base) / 1024
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=100, help="frames in the generated file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--path", type=Path, default=None,
                    help="reuse/keep the .sens here (default: a temporary file, deleted)")
    ap.add_argument("--worker", choices=READERS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, str(args.path))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.path or Path(tmp) / "bench.sens"
        if not path.exists():
            write_file(path, args.frames, args.seed)
        size_mb = path.stat().st_size / 2**20
        from pipeline.formats.sens import SensReader
        with SensReader(path) as r:
            color_kb, depth_kb = r.color_nbytes.mean() / 1024, r.depth_nbytes.mean() / 1024
        results = {kind: common.run_worker(__file__, ["--worker", kind, "--path", str(path)],
                                           env={**os.environ, "OMP_NUM_THREADS": "1"})
                   for kind in READERS}
    n = results["official"]["frames"]
    print(f"\n.sens file: {n} frames, {size_mb:.1f} MB; color {COLOR_SIZE[0]}x{COLOR_SIZE[1]} "
          f"JPEG {color_kb:.0f} KB/frame, depth {DEPTH_SIZE[0]}x{DEPTH_SIZE[1]} zlib "
          f"{depth_kb:.0f} KB/frame")
    print(f"{'reader':<10}{'frames/s':>10}{'vs (a)':>8}{'peak RSS +MB':>14}"
          f"{'index ms':>10}{'frame 0 ms':>12}{'frame N-1 ms':>14}  color shape")
    ref = n / results["official"]["seconds"]
    for kind in READERS:
        r = results[kind]
        fps = r["frames"] / r["seconds"]
        extra = (f"{1000 * r['index_s']:>10.1f}{r['frame0_ms']:>12.2f}{r['last_ms']:>14.2f}  "
                 f"{tuple(r['color_shape'])}" if "index_s" in r else f"{'-':>10}{'-':>12}{'-':>14}")
        print(f"{kind:<10}{fps:>10.1f}{fps / ref:>7.2f}x{r['peak_rss_mb']:>14.1f}{extra}")


if __name__ == "__main__":
    main()
