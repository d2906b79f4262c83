"""dgs predict-image on a generated photo of a synthetic room (its focal known): the crop to the
virtual camera, where the focal comes from, every output, and — with a network whose occupancy
agrees with its depth head — the mesh's depth rendered at the camera matches that depth head."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.fit import fit_scale_shift
from benchmark.render import render_depth
from dgs.predict_image import VirtualCamera, choose_focal, main, read_photo, reconstruct_photo, to_virtual
from dgs_core.checkpoint import capture_rng, save_checkpoint
from dgs_core.experiment import Experiment, to_dict
from dgs_core.model import DGSNet, EncoderOutput, ModelConfig, sample_maps
from pipeline.formats.images import decode_png16
from pipeline.formats.ply import read_ply
from pipeline.synthetic.render import PinholeCamera, SceneRenderer
from pipeline.synthetic.scene import make_scene
from pipeline.synthetic.trajectory import handheld_scan
from pipeline.errors import run_main

VIRTUAL = VirtualCamera(64, 48, 57.6)  # the fixtures' virtual camera: the protocol's field of view at 64×48
PHOTO_FOCAL = 150.0
PHOTO = PinholeCamera(200, 160, PHOTO_FOCAL, PHOTO_FOCAL, 100.0, 80.0)  # wider than the virtual view
OUTPUTS = {"mesh.ply", "depth.png", "depth.npy", "grid.npz", "input.png", "figure.png", "prediction.json"}


@pytest.fixture(scope="module")
def room(tmp_path_factory) -> SimpleNamespace:
    """A photo of a synthetic room and the room rendered directly at the virtual camera."""
    layout, mesh = make_scene("scene0000_00", 0, edge_length=0.25)
    lx, ly, h = layout.room_size
    renderer = SceneRenderer(mesh, light=np.array([lx / 2, ly / 2, h - 0.3]))
    pose = handheld_scan(layout, 4, 0.0, np.random.default_rng(0)).camera_to_world[1]
    virtual = PinholeCamera(VIRTUAL.width, VIRTUAL.height, VIRTUAL.focal, VIRTUAL.focal, 32.0, 24.0)
    path = tmp_path_factory.mktemp("photo") / "room.png"
    Image.fromarray(renderer.color(PHOTO, pose)).save(path)
    return SimpleNamespace(path=path, depth=renderer.depth(virtual, pose), colour=renderer.color(virtual, pose))


class DepthOracle(torch.nn.Module):
    """A stand-in network: its depth head is the room's true depth at the virtual camera and its
    occupancy σ((z − depth(u, v))/5 cm) (occupied behind the surface it predicts, as a trained model's)."""

    def __init__(self, depth: np.ndarray) -> None:
        super().__init__()
        self.config = ModelConfig.tiny()
        self.depth = torch.tensor(depth, dtype=torch.float32)[None, None]

    def encode(self, images: torch.Tensor, intrinsics: torch.Tensor | None = None) -> EncoderOutput:
        assert tuple(images.shape[-2:]) == tuple(self.depth.shape[-2:])
        return EncoderOutput([self.depth], self.depth)

    def query(self, features, points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
        return (points[..., 2] - sample_maps(features, points, intrinsics)[..., 0]) / 0.05


def test_the_photo_is_cropped_to_the_virtual_camera(room) -> None:
    photo, f35 = read_photo(room.path)
    assert f35 is None and photo.shape == (160, 200, 3)
    image, cover = to_virtual(photo, PHOTO_FOCAL, VIRTUAL)
    assert image.shape == (3, 48, 64) and cover == 1.0
    direct = room.colour.transpose(2, 0, 1).astype(float)
    error = np.abs(image - direct).mean()
    wrong = np.abs(to_virtual(photo, 1.25 * PHOTO_FOCAL, VIRTUAL)[0] - direct).mean()
    # The residual is resampling (a 200×160 photo averaged down vs a 64×48 render that point-samples
    # its texture): 2.8 grey levels in an apartment with composite furniture; a 25 % wrong focal: 18.
    assert error < 4 and wrong > 4 * error, (error, wrong)


def test_focal_from_the_option_exif_or_the_virtual_field_of_view(tmp_path: Path) -> None:
    assert choose_focal(400, 300, 321.0, 26.0, VIRTUAL) == (321.0, "--focal")
    f, source = choose_focal(400, 300, None, 26.0, VIRTUAL)
    assert f == pytest.approx(26.0 * 500 / 43.2666, rel=1e-4) and source.startswith("EXIF 35 mm")
    f, source = choose_focal(400, 300, None, None, VIRTUAL)  # 400/64 = 6.25 = 300/48: the whole photo
    assert f == pytest.approx(57.6 * 6.25) and source.startswith("virtual camera field of view")
    with pytest.raises(ValueError, match="--focal"):
        choose_focal(400, 300, -1.0, None, VIRTUAL)
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 26
    jpeg = tmp_path / "phone.jpg"
    Image.new("RGB", (40, 30), (90, 120, 150)).save(jpeg, exif=exif)
    assert read_photo(jpeg)[1] == 26.0


def test_mesh_depth_at_the_camera_matches_the_depth_head(room, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = reconstruct_photo(DepthOracle(room.depth), room.path, out, focal=PHOTO_FOCAL, camera=VIRTUAL,
                                resolution=48)
    assert {p.name for p in out.iterdir()} == OUTPUTS
    assert summary["focal_source"] == "--focal" and summary["faces"] > 100
    head = np.load(out / "depth.npy")
    np.testing.assert_array_equal(head, room.depth.astype(np.float32))
    png = decode_png16((out / "depth.png").read_bytes(), path=out / "depth.png")
    np.testing.assert_allclose(png / 1000.0, head, atol=5e-4)
    assert summary["far"] == pytest.approx(np.percentile(head, 95) * 1.1)
    mesh = read_ply(out / "mesh.ply")
    rendered = render_depth(mesh.vertices, mesh.faces, *VIRTUAL.intrinsics(), VIRTUAL.width, VIRTUAL.height)
    a, b, reason = fit_scale_shift(rendered, head)
    cell = (np.array(summary["box_max"]) - np.array(summary["box_min"])) / 48
    assert not reason and abs(a - 1) < 0.03 and abs(b) < cell.max(), (a, b)
    assert np.nanmedian(np.abs(rendered - head)) < 0.25 * cell.min()
    assert np.isfinite(rendered).mean() > 0.95
    assert json.loads((out / "prediction.json").read_text())["faces"] == len(mesh.faces)


def test_cli_with_the_demo_model(room, tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    config = ModelConfig.tiny()
    checkpoint = save_checkpoint(tmp_path / "final.pt", model=DGSNet(config), step=1, epoch=0, position=0,
                                 config=to_dict(Experiment(model=config)), rng=capture_rng())
    out = tmp_path / "demo"
    args = [str(room.path), "--checkpoint", str(checkpoint), "--out", str(out), "--resolution", "12",
            "--virtual", "64", "48", "57.6", "--device", "cpu"]
    assert main(args) == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS
    assert "from virtual camera field of view" in capsys.readouterr().out
    assert run_main(main, [str(tmp_path / "none.jpg"), "--checkpoint", str(checkpoint)]) == 2
    assert "none.jpg: photo not found" in capsys.readouterr().err
    assert run_main(main, [str(room.path), "--checkpoint", str(tmp_path / "absent.pt"), "--out", str(out)]) == 2
    assert "absent.pt does not exist" in capsys.readouterr().err
