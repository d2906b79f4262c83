"""Ray-cast renderer against analytic ray/plane and ray/box intersections."""
import math

import numpy as np
import pytest

from pipeline.synthetic.render import PinholeCamera, SceneRenderer, SensorModel
from pipeline.synthetic.scene import build_mesh, make_layout
from pipeline.synthetic.structure import ray_rectangles, room_surfaces
from pipeline.synthetic.trajectory import look_rotation, pose_matrix

CAMERA = PinholeCamera(64, 48, 50.0, 52.0, 31.2, 24.7)


def _layout(seed, keep_objects):
    """A 2-room apartment at a 0.4 m grid; furniture only of boxes (lamps and round ottomans left out)."""
    layout = make_layout("scene0000_00", seed, 0.4, (3, 5), (2, 2), np.random.default_rng(seed))
    keep = [o for o in layout.objects if all(p.primitive == "box" for p in o.parts)]
    layout.objects = keep if keep_objects else []
    return layout


def _zone_centre(layout, height):
    x0, y0, x1, y1 = layout.rooms[0].camera_zone
    return [(x0 + x1) / 2, (y0 + y1) / 2, height]


def _world_rays(camera, pose):
    j, i = np.meshgrid(np.arange(camera.width) + 0.5, np.arange(camera.height) + 0.5)
    d = np.stack([(j - camera.cx) / camera.fx, (i - camera.cy) / camera.fy, np.ones(j.shape)], -1)
    return d @ pose[:3, :3].T  # camera z component 1: ray parameter == z-depth


def _analytic_depth(layout, pose, camera):
    """Nearest positive hit of each pixel ray with the structure rectangles and the furniture's
    boxes (slab test in each object's frame: the first hit on a union of boxes is the nearest box
    entry), float64."""
    dirs = _world_rays(camera, pose)
    origin = pose[:3, 3]
    best = ray_rectangles(layout.surfaces, origin, dirs.reshape(-1, 3)).min(1).reshape(dirs.shape[:2])
    for o in layout.objects:
        lo = o.to_local(origin[None])[0]
        ld = o.to_local(dirs.reshape(-1, 3) + np.asarray(o.center)).reshape(dirs.shape)
        for part in o.parts:
            c, half = np.asarray(part.center), np.array(part.size) / 2
            with np.errstate(divide="ignore", invalid="ignore"):
                t1, t2 = (c - half - lo) / ld, (c + half - lo) / ld
            near = np.max(np.minimum(t1, t2), -1)
            far = np.min(np.maximum(t1, t2), -1)
            hit = (near <= far) & (near > 0)
            best = np.where(hit, np.minimum(best, near), best)
    return best


def _pose(position, yaw_deg, pitch_deg, roll_deg=0.0):
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
    forward = [math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)]
    return pose_matrix(look_rotation(np.array(forward), math.radians(roll_deg)), np.array(position))


@pytest.mark.parametrize("seed,yaw,pitch,roll", [(0, 0, -35, 0), (1, 130, -10, 4), (2, 250, 20, -3)])
def test_depth_equals_analytic_room_and_boxes(seed, yaw, pitch, roll):
    layout = _layout(seed, keep_objects=True)
    pose = _pose(_zone_centre(layout, 1.45), yaw, pitch, roll)
    depth = SceneRenderer(build_mesh(layout, np.random.default_rng(0)), [1, 1, 2]).depth(CAMERA, pose)
    truth = _analytic_depth(layout, pose, CAMERA)
    assert depth.dtype == np.float32 and np.array_equal(np.isfinite(depth), np.isfinite(truth))
    assert np.isfinite(depth).mean() > 0.9
    # Embree works in float32: allow 1e-4 relative, and a few pixels exactly on an edge may differ.
    close = np.abs(depth - truth) <= 1e-4 * truth + 1e-5
    assert close.mean() > 0.995 and np.median(np.abs(depth - truth)) < 1e-5


def test_floor_and_wall_depth_from_height_and_pitch():
    """A level camera sees the wall ahead at z = distance; pitched down, the floor row of the
    principal point is at z = h / sin(pitch) along the optical axis."""
    layout = _layout(0, keep_objects=False)
    x0, y0, x1, y1 = layout.rooms[0].box
    layout.openings = []  # plain walls: no doorway or window on the way
    layout.surfaces = room_surfaces(layout.rooms, [], layout.height)
    renderer = SceneRenderer(build_mesh(layout, np.random.default_rng(0)), [1, 1, 2])
    cam = PinholeCamera(33, 25, 30.0, 30.0, 16.5, 12.5)  # principal point on the centre of pixel (12, 16)
    x = x0 + 1.7
    level = renderer.depth(cam, _pose([x, (y0 + y1) / 2, 1.3], 0, 0))
    assert level[12, 16] == pytest.approx(x1 - x, rel=1e-6)
    assert np.allclose(level[6:18, 10:22], x1 - x, rtol=1e-5)  # wall plane: constant z
    h, pitch = 1.3, 50.0
    down = renderer.depth(cam, _pose(_zone_centre(layout, h), 0, -pitch))
    assert down[12, 16] == pytest.approx(h / math.sin(math.radians(pitch)), rel=1e-5)


def test_color_is_albedo_under_ambient_light_and_lambert_darkens():
    layout = _layout(3, keep_objects=True)
    mesh = build_mesh(layout, np.random.default_rng(0))
    parts = list(layout.surfaces) + list(layout.objects)
    palette = np.random.default_rng(1).integers(30, 230, size=(len(parts), 3)).astype(np.uint8)
    vertex_part = np.zeros(len(mesh.vertices), np.int64)
    vertex_part[mesh.faces.ravel()] = np.repeat(mesh.face_parts, 3)
    mesh.vertex_colors = palette[vertex_part]
    zone = layout.rooms[0].camera_zone
    pose = _pose(_zone_centre(layout, 1.5), 40, -20)
    flat = SceneRenderer(mesh, [1, 1, 2], ambient=1.0)
    hits = flat.cast(CAMERA, pose)
    image = flat.shade(hits, pose)
    expected = palette[mesh.face_parts[hits.face]]
    assert np.abs(image.astype(int) - expected).max() <= 1
    lit = SceneRenderer(mesh, [(zone[0] + zone[2]) / 2, (zone[1] + zone[3]) / 2, 2.2], ambient=0.2)
    shaded = lit.shade(hits, pose).astype(int)
    assert shaded.mean() < image.mean() + 40 and np.std(shaded - expected) > 1  # lighting varies
    # The Numba kernel equals the NumPy formula (float32 vs float64 rounding: at most 1 level).
    mesh.vertex_colors = build_mesh(layout, np.random.default_rng(0)).vertex_colors
    textured = SceneRenderer(mesh, [2.0, 2.0, 2.2], ambient=0.3)
    wide = PinholeCamera(96, 72, 50.0, 50.0, 48.0, 36.0)
    hits = textured.cast(wide, pose)
    fast, slow = textured.shade(hits, pose).astype(int), textured.shade_reference(hits, pose).astype(int)
    assert np.abs(fast - slow).max() <= 1 and np.mean(fast == slow) > 0.95


def test_sensor_model_noise_holes_and_seed():
    layout = _layout(0, keep_objects=False)
    renderer = SceneRenderer(build_mesh(layout, np.random.default_rng(0)), [1, 1, 2])
    cam = PinholeCamera(160, 120, 120.0, 120.0, 79.5, 59.5)
    pose = _pose(_zone_centre(layout, 1.4), 30, -25)
    hits = renderer.cast(cam, pose)
    noisy = SensorModel(noise=0.01).apply(hits, np.random.default_rng(0))
    rel = (noisy - hits.depth) / hits.depth
    assert np.std(rel) == pytest.approx(0.01, rel=0.05) and abs(np.mean(rel)) < 1e-3
    graze = SensorModel(grazing_deg=70.0).apply(hits, np.random.default_rng(0))
    dropped = np.isnan(graze)
    assert np.array_equal(dropped, hits.cos_incidence < math.cos(math.radians(70.0))) and dropped.any()
    model = SensorModel(blobs=5.0, blob_radius=0.03)
    a, b = model.apply(hits, np.random.default_rng(4)), model.apply(hits, np.random.default_rng(4))
    assert np.array_equal(np.isnan(a), np.isnan(b)) and np.isnan(a).any()
    assert np.array_equal(a[~np.isnan(a)], hits.depth[~np.isnan(a)])  # holes only, no noise
    c = model.apply(hits, np.random.default_rng(5))
    assert not np.array_equal(np.isnan(a), np.isnan(c))


def test_scaled_intrinsics_keep_the_field_of_view():
    native = PinholeCamera.scaled((1296, 968), (1169.6, 1167.1, 646.3, 489.9), (1296, 968))
    small = PinholeCamera.scaled((1296, 968), (1169.6, 1167.1, 646.3, 489.9), (162, 121))
    # The image border (coordinate 0 and W) maps to the same ray direction at both sizes.
    for cam in (native, small):
        assert (0 - cam.cx) / cam.fx == pytest.approx((0 - native.cx) / native.fx)
        assert (cam.width - cam.cx) / cam.fx == pytest.approx((1296 - native.cx) / native.fx)
        assert (cam.height - cam.cy) / cam.fy == pytest.approx((968 - native.cy) / native.fy, rel=1e-2)
