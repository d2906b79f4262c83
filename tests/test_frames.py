"""prepare_frame on an analytic scene: a room box with a piece of furniture, camera at a known pose."""
from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest

from pipeline.frames import PrepareConfig, RawFrame, SceneGeometry, SkippedFrame, frame_rng, prepare_frame
from pipeline.geometry.camera import pixel_directions, virtual_intrinsics

ROOM_LO, ROOM_HI = np.array([-2.0, -1.2, -1.0]), np.array([2.0, 1.3, 4.0])  # y down: floor at y = 1.3
BOX_LO, BOX_HI = np.array([-0.5, 0.3, 1.5]), np.array([0.5, 1.3, 2.3])      # furniture on the floor
CFG = PrepareConfig(width=64, height=48, focal=57.6, near_surface_points=1500, non_surface_points=400)


def rectangles():
    """(axis, value, lo(3), hi(3), label) of the 6 room faces and the 5 furniture faces (no bottom)."""
    rects = []
    for lo, hi, is_room in ((ROOM_LO, ROOM_HI, True), (BOX_LO, BOX_HI, False)):
        for axis in range(3):
            for value in (lo[axis], hi[axis]):
                if not is_room and axis == 1 and value == hi[1]:
                    continue  # scans have no face under furniture
                label = (2 if value == hi[1] else 22) if axis == 1 else 1
                rects.append((axis, value, lo, hi, label if is_room else 39))
    return rects


def build_mesh(rng, n=6):
    """Triangulated rectangles with randomly flipped winding; returns vertices, faces, face labels."""
    verts, faces, labels = [], [], []
    for axis, value, lo, hi, label in rectangles():
        a, b = [k for k in range(3) if k != axis]
        g = np.linspace(0, 1, n + 1)
        ga, gb = np.meshgrid(lo[a] + g * (hi[a] - lo[a]), lo[b] + g * (hi[b] - lo[b]), indexing="ij")
        p = np.zeros((n + 1, n + 1, 3))
        p[..., axis], p[..., a], p[..., b] = value, ga, gb
        base = sum(len(v) for v in verts)
        verts.append(p.reshape(-1, 3))
        idx = base + np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
        for i in range(n):
            for j in range(n):
                for tri in ((idx[i, j], idx[i + 1, j], idx[i + 1, j + 1]), (idx[i, j], idx[i + 1, j + 1], idx[i, j + 1])):
                    faces.append(tri if rng.random() < 0.5 else tri[::-1])
                    labels.append(label)
    return np.concatenate(verts), np.array(faces), np.array(labels)


def camera_pose(yaw_deg=8.0, pitch_deg=-6.0, centre=(0.3, -0.1, -0.5)):
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = ry @ rx, centre
    return t


def raw_frame(pose, index=3):
    k = np.array([[72.0, 0, 40], [0, 72.0, 30], [0, 0, 1]])  # 80×60 image with the virtual FOV
    color = np.random.default_rng(index).integers(0, 255, size=(60, 80, 3), dtype=np.uint8)
    return RawFrame(index=index, source_file="scene/x.sens", camera_to_world=pose, color=color,
                    color_intrinsics=k, depth=None, depth_intrinsics=None)


def slab(o, d, lo, hi):
    """Entry and exit t of rays o + t·d through an axis-aligned box (N,)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - o) / d, (hi - o) / d
    return np.minimum(t1, t2).max(axis=1), np.maximum(t1, t2).min(axis=1)


def rect_distance(p, rect):
    axis, value, lo, hi, _ = rect
    a, b = [k for k in range(3) if k != axis]
    out_a = np.maximum(0, np.maximum(lo[a] - p[:, a], p[:, a] - hi[a]))
    out_b = np.maximum(0, np.maximum(lo[b] - p[:, b], p[:, b] - hi[b]))
    return np.sqrt((p[:, axis] - value) ** 2 + out_a**2 + out_b**2)


@pytest.fixture(scope="module")
def scene():
    v, f, lab = build_mesh(np.random.default_rng(0))
    return SceneGeometry.from_mesh(v, f, lab, CFG.structure_labels)


@pytest.fixture(scope="module")
def sample(scene):
    return prepare_frame(scene, raw_frame(camera_pose()), CFG, dataset="scannet", scene_id="s0", split="train")


def to_world(sample, points):
    t_cw = sample.world_to_camera.astype(np.float64)
    return (points.astype(np.float64) - t_cw[:3, 3]) @ t_cw[:3, :3]


def test_rendered_and_amodal_depth_are_analytic(scene, sample):
    pose = camera_pose()
    d = (pixel_directions(CFG.width, CFG.height, virtual_intrinsics(CFG.width, CFG.height, CFG.focal))
         @ pose[:3, :3].T).reshape(-1, 3)
    o = pose[:3, 3][None]
    _, t_room = slab(o, d, ROOM_LO, ROOM_HI)
    t_in, t_out = slab(o, d, BOX_LO, BOX_HI)
    furniture = (t_in <= t_out) & (t_in > 0)
    want = np.where(furniture, t_in, t_room).reshape(CFG.height, CFG.width)
    assert 0.05 < furniture.mean() < 0.5  # the furniture occludes part of the wall
    np.testing.assert_allclose(sample.rendered_depth, want, rtol=0, atol=1e-4)
    # Behind the furniture the amodal depth is the wall (room shell), elsewhere the first hit.
    np.testing.assert_allclose(sample.amodal_depth, t_room.reshape(CFG.height, CFG.width), rtol=0, atol=1e-4)


@pytest.mark.parametrize("method", ["list", "first_hits"])
def test_amodal_methods_agree(scene, method):
    # The default ("raster", Numba z-buffers) against Embree, at a pose with much furniture in view.
    assert CFG.amodal_method == "raster"
    pose = camera_pose(yaw_deg=-20.0, pitch_deg=-25.0)
    a = prepare_frame(scene, raw_frame(pose), replace(CFG, amodal_method=method), dataset="scannet",
                      scene_id="s0", split="train")
    b = prepare_frame(scene, raw_frame(pose), CFG, dataset="scannet", scene_id="s0", split="train")
    assert np.isfinite(a.rendered_depth).all()
    np.testing.assert_allclose(a.amodal_depth, b.amodal_depth, rtol=0, atol=1e-5)
    np.testing.assert_allclose(a.rendered_depth, b.rendered_depth, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(a.visible_faces, b.visible_faces)
    np.testing.assert_array_equal(a.near_surface_points, b.near_surface_points)


@pytest.mark.parametrize("face_sampling", ["area", "uniform"])
def test_near_surface_labels_follow_the_camera_side(scene, face_sampling):
    cfg = replace(CFG, face_sampling=face_sampling)
    timings: dict = {}
    sample = prepare_frame(scene, raw_frame(camera_pose()), cfg, dataset="scannet", scene_id="s0",
                           split="train", timings=timings)
    assert set(timings) == {"resampling", "raycasting", "culling", "sampling"}
    pts = to_world(sample, sample.near_surface_points)
    centre = camera_pose()[:3, 3]
    rects = rectangles()
    cand, expect = [], []
    for axis, value, lo, hi, _ in rects:
        a, b = [k for k in range(3) if k != axis]
        inside = ((pts[:, a] >= lo[a]) & (pts[:, a] <= hi[a]) & (pts[:, b] >= lo[b]) & (pts[:, b] <= hi[b])
                  & (np.abs(pts[:, axis] - value) <= CFG.surface_offset + 1e-5))
        cand.append(inside)
        # Free (0) iff the point is on the same side of the plane as the camera.
        expect.append(np.where(np.sign(pts[:, axis] - value) == np.sign(centre[axis] - value), 0, 1))
    cand, expect = np.array(cand), np.array(expect)
    unique = cand.sum(axis=0) == 1
    assert unique.mean() > 0.8
    want = expect[cand.argmax(axis=0), np.arange(len(pts))]
    np.testing.assert_array_equal(sample.near_surface_labels[unique], want[unique])
    assert sample.near_surface_valid.all() and 0.3 < sample.near_surface_labels.mean() < 0.7


@pytest.mark.parametrize("exclusion", ["samples", "mesh"])
def test_non_surface_points_in_frustum_and_away_from_surface(scene, exclusion):
    cfg = replace(CFG, exclusion=exclusion)
    s = prepare_frame(scene, raw_frame(camera_pose()), cfg, dataset="scannet", scene_id="s0", split="train")
    p = s.non_surface_points[s.non_surface_valid].astype(np.float64)
    assert s.non_surface_valid.all()
    u, v = 1.8 * p[:, 0] / p[:, 2], 2.4 * p[:, 1] / p[:, 2]
    assert (p[:, 2] > cfg.z_near).all() and (np.abs(u) <= 1 + 1e-6).all() and (np.abs(v) <= 1 + 1e-6).all()
    if exclusion == "mesh":  # exact distance to the analytic surfaces
        dist = np.min([rect_distance(to_world(s, p), r) for r in rectangles()], axis=0)
        assert dist.min() >= cfg.exclusion_distance - 1e-5
    else:  # SPEC §4 rule: ≥ exclusion distance from every on-surface sample (brute force)
        flat = replace(cfg, surface_offset=1e-7)  # same stream; near-surface points = surface samples
        f = prepare_frame(scene, raw_frame(camera_pose()), flat, dataset="scannet", scene_id="s0", split="train")
        q = f.non_surface_points.astype(np.float64)
        d2 = ((q[:, None] - f.near_surface_points.astype(np.float64)[None]) ** 2).sum(-1)
        assert np.sqrt(d2.min()) >= cfg.exclusion_distance - 1e-5


def test_surface_samples_lie_on_the_mesh_facing_the_camera_with_their_colour(scene):
    """On-surface samples: on an analytic face, normal = that face's axis turned toward the camera,
    colour = the vertex colours interpolated (exact for colours linear in position, up to rounding);
    near-surface offsets are the signed distances the labels come from; no other field changed."""
    rgb = lambda p: np.stack((40 * (p[:, 0] + 2), 40 * (p[:, 1] + 1.2), 40 * (p[:, 2] + 1)), axis=1)  # noqa: E731
    colored = replace(scene, vertex_colors=np.rint(rgb(scene.vertices)).astype(np.uint8), _chunks=None)
    kw = dict(dataset="scannet", scene_id="s0", split="train")
    s = prepare_frame(colored, raw_frame(camera_pose()), CFG, **kw)
    assert s.surface_points.shape == s.surface_normals.shape == s.surface_colors.shape == (CFG.surface_points, 3)
    world, centre = to_world(s, s.surface_points), camera_pose()[:3, 3]
    normals = s.surface_normals.astype(np.float64) @ s.world_to_camera[:3, :3].astype(np.float64)  # to world
    dist = np.array([rect_distance(world, r) for r in rectangles()])
    on = dist.argmin(axis=0)
    assert dist.min(axis=0).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(s.surface_normals, axis=1), 1, atol=1e-6)
    axes = np.array([r[0] for r in rectangles()])[on]
    np.testing.assert_allclose(np.abs(normals[np.arange(len(on)), axes]), 1, atol=1e-6)
    assert (np.einsum("ij,ij->i", normals, centre - world) > 0).all()
    assert s.surface_colored and np.abs(s.surface_colors - rgb(world)).max() <= 1.01
    assert s.surface_colors.dtype == np.uint8
    assert (np.abs(s.near_surface_offsets) <= CFG.surface_offset).all()
    np.testing.assert_array_equal(s.near_surface_labels, (s.near_surface_offsets < 0).astype(np.uint8))
    plain = prepare_frame(scene, raw_frame(camera_pose()), CFG, **kw)  # no vertex colours
    assert not plain.surface_colored and not plain.surface_colors.any()
    np.testing.assert_array_equal(plain.surface_points, s.surface_points)
    none = prepare_frame(scene, raw_frame(camera_pose()), replace(CFG, surface_points=0), **kw)
    assert none.surface_points.shape == (0, 3)
    for name in ("near_surface_points", "near_surface_labels", "non_surface_points", "visible_faces"):
        np.testing.assert_array_equal(getattr(none, name), getattr(s, name), err_msg=name)


def test_deterministic_and_frame_dependent(scene, sample):
    again = prepare_frame(scene, raw_frame(camera_pose()), CFG, dataset="scannet", scene_id="s0", split="train")
    for name in ("near_surface_points", "near_surface_labels", "non_surface_points", "visible_faces", "image"):
        np.testing.assert_array_equal(getattr(again, name), getattr(sample, name))
    other = prepare_frame(scene, raw_frame(camera_pose(), index=4), CFG, dataset="scannet", scene_id="s0",
                          split="train")
    assert not np.array_equal(other.near_surface_points, sample.near_surface_points)
    restored = pickle.loads(pickle.dumps(scene))  # Dask workers get a pickled scene
    third = prepare_frame(restored, raw_frame(camera_pose()), CFG, dataset="scannet", scene_id="s0", split="train")
    np.testing.assert_array_equal(third.non_surface_points, sample.non_surface_points)
    a = frame_rng(0, "scannet", "s0", 3).random(4)
    np.testing.assert_array_equal(a, frame_rng(0, "scannet", "s0", 3).random(4))
    assert not np.array_equal(a, frame_rng(0, "scannet", "s1", 3).random(4))


def test_visible_faces_and_record_layout(scene, sample):
    assert sample.image.shape == (3, CFG.height, CFG.width) and sample.image.dtype == np.uint8
    assert sample.near_surface_points.dtype == np.float32 and sample.non_surface_points.dtype == np.float32
    np.testing.assert_allclose(sample.intrinsics, [57.6, 57.6, 32, 24])
    vis = sample.visible_faces
    assert vis.dtype == np.int32 and (np.diff(vis) > 0).all() and 0 < len(vis) < len(scene.faces)
    # The wall behind the camera (z = −1) is never visible.
    assert not np.isclose(scene.centroids[vis, 2], -1.0).any()


def test_skip_reasons(scene):
    bad = camera_pose()
    bad[0, 0] = -np.inf
    kw = dict(dataset="scannet", scene_id="s0", split="train")
    assert prepare_frame(scene, raw_frame(bad), CFG, **kw) == SkippedFrame(
        3, "scene/x.sens", "invalid_pose", "pose has non-finite entries (lost tracking)")
    squashed = camera_pose()
    squashed[:3, :3] *= 0.5  # finite but not rigid: the message says what is wrong with it
    assert "not rigid" in prepare_frame(scene, raw_frame(squashed), CFG, **kw).message
    outside = camera_pose(yaw_deg=180.0, pitch_deg=0.0, centre=(0.0, 0.0, -3.0))  # outside, looking away
    skipped = prepare_frame(scene, raw_frame(outside), CFG, **kw)
    assert skipped.reason == "empty_view" and skipped.message
    huge = replace(CFG, exclusion_distance=20.0)
    skipped = prepare_frame(scene, raw_frame(camera_pose()), huge, **kw)
    assert skipped.reason == "too_few_samples" and f"of {CFG.non_surface_points} non-surface" in skipped.message


def test_scene_rejects_nan_vertices():
    v, f, lab = build_mesh(np.random.default_rng(1), n=1)
    v[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SceneGeometry.from_mesh(v, f, lab, (1,))
