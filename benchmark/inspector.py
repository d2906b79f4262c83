"""Look at prepared data or a prediction: ``dgs inspect``.

For one prepared frame (a shard row, or a scene/frame of a manifest) it writes

- ``<out>.png``: a panel of the input image, the sensor, rendered and amodal depth (one colour
  scale, metres), the near-surface points projected into the image and coloured by label (orange =
  inward/occupied, blue = outward/free) and the non-surface points coloured by depth;
- ``<out>.ply``: the frame's visible ground-truth mesh (grey; needs ``--root``, the dataset root)
  and its near- and non-surface points as unconnected vertices, in the frame's camera (OpenCV:
  x right, y down, z forward, metres). Every vertex has RGB colours and a ``kind`` property
  (:data:`KINDS`), so MeshLab and Open3D show the points over the mesh and scripts can select them;

and prints the frame's provenance and counts. For a prediction (``--prediction``, a file of a
method folder ``<method>/<dataset>/<scene>/<frame>.npz|.ply|.npy|.png``) it writes the Fig. 5-style
figure (:func:`benchmark.figures.frame_figure`: the predicted mesh beside the ground truth) and a
PLY of both meshes (``kind`` 4 = prediction, 3 = ground truth). ``--open`` shows the PLY in
Open3D's viewer when a display is available.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.cli import command_parser
from pipeline.errors import InputError, run_main
from pipeline.formats.ply import write_ply
from pipeline.frame_sample import FrameSample
from pipeline.ground_truth import visible_mesh
from pipeline.manifest import read_manifest
from pipeline.shards import ShardReader

KINDS = {"outward": 0, "inward": 1, "non_surface": 2, "mesh": 3, "prediction": 4}
"""The PLY's per-vertex ``kind``: 0/1 are the near-surface labels (SPEC §1), then the rest."""
COLOURS = {"outward": (40, 110, 230), "inward": (235, 110, 20), "non_surface": (60, 175, 75),
           "mesh": (185, 185, 185), "prediction": (215, 60, 60)}
"""RGB (uint8) of each kind in the PLY and the panel."""


@dataclass(frozen=True)
class FrameLocation:
    """A shard row; ``manifest`` is the manifest it was found through (None for a shard given directly)."""

    shard: Path
    row: int
    manifest: Path | None = None


def locate(source: Path, row: int, scene: str | None, frame: int | None) -> FrameLocation:
    """The shard row to inspect: ``source`` itself (a shard, row ``row``) or, for a manifest, the
    first ``ok`` frame matching ``scene`` and ``frame`` (either may be None = any)."""
    if not source.is_file():
        raise InputError(f"{source}: not found; give a shard (.h5) or a manifest (.parquet)")
    if source.suffix != ".parquet":
        return FrameLocation(source, row)
    table = read_manifest(source)
    keep = table["status"] == "ok"
    if scene is not None:
        keep &= table["scene_id"] == scene
    if frame is not None:
        keep &= table["frame_index"] == frame
    if not keep.any():
        scenes = sorted(table.loc[table["status"] == "ok", "scene_id"].unique())[:10]
        raise InputError(f"{source}: no usable frame for scene {scene or 'any'} frame "
                         f"{'any' if frame is None else frame}; usable scenes include {scenes}")
    hit = table[keep].iloc[0]
    return FrameLocation(source.parent / hit["shard"], int(hit["row"]), source)


def read_frame(location: FrameLocation) -> FrameSample:
    """The shard row as a :class:`FrameSample` (InputError naming the shard for a bad row)."""
    with ShardReader(location.shard) as reader:
        if not 0 <= location.row < len(reader):
            raise InputError(f"{location.shard}: row {location.row} does not exist (the shard has "
                             f"{len(reader)} rows, 0..{len(reader) - 1})")
        return reader[location.row]


def describe(sample: FrameSample, location: FrameLocation) -> list[str]:
    """Provenance and counts of a frame, one fact per line."""
    near_ok, non_ok = sample.near_surface_valid, sample.non_surface_valid
    labels = sample.near_surface_labels[near_ok]
    _, h, w = sample.image.shape

    def coverage(depth: np.ndarray) -> str:
        return f"{100 * np.isfinite(depth).mean():.1f} % of pixels"

    return [f"frame      {sample.dataset} {sample.split} {sample.scene_id} frame {sample.frame_index}",
            f"source     {sample.source_file}",
            f"shard      {location.shard} row {location.row}",
            f"image      {w}x{h} px, fx fy cx cy = {' '.join(f'{v:.1f}' for v in sample.intrinsics)}",
            f"near       {int(near_ok.sum())} valid of {len(near_ok)}: {int((labels == 1).sum())} inward, "
            f"{int((labels == 0).sum())} outward",
            f"non        {int(non_ok.sum())} valid of {len(non_ok)}",
            f"faces      {sample.visible_face_count} visible",
            f"depth      sensor {coverage(sample.depth)}, rendered {coverage(sample.rendered_depth)}, "
            f"amodal {coverage(sample.amodal_depth)}"]


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(N, 2) pixel coordinates (u right, v down) of camera-frame points (N, 3), metres."""
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    z = points[:, 2]
    return np.stack([fx * points[:, 0] / z + cx, fy * points[:, 1] / z + cy], axis=1)


def write_panel(sample: FrameSample, path: Path) -> Path:
    """The six-panel PNG of a frame (module docstring), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = np.moveaxis(sample.image, 0, -1)
    depths = {"sensor depth": sample.depth, "rendered depth": sample.rendered_depth,
              "amodal depth": sample.amodal_depth}
    finite = np.concatenate([d[np.isfinite(d)] for d in depths.values()] + [np.zeros(1, np.float32)])
    top = float(np.percentile(finite, 99)) or 1.0
    near = sample.near_surface_points[sample.near_surface_valid]
    labels = sample.near_surface_labels[sample.near_surface_valid]
    non = sample.non_surface_points[sample.non_surface_valid]
    h, w = image.shape[:2]
    fig, axes = plt.subplots(2, 3, figsize=(3 * w / 60 + 1.2, 2 * h / 60 + 0.8), dpi=100, layout="constrained")
    axes[0, 0].imshow(image)
    axes[0, 0].set_title("input image", fontsize=8)
    for ax, (name, depth) in zip(axes.flat[1:4], depths.items()):
        shown = ax.imshow(np.ma.masked_invalid(depth), cmap="viridis", vmin=0.0, vmax=top)
        ax.set_title(f"{name} (NaN white)", fontsize=8)
    fig.colorbar(shown, ax=axes, shrink=0.8, label="depth [m]")
    grey = image.mean(axis=2)
    axes[1, 1].imshow(grey, cmap="gray", vmin=0, vmax=510)
    uv = project(near, sample.intrinsics)
    for name, label in (("outward", 0), ("inward", 1)):
        pick = labels == label
        axes[1, 1].scatter(uv[pick, 0], uv[pick, 1], s=1.5, color=np.array(COLOURS[name]) / 255,
                           label=f"{name} ({int(pick.sum())})")
    axes[1, 1].legend(fontsize=6, loc="lower right", markerscale=4)
    axes[1, 1].set_title("near-surface points by label", fontsize=8)
    axes[1, 2].imshow(grey, cmap="gray", vmin=0, vmax=510)
    uv = project(non, sample.intrinsics)
    axes[1, 2].scatter(uv[:, 0], uv[:, 1], s=1.5, c=non[:, 2], cmap="viridis", vmin=0.0, vmax=top)
    axes[1, 2].set_title(f"non-surface points ({len(non)}) by depth", fontsize=8)
    for ax in axes.flat:
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.axis("off")
    fig.suptitle(f"{sample.dataset} {sample.scene_id} frame {sample.frame_index}", fontsize=9)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def write_parts(path: Path, parts: Sequence[tuple[str, np.ndarray, np.ndarray | None]]) -> dict[str, int]:
    """One PLY of ``parts`` (kind name, (N, 3) vertices, (F, 3) faces or None for points), each
    vertex coloured and tagged with its ``kind``; returns the vertex count per kind."""
    vertices, faces, kinds, base = [], [], [], 0
    for name, verts, tris in parts:
        vertices.append(np.asarray(verts, np.float32).reshape(-1, 3))
        kinds.append(np.full(len(vertices[-1]), KINDS[name], np.uint8))
        if tris is not None and len(tris):
            faces.append(np.asarray(tris, np.int64) + base)
        base += len(vertices[-1])
    kind = np.concatenate(kinds)
    rgb = np.array([COLOURS[name] for name in KINDS], np.uint8)[kind]
    write_ply(path, np.concatenate(vertices), np.concatenate(faces) if faces else np.zeros((0, 3), np.int64),
              vertex_data={"red": rgb[:, 0], "green": rgb[:, 1], "blue": rgb[:, 2], "kind": kind})
    return {name: int((kind == KINDS[name]).sum()) for name, _, _ in parts}


def frame_parts(sample: FrameSample, root: Path | None) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """The PLY parts of a prepared frame: its visible mesh (when ``root`` is given) and points."""
    near, labels = sample.near_surface_points, sample.near_surface_labels
    ok = sample.near_surface_valid
    parts = [("outward", near[ok & (labels == 0)], None), ("inward", near[ok & (labels == 1)], None),
             ("non_surface", sample.non_surface_points[sample.non_surface_valid], None)]
    if root is not None:
        vertices, faces = visible_mesh(sample.dataset, root, sample.scene_id, sample.visible_faces,
                                       sample.world_to_camera.astype(np.float64))
        parts.insert(0, ("mesh", vertices, faces))
    return parts


def show(ply: Path) -> None:
    """Open ``ply`` in Open3D's viewer (mesh and points), or say why not."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        print(f"--open: no display here (DISPLAY is unset); open {ply} in MeshLab or Open3D elsewhere")
        return
    import open3d as o3d

    mesh = o3d.io.read_triangle_mesh(str(ply))
    mesh.compute_vertex_normals()  # shaded, not flat grey
    points = o3d.io.read_point_cloud(str(ply))
    # seen as from the input camera (OpenCV: it looks along +z with y down), both faces drawn
    o3d.visualization.draw_geometries([mesh, points], window_name=ply.name, lookat=points.get_center(),
                                      front=[0.0, 0.0, -1.0], up=[0.0, -1.0, 0.0], zoom=0.7,
                                      mesh_show_back_face=True)


def inspect_prediction(prediction: Path, manifest: Path, root: Path, out: Path | None) -> tuple[Path, Path]:
    """Figure and PLY of a prediction file beside its frame's ground truth; returns their paths."""
    from benchmark.figures import frame_figure
    from benchmark.predictions import load_prediction
    from pipeline.testset import list_test_frames, read_test_frame

    *_, dataset, scene, stem = prediction.with_suffix("").parts
    if not stem.isdigit():
        raise InputError(f"{prediction}: expected a method folder's file <method>/<dataset>/<scene>/"
                         f"<frame index>.npz|.ply|.npy|.png (docs/benchmark.md)")
    refs = [r for r in list_test_frames(manifest, dataset, root)
            if r.scene_id == scene and r.frame_index == int(stem)]
    if not refs:
        raise InputError(f"{manifest}: no usable {dataset} test frame {scene} {int(stem)} (the frame "
                         f"{prediction} predicts); give the test manifest it was predicted from")
    frame = read_test_frame(refs[0])
    vertices, faces, kind = load_prediction(prediction.parents[2], frame)
    out = out or Path(f"{scene}_{int(stem):06d}_prediction")
    figure = frame_figure(frame.image, vertices, faces, frame.gt_vertices, frame.gt_faces, out.with_suffix(".png"),
                          focal=float(frame.intrinsics[0]), title=f"{refs[0].name} ({prediction.parents[2].name})")
    ply = out.with_suffix(".ply")
    counts = write_parts(ply, [("mesh", frame.gt_vertices, frame.gt_faces), ("prediction", vertices, faces)])
    print(f"frame      {refs[0].name} ({refs[0].shard} row {refs[0].row})\n"
          f"prediction {prediction} ({kind}): {counts['prediction']} vertices, {len(faces)} faces\n"
          f"truth      visible mesh: {counts['mesh']} vertices, {len(frame.gt_faces)} faces")
    return figure, ply


def main(argv: Sequence[str] | None = None) -> int:
    ap = command_parser("python -m benchmark.inspector", __doc__.split("\n")[0])
    ap.add_argument("source", type=Path, help="a shard (.h5) or a manifest (.parquet); with --prediction the "
                    "test manifest the prediction was made from")
    ap.add_argument("--row", type=int, default=0, help="row of the shard (a shard source)")
    ap.add_argument("--scene", help="scene/house id to pick from a manifest (default: the first usable)")
    ap.add_argument("--frame", type=int, help="frame index to pick from a manifest (default: the first usable)")
    ap.add_argument("--root", type=Path, help="the dataset root, for the visible mesh in the PLY "
                    "(required with --prediction; default: points only)")
    ap.add_argument("--prediction", type=Path, help="a prediction file <method>/<dataset>/<scene>/<frame>.npz")
    ap.add_argument("--out", type=Path, help="output path without suffix: writes OUT.png and OUT.ply "
                    "(default: <scene>_<frame> in the current folder)")
    ap.add_argument("--open", action="store_true", help="show the PLY in Open3D's viewer (needs a display)")
    args = ap.parse_args(argv)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.prediction is not None:
        if args.root is None:
            ap.error("--prediction needs --root (the dataset root, for the ground-truth mesh)")
        png, ply = inspect_prediction(args.prediction, args.source, args.root, args.out)
    else:
        location = locate(args.source, args.row, args.scene, args.frame)
        sample = read_frame(location)
        print("\n".join(describe(sample, location)))
        out = args.out or Path(f"{sample.scene_id}_{sample.frame_index:06d}")
        png, ply = write_panel(sample, out.with_suffix(".png")), out.with_suffix(".ply")
        counts = write_parts(ply, frame_parts(sample, args.root))
        print("ply        " + ", ".join(f"{n} {name}" for name, n in counts.items())
              + ("" if args.root else " (no mesh: give --root DATASET_ROOT)"))
    print(f"wrote      {png}\n           {ply}")
    if args.open:
        show(ply)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m benchmark.inspector"))
