"""Speed and memory of reading a ScanNet `.sens` file: official-style reader vs `SensReader`.

Writes a `.sens` of N frames (1296x968 textured JPEG color, ~270 KB each, + 640x480 zlib depth)
with `SensWriter`, then decodes every frame with three readers, each in a fresh subprocess so that
its peak-RSS increase is its own:

  (a) official  the way ScanNet's SensorData.py works: every frame's payloads pulled into memory
                with `struct.unpack('c' * n, ...)` and joined, then PIL / zlib + frombuffer decode
  (b) full      SensReader, full-resolution color + depth in metres
  (c) draft     SensReader with color_draft=(256, 192) (what the virtual camera needs)

Timings include opening/indexing (a: loading). Also prints O(1) random access: time to read frame
0 and frame N-1 after indexing. Usage::

    python benchmarks/bench_sens_reader.py --frames 100
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

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


def write_file(path: Path, frames: int, seed: int) -> None:
    from tqdm import tqdm

    from pipeline.formats.sens import SensWriter
    rng = np.random.default_rng(seed)
    (cw, ch), (dw, dh) = COLOR_SIZE, DEPTH_SIZE
    big = _texture(rng, cw + 256, ch + 192)  # frames are shifted crops: a camera panning
    yy, xx = np.mgrid[0:dh, 0:dw].astype(np.float32)
    k = np.array([[1170.0, 0, 648], [0, 1170.0, 484], [0, 0, 1]])
    with SensWriter(path, color_intrinsics=k, depth_intrinsics=np.diag([577.0, 577, 1]) +
                    np.array([[0, 0, 320], [0, 0, 240], [0, 0, 0]]), color_size=COLOR_SIZE,
                    depth_size=DEPTH_SIZE) as w:
        for i in tqdm(range(frames), desc="writing .sens", unit="frame"):
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
def official_style(path: str) -> int:
    """Load all frames like SensorData.load (byte-wise unpack), then decode each like its exporters."""
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
        np.asarray(Image.open(io.BytesIO(color)))
        d = np.frombuffer(zlib.decompress(depth), dtype=np.uint16).reshape(dh, dw)
        d.astype(np.float32) / shift
    return len(frames)


def _worker(kind: str, path: str) -> dict:
    """Runs in a fresh subprocess; returns timings and the peak-RSS increase in MB."""
    from pipeline.formats.sens import SensReader
    base = _reset_peak_rss()
    t0 = time.perf_counter()
    out: dict = {"kind": kind}
    if kind == "official":
        out["frames"] = official_style(path)
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
    out["peak_rss_mb"] = (_peak_rss_kib() - base) / 1024
    return out


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (Linux: write 5 to clear_refs) so that import-time peaks
    do not hide the reader's own; returns the current RSS in KiB as the baseline."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmRSS")
    except OSError:  # not Linux: fall back to the process-lifetime peak
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_rss_kib() -> int:
    hwm = _status_kib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


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
        results = {}
        for kind in READERS:  # this script by path: works however it was started
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()),
                                   "--worker", kind, "--path", str(path)],
                                  capture_output=True, text=True, check=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
            results[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
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
