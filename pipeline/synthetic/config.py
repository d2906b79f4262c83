"""Size and content knobs of the synthetic scene generator, with the `tiny`, `demo` and `ablation` presets.

A `GeneratorConfig` is plain data: the generator reads nothing else (no environment variables), so
the same config and seed always produce the same bytes. Units: metres, pixels, degrees.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# ScanNet v2 calibration of a typical scene (structure.io depth sensor + iPad colour camera), in
# pixels at the native sizes below; smaller images scale these with the image size.
SCANNET_COLOR_SIZE = (1296, 968)
SCANNET_COLOR_INTRINSICS = (1169.62, 1167.11, 646.30, 489.93)  # fx, fy, cx, cy
SCANNET_DEPTH_SIZE = (640, 480)
SCANNET_DEPTH_INTRINSICS = (577.59, 578.73, 318.91, 242.68)
# Matterport3D undistorted images: 1280x1024, colour and depth share the camera.
MATTERPORT_SIZE = (1280, 1024)
MATTERPORT_INTRINSICS = (1075.9, 1075.6, 629.7, 508.3)


class PlainConfig:
    """Copy-with-overrides and a JSON-friendly dict for the generators' frozen config dataclasses."""

    def with_overrides(self, **overrides: Any):
        """A copy with some fields replaced (lists become tuples); unknown names raise a ValueError
        listing the valid ones."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"{type(self).__name__} has no field(s) {unknown}; valid fields: {sorted(names)}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return dataclasses.replace(self, **fixed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of all fields (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class GeneratorConfig(PlainConfig):
    """Everything that sets the size and content of a generated dataset.

    seed: every random choice derives from it (with the scene id); same config, same bytes.
    Scene content:
        edge_length: target triangle edge length of the subdivided surfaces (metres); the face count
            grows as 1/edge_length^2 (0.25 gives 10k-25k faces per apartment, 0.05 about 300k).
        rooms_min, rooms_max: rooms per apartment (inclusive range, 2..4; with 3 or more, half the
            apartments have a corridor with the other rooms off it).
        inner_walls: (min, max) thickness of the walls between rooms, metres (outer walls: 0.25).
        furniture_min, furniture_max: composite pieces of furniture per room (inclusive range).
    ScanNet:
        scannet_train, scannet_val, scannet_test: number of scenes per official split.
        frames_per_scene: frames per `.sens` file.
        color_size, depth_size: (W, H) pixels of the colour and depth streams.
        invalid_pose_fraction: fraction of frames stored with ScanNet's invalid (-inf) pose.
        jpeg_quality: JPEG quality of colour frames (ScanNet and Matterport).
    Matterport3D:
        matterport_houses: number of houses; panoramas_per_house: tripod positions per house.
        matterport_size: (W, H) of the undistorted colour and depth images.
        camera_pitches_deg: pitch of Matterport's three cameras, positive up: index 0, 1, 2 =
            diagonally up, level, diagonally down (the official data_organization.md), about +41°,
            0°, -41° as in real .conf files.
    Sensor model (all from the seed):
        depth_noise: relative standard deviation of the depth noise (sigma = depth_noise * z).
        hole_blobs: mean number of small hole blobs per depth frame; hole_radius: their mean radius
            as a fraction of the image width.
        grazing_dropout_deg: depth is dropped where the ray meets the surface at a grazing angle
            larger than this (degrees from the normal); None disables it.
        depth_max_range: no depth reading beyond this z-depth (metres), as a structured-light
            sensor's range ends; None: unlimited.
    """

    seed: int = 0
    edge_length: float = 0.25
    rooms_min: int = 2
    rooms_max: int = 3
    inner_walls: tuple[float, float] = (0.1, 0.15)
    furniture_min: int = 3
    furniture_max: int = 5
    scannet_train: int = 2
    scannet_val: int = 1
    scannet_test: int = 1
    frames_per_scene: int = 120
    color_size: tuple[int, int] = (160, 120)
    depth_size: tuple[int, int] = (160, 120)
    invalid_pose_fraction: float = 0.03
    jpeg_quality: int = 90
    matterport_houses: int = 1
    panoramas_per_house: int = 2
    matterport_size: tuple[int, int] = (160, 128)
    camera_pitches_deg: tuple[float, float, float] = (41.0, 0.0, -41.0)
    depth_noise: float = 0.005
    hole_blobs: float = 2.0
    hole_radius: float = 0.02
    grazing_dropout_deg: float | None = 80.0
    depth_max_range: float | None = None

    def __post_init__(self) -> None:
        problems = []
        if not self.edge_length > 0:
            problems.append(f"edge_length must be > 0, found {self.edge_length}")
        if not 2 <= self.rooms_min <= self.rooms_max <= 4:
            problems.append(f"need 2 <= rooms_min <= rooms_max <= 4, found {self.rooms_min}, {self.rooms_max}")
        if not 0.05 <= self.inner_walls[0] <= self.inner_walls[1]:
            problems.append(f"inner_walls must be (min, max) with 0.05 <= min <= max metres, found {self.inner_walls}")
        if not 0 <= self.furniture_min <= self.furniture_max:
            problems.append(f"need 0 <= furniture_min <= furniture_max, found "
                            f"{self.furniture_min}, {self.furniture_max}")
        if not 0.0 <= self.invalid_pose_fraction < 1.0:
            problems.append(f"invalid_pose_fraction must be in [0, 1), found {self.invalid_pose_fraction}")
        if self.frames_per_scene < 1:
            problems.append(f"frames_per_scene must be >= 1, found {self.frames_per_scene}")
        for name in ("color_size", "depth_size", "matterport_size"):
            size = getattr(self, name)
            if len(size) != 2 or min(size) < 8:
                problems.append(f"{name} must be (W, H) with both >= 8, found {size}")
        if problems:
            raise ValueError("GeneratorConfig: " + "; ".join(problems) + ". Fix the preset or override.")



PRESETS: dict[str, GeneratorConfig] = {
    # Tests: 2-3 rooms per apartment at a 0.25 m grid (10k-25k faces), 160x120 frames, seconds to generate.
    "tiny": GeneratorConfig(),
    # `make demo`: enough apartments (2-3 rooms, a few composite pieces per room) for the tiny CPU model
    # to learn something that holds on held-out apartments (with 12 apartments × 40 frames it memorised
    # them: validation BCE rose from step 750 on); ~150k faces each; a depth sensor whose range
    # ends at 4 m (as a structured-light sensor's), ScanNet's colour halved. A few minutes on 2 cores.
    "demo": GeneratorConfig(
        edge_length=0.07,
        furniture_min=2,
        furniture_max=4,
        scannet_train=36,
        scannet_val=4,
        scannet_test=2,
        frames_per_scene=20,
        color_size=(648, 484),
        depth_size=(320, 240),
        depth_max_range=4.0,
        panoramas_per_house=3,
        matterport_size=(320, 256),
    ),
    # The miniature ablation (config/ablation.yaml): many apartments, so that a CPU-sized model sees
    # enough scene variety to generalise to held-out scenes; ~120k faces per apartment.
    "ablation": GeneratorConfig(
        edge_length=0.08,
        scannet_train=40,
        scannet_val=4,
        scannet_test=4,
        frames_per_scene=20,
        color_size=(640, 480),
        depth_size=(320, 240),
    ),
}


def preset(name: str, **overrides: Any) -> GeneratorConfig:
    """The named preset ("tiny", "demo" or "ablation"), optionally with some fields overridden."""
    if name not in PRESETS:
        raise ValueError(f"unknown generator preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[name].with_overrides(**overrides)
