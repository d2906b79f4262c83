"""Any photo in, mesh out: one image through a trained or converted DGS model (SPEC §5.12).

    dgs predict-image PHOTO [--focal F] [--checkpoint C] [--out DIR] [--resolution 128]

1. The photo (EXIF orientation applied) is cropped and resized to the model's virtual camera
   (default 256×192, f = 230.4 px) with the pipeline's resampler for dataset frames
   (:func:`pipeline.geometry.resample.resample_color`, principal point at the photo's centre).
2. Its focal length in photo pixels: ``--focal``; else the EXIF 35 mm-equivalent focal length,
   converted over the diagonal (f_px = f35 · diagonal_px / 43.27 mm, the full-frame diagonal); else
   the virtual camera's field of view is assumed (the largest centred 4:3 crop of the photo is the
   virtual view, as the release demo does). Which one was used is printed and recorded.
3. The model encodes the image once; its depth head (metres) bounds the grid: the frustum between
   the near plane and ``far = percentile_95(depth) · (1 + 0.1)``, as a camera-frame box.
4. The occupancy on the 128³ grid of that box (:func:`dgs_core.infer.query_grid`), marching cubes at
   0.5 (:func:`pipeline.geometry.isosurface.extract_mesh`), vertex colours read from the photo.

Outputs in ``--out`` (default ``<photo folder>/<photo stem>_dgs/``), all written atomically:
``mesh.ply`` (camera frame, OpenCV axes, metres; uchar red/green/blue), ``depth.png`` (16-bit,
millimetres, 0 = none) and ``depth.npy`` (float32 metres) of the depth head at the virtual camera,
``grid.npz`` (the :mod:`dgs_core.infer` grid format), ``input.png`` (the virtual-camera image),
``figure.png`` (input, depth, mesh from the camera and from the side) and ``prediction.json``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.geometry.isosurface import extract_mesh
from benchmark.figures import photo_figure
from dgs_core.camera import normalised_intrinsics
from dgs_core.checkpoint import load_model
from dgs_core.infer import RESOLUTION, Z_NEAR, encode_image, query_grid, resolve_device, write_grid
from pipeline.atomic import atomic_open, write_bytes_atomic, write_text_atomic
from pipeline.formats.images import encode_png16
from pipeline.formats.ply import write_ply
from pipeline.geometry.camera import virtual_intrinsics
from pipeline.geometry.resample import resample_color
from pipeline.cli import command_parser
from pipeline.errors import InputError, run_main
from pipeline.prepare_config import PrepareConfig

DEFAULT_CHECKPOINT = Path("data/prepared/models/dgs/final.pt")
"""The model ``make demo`` trains (``<work_root>/models/<train.experiment>/final.pt`` of the defaults)."""
FAR_PERCENTILE, FAR_MARGIN = 95.0, 0.1
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
EXIF_IFD, EXIF_FOCAL_35MM = 0x8769, 0xA405


@dataclass(frozen=True)
class VirtualCamera:
    """The camera the model was trained for (pixels; principal point at the image centre)."""

    width: int = PrepareConfig.width
    height: int = PrepareConfig.height
    focal: float = PrepareConfig.focal

    def intrinsics(self) -> np.ndarray:
        """(4,) fx, fy, cx, cy."""
        return virtual_intrinsics(self.width, self.height, self.focal)


@dataclass
class Reconstruction:
    """depth (H, W) metres at the virtual camera; occupancy grid with origin and cell (camera frame,
    metres); box_min/box_max (3,) and far (m); mesh vertices (V, 3) and faces (F, 3)."""

    depth: np.ndarray
    occupancy: np.ndarray
    origin: np.ndarray
    cell: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray
    far: float
    vertices: np.ndarray
    faces: np.ndarray


def read_photo(path: str | Path) -> tuple[np.ndarray, float | None]:
    """(h, w, 3) uint8 RGB, upright (EXIF orientation applied), and the EXIF 35 mm focal (mm) or None."""
    try:
        with Image.open(path) as img:
            f35 = img.getexif().get_ifd(EXIF_IFD).get(EXIF_FOCAL_35MM)
            rgb = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: photo not found") from None
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path}: not a readable image ({err}); pass a JPEG or PNG photo") from None
    return rgb, (float(f35) if f35 else None)


def choose_focal(width: int, height: int, focal: float | None, f35: float | None,
                 camera: VirtualCamera) -> tuple[float, str]:
    """The photo's focal length in pixels and where it came from (module docstring, step 2)."""
    if focal is not None:
        if not focal > 0:
            raise InputError(f"--focal must be a positive focal length in photo pixels, found {focal}")
        return float(focal), "--focal"
    if f35:
        return f35 * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM, f"EXIF 35 mm equivalent ({f35:g} mm)"
    scale = min(width / camera.width, height / camera.height)
    return camera.focal * scale, "virtual camera field of view (no --focal, no EXIF 35 mm focal length)"


def to_virtual(photo: np.ndarray, focal: float, camera: VirtualCamera) -> tuple[np.ndarray, float]:
    """(3, H, W) uint8 virtual-camera image of the photo, and the share of the virtual view the
    photo covers (< 1: the rest repeats the photo's edge pixels)."""
    h, w = photo.shape[:2]
    k = np.array([[focal, 0.0, w / 2], [0.0, focal, h / 2], [0.0, 0.0, 1.0]])
    image = resample_color(photo, k, camera.width, camera.height, camera.intrinsics())
    reach = focal / camera.focal  # photo pixels per virtual pixel
    cover = min(1.0, w / (camera.width * reach)) * min(1.0, h / (camera.height * reach))
    return np.ascontiguousarray(image.transpose(2, 0, 1)), cover


def depth_box(depth: np.ndarray, camera: VirtualCamera, z_near: float = Z_NEAR, percentile: float = FAR_PERCENTILE,
              margin: float = FAR_MARGIN) -> tuple[np.ndarray, np.ndarray, float]:
    """Camera-frame box (min (3,), max (3,), metres) around the frustum from ``z_near`` to
    ``far = percentile(depth) · (1 + margin)`` over the depth head's pixels beyond ``z_near``."""
    valid = depth[np.isfinite(depth) & (depth > z_near)]
    if valid.size == 0:
        raise InputError(f"the model's depth head predicts no depth beyond the near plane ({z_near} m) for this "
                         "image, so no grid can be placed; check the checkpoint (a trained or converted model)")
    far = float(np.percentile(valid, percentile)) * (1.0 + margin)
    fx, fy, cx, cy = camera.intrinsics()
    lo = np.array([-cx / fx * far, -cy / fy * far, z_near])
    hi = np.array([(camera.width - cx) / fx * far, (camera.height - cy) / fy * far, far])
    return lo, hi, far


def vertex_colours(vertices: np.ndarray, photo: np.ndarray, focal: float) -> np.ndarray:
    """(V, 3) uint8: the photo's pixel each camera-frame vertex (V, 3) projects to (clamped to the image)."""
    h, w = photo.shape[:2]
    if len(vertices) == 0:
        return np.zeros((0, 3), np.uint8)
    z = np.maximum(vertices[:, 2], 1e-6)
    col = np.clip(np.floor(focal * vertices[:, 0] / z + w / 2), 0, w - 1).astype(np.int64)
    row = np.clip(np.floor(focal * vertices[:, 1] / z + h / 2), 0, h - 1).astype(np.int64)
    return photo[row, col]


def reconstruct(net: torch.nn.Module, image: np.ndarray, camera: VirtualCamera, *, resolution: int = RESOLUTION,
                device: str | torch.device = "cpu", batch_points: int = 1 << 15) -> Reconstruction:
    """Encode ``image`` (3, H, W) uint8 at the virtual camera once, bound the grid by the depth head
    (:func:`depth_box`), query the occupancy and extract the mesh."""
    k = normalised_intrinsics(*camera.intrinsics(), camera.width, camera.height)
    enc = encode_image(net, image, k, device=device)
    if enc.depth is None:
        raise InputError("the model has no depth head (model.encoder.depth_head: false), which bounds the grid")
    depth = enc.depth[0, 0].float().cpu().numpy()
    box_min, box_max, far = depth_box(depth, camera)
    occupancy, origin, cell = query_grid(net, enc.features, k, box_min, box_max, resolution,
                                         batch_points=batch_points, device=device)
    vertices, faces = extract_mesh(occupancy, origin, cell)
    return Reconstruction(depth, occupancy, origin, cell, box_min, box_max, far, vertices, faces)


def write_outputs(out: Path, photo: np.ndarray, focal: float, image: np.ndarray, rec: Reconstruction,
                  camera: VirtualCamera, summary: dict) -> dict[str, str]:
    """Write every output file of the module docstring into ``out``; returns name → path."""
    out.mkdir(parents=True, exist_ok=True)
    files = {name: out / name for name in ("mesh.ply", "depth.png", "depth.npy", "grid.npz", "input.png",
                                           "figure.png", "prediction.json")}
    colours = vertex_colours(rec.vertices, photo, focal)
    write_ply(files["mesh.ply"], rec.vertices, rec.faces,
              vertex_data={c: colours[:, i] for i, c in enumerate(("red", "green", "blue"))})
    millimetres = np.where(np.isfinite(rec.depth), np.round(rec.depth * 1000.0), 0.0)
    write_bytes_atomic(files["depth.png"], encode_png16(np.clip(millimetres, 0, 65535).astype(np.uint16)))
    with atomic_open(files["depth.npy"], "wb") as f:
        np.save(f, rec.depth.astype(np.float32))
    write_grid(files["grid.npz"], rec.occupancy, rec.origin, rec.cell)
    with atomic_open(files["input.png"], "wb") as f:
        Image.fromarray(np.moveaxis(image, 0, -1)).save(f, format="PNG")
    photo_figure(image, rec.depth, rec.vertices, rec.faces, colours, files["figure.png"], focal=camera.focal,
                 title=f"{summary['photo']} · focal {summary['focal_px']:.1f} px ({summary['focal_source']})")
    summary["files"] = {name: str(path) for name, path in files.items()}
    write_text_atomic(files["prediction.json"], json.dumps(summary, indent=2) + "\n")
    return summary["files"]


def reconstruct_photo(net: torch.nn.Module, photo_path: str | Path, out: str | Path, *, focal: float | None = None,
                      camera: VirtualCamera = VirtualCamera(), resolution: int = RESOLUTION,
                      device: str | torch.device = "cpu", checkpoint: str = "") -> dict:
    """The whole path of the module docstring for a net already in eval mode on ``device``;
    returns the summary written to ``prediction.json``."""
    photo, f35 = read_photo(photo_path)
    f_px, source = choose_focal(photo.shape[1], photo.shape[0], focal, f35, camera)
    image, cover = to_virtual(photo, f_px, camera)
    rec = reconstruct(net, image, camera, resolution=resolution, device=device)
    summary = {"photo": str(photo_path), "checkpoint": checkpoint, "photo_size": [photo.shape[1], photo.shape[0]],
               "focal_px": f_px, "focal_source": source, "view_covered": cover, "virtual_camera": asdict(camera),
               "far": rec.far, "box_min": rec.box_min.tolist(), "box_max": rec.box_max.tolist(),
               "resolution": resolution, "vertices": len(rec.vertices), "faces": len(rec.faces)}
    write_outputs(Path(out), photo, f_px, image, rec, camera, summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (module docstring); run through run_main: expected errors exit 2 with one line."""
    p = command_parser("python -m dgs.predict_image", __doc__.splitlines()[0])
    prog = p.prog
    p.add_argument("photo", type=Path, help="a JPEG or PNG photo")
    p.add_argument("--focal", type=float, default=None, help="focal length in photo pixels (default: EXIF, "
                   "else the virtual camera's field of view)")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                   help="a trained (final.pt) or converted (dgs convert-release) checkpoint")
    p.add_argument("--out", type=Path, default=None, help="output folder (default <photo folder>/<stem>_dgs)")
    p.add_argument("--resolution", type=int, default=RESOLUTION, help="grid cells per axis")
    p.add_argument("--virtual", type=float, nargs=3, metavar=("W", "H", "F"), default=None,
                   help="the model's virtual camera: width, height, focal in pixels (default 256 192 230.4)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    a = p.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    camera = VirtualCamera(int(a.virtual[0]), int(a.virtual[1]), a.virtual[2]) if a.virtual else VirtualCamera()
    out = a.out or a.photo.parent / f"{a.photo.stem}_dgs"
    device = resolve_device(a.device)
    net, _ = load_model(a.checkpoint, map_location=device)
    summary = reconstruct_photo(net, a.photo, out, focal=a.focal, camera=camera, resolution=a.resolution,
                                device=device, checkpoint=str(a.checkpoint))
    print(f"{prog}: focal {summary['focal_px']:.1f} px from {summary['focal_source']}")
    if summary["view_covered"] < 1.0:
        print(f"{prog}: the photo covers {100 * summary['view_covered']:.0f} % of the virtual view; the rest repeats "
              "its edge pixels")
    if not summary["faces"]:
        print(f"{prog}: the occupancy never crosses 0.5 in the box: the mesh is empty")
    print(f"{prog}: {summary['faces']} faces within {summary['far']:.2f} m → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main, prog="python -m dgs.predict_image"))
