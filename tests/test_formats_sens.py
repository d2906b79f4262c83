"""ScanNet .sens reader/writer: round trips, a hand-built file as independent reference, bad input."""
from __future__ import annotations

import io
import pickle
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from pipeline.formats import sens as sens_mod
from pipeline.formats.errors import FormatError
from pipeline.formats.images import encode_jpeg
from pipeline.formats.sens import SensReader, SensWriter

CW, CH, DW, DH = 64, 48, 32, 24
K = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])


def smooth_color(rng, h=CH, w=CW) -> np.ndarray:
    """A smooth image with mild texture (JPEG-friendly, so PSNR is meaningful)."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([np.sin(6 * x + c) + np.cos(5 * y - c) for c in range(3)], -1)
    return np.clip(127 + 50 * base + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)


def mm_depth(rng) -> np.ndarray:
    """Depth on the millimetre grid with holes, so the uint16 round trip is exact."""
    d = rng.integers(300, 6000, (DH, DW)) / 1000.0
    d[rng.random((DH, DW)) < 0.1] = np.nan
    return d


def write_scene(path, n=6, invalid=(2,), seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    with SensWriter(path, color_intrinsics=K, depth_intrinsics=K / 2, color_size=(CW, CH),
                    depth_size=(DW, DH)) as w:
        for i in range(n):
            pose = np.eye(4)
            pose[:3, 3] = rng.normal(size=3)
            if i in invalid:
                pose[:] = -np.inf
            color, depth = smooth_color(rng), mm_depth(rng)
            w.add_frame(pose, color, depth, timestamp=1000 + 7 * i)
            frames.append((pose.astype(np.float32), color, depth))
    return frames


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_round_trip(tmp_path):
    path = tmp_path / "s.sens"
    frames = write_scene(path)
    assert not (tmp_path / "s.sens.partial").exists()
    with SensReader(path) as r:
        assert len(r) == 6 and r.header.version == 4
        assert r.header.color_compression == "jpeg" and r.header.depth_compression == "zlib_ushort"
        assert r.header.color_size == (CW, CH) and r.header.depth_size == (DW, DH)
        np.testing.assert_array_equal(r.header.color_intrinsics[:3, :3], K.astype(np.float32))
        np.testing.assert_array_equal(r.valid_pose_mask, [True, True, False, True, True, True])
        for i, (pose, color, depth) in enumerate(frames):
            f = r.read_frame(i)
            np.testing.assert_array_equal(f.camera_to_world, pose)  # bit for bit, -inf included
            assert f.pose_valid == (i != 2)
            assert f.color_timestamp == f.depth_timestamp == 1000 + 7 * i
            mm = np.where(np.isnan(depth), 0, np.rint(depth * 1000)).astype(np.uint16)
            np.testing.assert_array_equal(r.read_depth_raw(i), mm)
            expected = np.where(mm == 0, np.nan, mm.astype(np.float32) / np.float32(1000))
            np.testing.assert_array_equal(f.depth, expected)
            cbytes, dbytes = r.read_raw_payloads(i)
            assert cbytes == encode_jpeg(color, 90)
            assert zlib.decompress(dbytes) == mm.tobytes()
            assert f.color.shape == (CH, CW, 3) and psnr(f.color, color) > 30
        assert r.read_frame(-1).index == 5


def _hand_built(version=4, ccomp=2, dcomp=1, frames=None, n_frames=None, name=b"Kinect"):
    """An independent .sens encoder written from SPEC §6 with plain struct calls."""
    out = struct.pack("<I", version) + struct.pack("<Q", len(name)) + name
    mats = [np.diag([5.0, 6, 1, 1]), np.eye(4), np.diag([2.0, 3, 1, 1]), np.eye(4)]
    out += b"".join(struct.pack("<16f", *m.reshape(-1)) for m in mats)
    frames = frames or []
    out += struct.pack("<iiIIIIfQ", ccomp, dcomp, 4, 2, 3, 2, 1000.0,
                       len(frames) if n_frames is None else n_frames)
    for pose, cts, dts, cb, db in frames:
        out += struct.pack("<16f", *pose.reshape(-1)) + struct.pack("<QQQQ", cts, dts, len(cb),
                                                                     len(db)) + cb + db
    return out


def test_hand_built_raw_file(tmp_path):
    rgb = np.arange(4 * 2 * 3, dtype=np.uint8).reshape(2, 4, 3)
    dep = np.array([[0, 1500, 2], [65535, 7, 0]], np.uint16)
    pose = np.arange(16, dtype=np.float32).reshape(4, 4)
    path = tmp_path / "raw.sens"
    path.write_bytes(_hand_built(ccomp=0, dcomp=0, frames=[
        (pose, 11, 12, rgb.tobytes(), dep.astype("<u2").tobytes())]))
    with SensReader(path) as r:
        h = r.header
        assert (h.sensor_name, h.color_size, h.depth_size, h.depth_shift) == ("Kinect", (4, 2),
                                                                             (3, 2), 1000.0)
        np.testing.assert_array_equal(h.color_intrinsics, np.diag([5.0, 6, 1, 1]))
        np.testing.assert_array_equal(h.depth_intrinsics, np.diag([2.0, 3, 1, 1]))
        f = r.read_frame(0)
        np.testing.assert_array_equal(f.color, rgb)
        np.testing.assert_array_equal(f.camera_to_world, pose)
        assert (f.color_timestamp, f.depth_timestamp) == (11, 12)
        np.testing.assert_allclose(f.depth[~np.isnan(f.depth)], dep[dep > 0] / 1000.0, rtol=1e-7)
        np.testing.assert_array_equal(np.isnan(f.depth), dep == 0)


@pytest.mark.parametrize("trailer", [b"", struct.pack("<Q", 0), struct.pack("<Q", 2) + bytes(range(48))])
def test_files_with_and_without_the_imu_trailer_read_alike(tmp_path, trailer):
    """ScanNet's writer ends a file with the u64 IMU frame count (and IMU records); SensorData.py
    stops after the frames. Both layouts read the same frames."""
    rgb = np.arange(4 * 2 * 3, dtype=np.uint8).reshape(2, 4, 3)
    dep = np.array([[0, 1500, 2], [65535, 7, 0]], np.uint16)
    poses = [np.arange(16, dtype=np.float32).reshape(4, 4) + k for k in range(2)]
    body = _hand_built(ccomp=0, dcomp=0, frames=[(p, 11 + k, 12 + k, rgb.tobytes(), dep.astype("<u2").tobytes())
                                                 for k, p in enumerate(poses)])
    path = tmp_path / "t.sens"
    path.write_bytes(body + trailer)
    with SensReader(path) as r:
        assert len(r) == 2
        for k in range(2):
            f = r.read_frame(k)
            np.testing.assert_array_equal(f.camera_to_world, poses[k])
            np.testing.assert_array_equal(f.color, rgb)
            assert f.color_timestamp == 11 + k


def test_writer_ends_with_the_imu_count_zero(tmp_path):
    path = tmp_path / "s.sens"
    write_scene(path, n=3)
    data = path.read_bytes()
    with SensReader(path) as r:
        end = int(r.color_offsets[-1] + r.color_nbytes[-1] + r.depth_nbytes[-1])
    assert data[end:] == struct.pack("<Q", 0)  # exactly the u64 IMU count 0 after the last frame


def test_draft_decoding_picks_smallest_scale_not_below_request(tmp_path):
    path = tmp_path / "s.sens"
    frames = write_scene(path, n=1, invalid=())
    with SensReader(path) as r:
        assert r.read_color(0, draft=(16, 12)).shape == (12, 16, 3)  # 1/4 scale exactly
        assert r.read_color(0, draft=(17, 12)).shape == (24, 32, 3)  # 1/4 too small -> 1/2
        small = r.read_frame(0, color_draft=(32, 24)).color
        ref = frames[0][1].reshape(24, 2, 32, 2, 3).mean(axis=(1, 3))  # box-downsampled input
        assert psnr(small, ref) > 25


def test_index_reads_only_frame_heads(tmp_path, monkeypatch):
    path = tmp_path / "s.sens"
    write_scene(path, n=5)
    size = path.stat().st_size
    counted = []
    real_open = open

    class Counting(io.BufferedReader):
        def read(self, n=-1):
            data = super().read(n)
            counted.append(len(data))
            return data

    def counting_open(p, mode="r", buffering=-1):
        assert mode == "rb"
        return Counting(real_open(p, "rb", buffering=0), buffer_size=256)

    monkeypatch.setattr(sens_mod, "open", counting_open, raising=False)
    with SensReader(path) as r:
        pass
    assert counted, "the reader did not go through the patched open()"
    # header (~400 B) + 5 frame heads of 96 B; buffering may overshoot by one small buffer/frame
    assert sum(counted) < 400 + 5 * (96 + 256) < size
    assert len(r) == 5


def test_frame_corruption_stays_local(tmp_path):
    """A corrupt JPEG in frame 0 does not affect indexing or frame N-1 (random access)."""
    path = tmp_path / "s.sens"
    write_scene(path, n=4)
    with SensReader(path) as r:
        off = int(r.color_offsets[0])
    data = bytearray(path.read_bytes())
    data[off + 200: off + 260] = b"\x00" * 60
    data[off: off + 2] = b"XX"  # no JPEG SOI marker
    path.write_bytes(bytes(data))
    with SensReader(path) as r:
        assert r.read_frame(3).color.shape == (CH, CW, 3)
        with pytest.raises(FormatError) as e:
            r.read_color(0)
        msg = str(e.value)
        assert str(path) in msg and f"byte {off}" in msg and "not a decodable image" in msg


# -- bad input ---------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match="found nothing at this path"):
        SensReader(tmp_path / "nope.sens")


def test_wrong_version(tmp_path):
    p = tmp_path / "v3.sens"
    p.write_bytes(_hand_built(version=3))
    with pytest.raises(FormatError) as e:
        SensReader(p)
    assert "byte 0" in str(e.value) and "version 4, found 3" in str(e.value) and str(p) in str(e.value)


@pytest.mark.parametrize("cut", [2, 30, 300])
def test_truncated_header(tmp_path, cut):
    p = tmp_path / "t.sens"
    p.write_bytes(_hand_built()[:cut])
    with pytest.raises(FormatError, match=r"truncated: expected \d+ bytes") as e:
        SensReader(p)
    assert str(p) in str(e.value) and "byte " in str(e.value)


def test_truncated_frame_payload(tmp_path):
    p = tmp_path / "s.sens"
    write_scene(p, n=3)
    with SensReader(p) as r:
        head2 = int(r.color_offsets[2]) - 96
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(FormatError) as e:
        SensReader(p)
    msg = str(e.value)
    assert "truncated frame 2" in msg and "past the end of the file" in msg
    assert f"byte {head2}" in msg and e.value.field == "frame 2" and str(p) in msg


def test_more_frames_promised_than_present(tmp_path):
    p = tmp_path / "s.sens"
    p.write_bytes(_hand_built(n_frames=1000))
    with pytest.raises(FormatError, match="header promises 1000 frames"):
        SensReader(p)


@pytest.mark.parametrize("ccomp,dcomp,field", [(7, 1, "color_compression"),
                                              (2, 9, "depth_compression")])
def test_unknown_compression(tmp_path, ccomp, dcomp, field):
    p = tmp_path / "c.sens"
    p.write_bytes(_hand_built(ccomp=ccomp, dcomp=dcomp))
    with pytest.raises(FormatError) as e:
        SensReader(p)
    bad = ccomp if field == "color_compression" else dcomp
    assert f"unknown compression code {bad}" in str(e.value) and e.value.field == field
    assert e.value.offset == 4 + 8 + 6 + 256 + (0 if field == "color_compression" else 4)


def test_corrupt_zlib_and_wrong_depth_size(tmp_path):
    pose = np.eye(4, dtype=np.float32)
    jpg = encode_jpeg(np.zeros((2, 4, 3), np.uint8))
    good = zlib.compress(np.ones((2, 3), "<u2").tobytes())
    wrong = zlib.compress(np.ones((2, 2), "<u2").tobytes())
    p = tmp_path / "z.sens"
    p.write_bytes(_hand_built(frames=[(pose, 0, 0, jpg, good), (pose, 0, 0, jpg, b"garbage!"),
                                      (pose, 0, 0, jpg, wrong)]))
    with SensReader(p) as r:
        assert r.read_depth(0).shape == (2, 3)
        with pytest.raises(FormatError, match="frame 1 .* not valid zlib") as e:
            r.read_depth(1)
        assert e.value.offset == int(r.color_offsets[1]) + len(jpg) and e.value.field == "depth"
        with pytest.raises(FormatError, match=r"expected 12 bytes \(3x2 uint16\).*found 8"):
            r.read_depth(2)


def test_writer_aborts_on_exception_and_validates_shapes(tmp_path):
    p = tmp_path / "a.sens"
    with pytest.raises(RuntimeError):
        with SensWriter(p, color_intrinsics=K, depth_intrinsics=K, color_size=(CW, CH),
                        depth_size=(DW, DH)) as w:
            with pytest.raises(ValueError, match="color must be"):
                w.add_frame(np.eye(4), np.zeros((CH, CW + 1, 3), np.uint8), np.ones((DH, DW)))
            with pytest.raises(ValueError, match="does not fit in uint16"):
                w.add_frame(np.eye(4), np.zeros((CH, CW, 3), np.uint8), np.full((DH, DW), 70.0))
            raise RuntimeError("generator crashed")
    assert not p.exists() and not (tmp_path / "a.sens.partial").exists()


def test_jpeg_decodes_with_pil_identically(tmp_path):
    """Our decode equals a plain PIL decode of the stored bytes (no hidden processing)."""
    p = tmp_path / "s.sens"
    write_scene(p, n=1, invalid=())
    with SensReader(p) as r:
        cbytes, _ = r.read_raw_payloads(0)
        np.testing.assert_array_equal(r.read_color(0),
                                      np.asarray(Image.open(io.BytesIO(cbytes)).convert("RGB")))


def test_pickled_reader_reopens_without_reindexing(tmp_path):
    p = tmp_path / "s.sens"
    write_scene(p, n=3)
    with SensReader(p) as r:
        blob = pickle.dumps(r)
        expected = r.read_raw_payloads(2)
    with pickle.loads(blob) as r2:
        assert r2.read_raw_payloads(2) == expected
        np.testing.assert_array_equal(r2.valid_pose_mask, [True, True, False])
    p.write_bytes(p.read_bytes() + b"extra")
    with pytest.raises(FormatError, match="file size changed"):
        pickle.loads(blob)
