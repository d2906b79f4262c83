"""The speed scripts' reference implementations agree with the project's own code (tiny sizes).

Each script under ``benchmarks/`` quotes a speed-up of our code over a reference implementation; a
speed-up only means something if both compute the same thing. Each test runs one reference at a
tiny size next to the project's function and checks they agree: bit for bit where both do the
same arithmetic, otherwise within a stated tolerance (the reason is given at each tolerance).
``bench_loader`` and ``bench_infer`` have no reference; they are checked for their clear exit when
the prepared data they read is missing.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import bench_dgs_op, bench_evaluate, bench_infer, bench_loader, bench_metrics, bench_prepare
from benchmarks import bench_sens_reader, bench_sphere_trace, bench_study_step, bench_train_step

REPO = Path(__file__).resolve().parents[1]


# -- bench_sens_reader: official_style_read vs SensReader -----------------------------------------------
def test_official_style_reader_decodes_what_sens_reader_decodes(tmp_path) -> None:
    from pipeline.formats.sens import SensReader

    path = tmp_path / "tiny.sens"
    # 9 frames: frame 7 has the invalid (-inf) pose; ~5 % of the depth pixels are holes
    bench_sens_reader.write_file(path, 9, seed=0, color_size=(96, 72), depth_size=(40, 30), progress=False)
    official = list(bench_sens_reader.official_style_read(path))
    with SensReader(path) as reader:
        assert len(official) == len(reader) == 9
        for i, (pose, color, depth) in enumerate(official):
            ours = reader.read_frame(i)
            np.testing.assert_array_equal(pose, ours.camera_to_world)  # -inf == -inf for frame 7
            np.testing.assert_array_equal(color, ours.color)  # same JPEG bytes, same libjpeg decode
            # Same metres bit for bit (uint16 / the float32 depth shift); a hole is 0 in the official
            # style and NaN in ours.
            holes = np.isnan(ours.depth)
            assert holes.any()
            np.testing.assert_array_equal(depth == 0, holes)
            np.testing.assert_array_equal(depth[~holes], ours.depth[~holes])
    assert not np.isfinite(official[7][0]).all()


# -- bench_dgs_op: the grid_sample baselines compute what the DGS op computes ------------------------------
# float64: the two sides differ only by rounding (~1e-15; 1e-10 leaves room for uv -> points -> uv).
# float32 (the benchmark's dtype): rounding of the same sums, 1e-5 of values of size ~1.
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_grid_sample_baselines_compute_what_dgs_computes(dtype, tol) -> None:
    from dgs_core.ops import dgs_sample

    feats, pts, intr, uv, grad4 = bench_dgs_op.make_inputs(2, 5, 6, 7, 300, dtype=dtype)
    gval = grad4[..., 0, :].transpose(1, 2)[..., None].contiguous()  # (B, C, Q, 1)

    f_dgs = feats.clone().requires_grad_(True)
    out = dgs_sample(f_dgs, pts, intr)  # (B, Q, 4, C): value, d/dx, d/dy, d/dz
    (out[:, :, 0, :] * grad4[:, :, 0, :]).sum().backward()
    f_gs = feats.clone().requires_grad_(True)
    value = bench_dgs_op.grid_sample_value(f_gs, uv)
    value.backward(gval)
    # the value and its feature gradient (the "grid_sample fwd+bwd (value)" case)
    torch.testing.assert_close(value[..., 0].transpose(1, 2), out[:, :, 0, :].detach(), atol=tol, rtol=tol)
    torch.testing.assert_close(f_gs.grad, f_dgs.grad, atol=tol, rtol=tol)

    # the image-plane gradient of the autograd mode: d value / du = (d value / dx) * z / a_u, likewise v
    _, duv = bench_dgs_op.grid_sample_value_and_uv_gradient(feats, uv, gval)
    z = pts[..., 2:]
    phi_u = out[:, :, 1, :].detach() * z / intr[:, None, 0:1]
    phi_v = out[:, :, 2, :].detach() * z / intr[:, None, 1:2]
    g = grad4[:, :, 0, :]
    expected = torch.stack([(phi_u * g).sum(-1), (phi_v * g).sum(-1)], -1)
    torch.testing.assert_close(duv.detach(), expected, atol=tol, rtol=tol)
    # the sample covers the clamped band outside the image, where both derivatives are 0
    assert (uv.abs() > 1).any() and (expected == 0).any()


# -- bench_train_step: the dgs modes' parameter gradients vs the reference, autograd ----------------------
def test_dgs_modes_give_autograds_parameter_gradients() -> None:
    args = bench_train_step.build_parser().parse_args(
        ["--batch", "2", "--near", "64", "--far", "16", "--channels", "8", "--hidden", "16",
         "--height", "64", "--width", "64", "--widths", "4", "4", "4", "4", "4", "--threads", "1",
         "--modes", "autograd", "dgs", "dgs_storeJ", "dgs_forward"])
    err = bench_train_step.gradient_agreement(args)
    assert set(err) == {"dgs", "dgs_storeJ", "dgs_forward"}
    # float32, same model and batch: only the summation order differs (measured ~2e-7 here, 1e-7 at the
    # benchmark's shapes). The "numerical" mode is not checked: central differences with h = 1 mm are
    # an approximation by design (1e-2 at the benchmark's shapes, ~0.5 at this size where a few of the
    # 32 far points whose stencil straddles a feature-cell edge dominate the max-norm).
    for mode, e in err.items():
        assert e < 1e-5, (mode, e)


# -- bench_metrics: the Atlas-style delineation, sampling and metrics vs ours -----------------------------
@pytest.mark.parametrize("shift", [0.0, 0.2])
def test_atlas_style_delineation_and_metrics_match_ours(shift) -> None:
    from benchmark.metrics import mesh_metrics
    from benchmark.protocols import delineate
    from benchmark.sampling import sample_surface

    gt_v, gt_f, pred_v, pred_f, t_wc, lo, hi = bench_metrics.make_frame(2000, shift)
    keep = delineate(pred_v, pred_f, intrinsics=bench_metrics.K, width=bench_metrics.W,
                     height=bench_metrics.H, gt_box_min=lo, gt_box_max=hi, camera_to_world=t_wc)
    assert keep.any() and not keep.all()
    np.testing.assert_array_equal(bench_metrics.atlas_style_delineate(pred_v, pred_f, lo, hi, t_wc), keep)

    pred = sample_surface(pred_v, pred_f[keep], 3000, seed=1)
    gt = sample_surface(gt_v, gt_f, 3000, seed=0)
    ours, ref = mesh_metrics(pred, gt), bench_metrics.atlas_style_metrics(pred, gt)
    # Same points, exact nearest neighbours both ways: the same numbers up to summation rounding.
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    assert 0 < ref["recall"] < 1


def test_atlas_style_sampling_has_our_distribution() -> None:
    from scipy.stats import chi2_contingency

    from benchmark.sampling import sample_surface

    v, f = bench_metrics.room(2000)
    n = 20_000
    ref = bench_metrics.atlas_style_sample(v, f, n, seed=0)
    ours = sample_surface(v, f, n, seed=0)
    # Not the same points (per-face rounded counts vs one cumulative-area draw), so: the count is n up
    # to the rounding of each face's share, every point lies in the room's bounds, and the two
    # point sets fill 4×4×4 boxes alike (chi-square homogeneity; fixed seeds, so deterministic).
    assert abs(len(ref) - n) <= len(f) / 2
    lo, hi = v.min(0) - 1e-9, v.max(0) + 1e-9
    assert np.all((ref >= lo) & (ref <= hi))
    edges = [np.linspace(a, b, 5) for a, b in zip(lo, hi)]
    h_ref, h_ours = np.histogramdd(ref, edges)[0].ravel(), np.histogramdd(ours, edges)[0].ravel()
    used = h_ref + h_ours > 0
    assert chi2_contingency(np.stack([h_ref[used], h_ours[used]])).pvalue > 1e-3


# -- bench_prepare: reference_prepare_frame vs prepare_frame -----------------------------------------------
def test_reference_prepare_frame_gives_prepare_frames_record() -> None:
    from pipeline.frames import PrepareConfig, SceneGeometry, prepare_frame

    cfg = PrepareConfig(width=64, height=48, focal=57.6, near_surface_points=512, non_surface_points=128,
                        raycast_threads=1)
    mesh, frames = bench_prepare.make_inputs(2, seed=0, edge=0.2, cfg=cfg, progress=False)
    scene = SceneGeometry.from_mesh(mesh.vertices, mesh.faces, mesh.face_labels, cfg.structure_labels)
    for frame in frames:
        ours = prepare_frame(scene, frame, cfg, dataset="scannet", scene_id="bench", split="train")
        ref = bench_prepare.reference_prepare_frame(mesh.vertices, mesh.faces, mesh.face_labels, frame, cfg)
        # Same code (resampling) or the same rules on the same float64 inputs (culling) and the same
        # random stream drawn in the same order (sampling): bit for bit.
        for key in ("image", "depth", "intrinsics", "world_to_camera", "visible_faces",
                    "near_surface_points", "near_surface_labels", "near_surface_valid",
                    "non_surface_points", "non_surface_valid"):
            np.testing.assert_array_equal(getattr(ref, key), getattr(ours, key), err_msg=key)
        assert ref.non_surface_valid.all() and ref.visible_faces.size > 0
        # Embree intersects in float32, our rasteriser in float64 rounded to float32: the same depth
        # up to a few float32 ulps (measured ≤ 2e-6 relative, grazing rays the worst); same holes.
        for key in ("rendered_depth", "amodal_depth"):
            np.testing.assert_allclose(getattr(ref, key), getattr(ours, key), rtol=1e-5, atol=0,
                                       equal_nan=True, err_msg=key)


# -- bench_loader, bench_infer: no reference; missing prepared data is an expected error -------------------
@pytest.mark.parametrize("script", [bench_loader, bench_infer, bench_evaluate])
def test_missing_prepared_data_exits_2_with_a_message(script, tmp_path, capsys) -> None:
    argv = ["--manifest", str(tmp_path / "nothing" / "manifest.parquet")]
    if script is not bench_loader:
        argv += ["--root", str(tmp_path / "no_root")]
    with pytest.raises(SystemExit) as exc:
        script.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "manifest.parquet" in err and "make demo" in err and "Traceback" not in err


# -- bench_infer: dense and coarse to fine on the same frames --------------------------------------------
def test_bench_infer_compares_dense_and_coarse_to_fine(prepared_tiny, tmp_path) -> None:
    """A 64³ grid (coarse to fine starts at stride 2) of a checkpoint's tiny model: the dense count
    is the frustum's cells, coarse to fine queries fewer, and each grid point's side of 0.5 is compared."""
    from dgs_core.checkpoint import capture_rng, save_checkpoint
    from dgs_core.experiment import load_experiment, to_dict
    from dgs_core.model import DGSNet

    exp = load_experiment([REPO / "config" / "experiments" / "tiny.yaml"])
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", model=DGSNet(exp.model), step=0, epoch=0, position=0,
                           config=to_dict(exp), rng=capture_rng())
    out = tmp_path / "infer.json"
    assert bench_infer.main(["--manifest", str(prepared_tiny.manifest("scannet", "test")), "--root",
                             str(prepared_tiny.scannet_root), "--frames", "1", "--repeats", "1", "--release-frames",
                             "0", "--resolution", "64", "--checkpoint", str(ckpt), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    dense, refined = result["tiny_dense_queries"][0], result["tiny_coarse_to_fine_queries"][0]
    assert dense == round(result["queried_fraction"][0] * 64 ** 3)
    assert 0 < refined < dense and result["tiny_weights"] == str(ckpt)
    assert len(result["tiny_sides_differ"]) == 1 and 0 <= result["tiny_sides_differ"][0] < dense


# -- bench_evaluate: the "before" path (no reuse, cKDTree, every mesh written) vs the default ---------
def test_evaluation_before_and_after_the_reuse_give_the_same_table(prepared_tiny, tmp_path) -> None:
    from pipeline.testset import list_test_frames, read_test_frame

    frames = list_test_frames(prepared_tiny.manifest("scannet", "test"), "scannet", prepared_tiny.scannet_root)[:2]
    method = tmp_path / "noisy"
    rng = np.random.default_rng(0)
    for ref in frames:  # a noisy grid over each frame's GT box: floaters, far queries
        lo, hi = read_test_frame(ref).gt_box()
        folder = method / ref.dataset / ref.scene_id
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / f"{ref.frame_index:06d}.npz", occupancy=rng.random((20, 20, 20)).astype(np.float16),
                 origin=lo, cell=(hi - lo) / 19)
    runs = {name: bench_evaluate.run(frames, {"noisy": method}, ("dgs-release", "dgs-paper"), tmp_path / name,
                                     before=name == "before") for name in ("before", "after")}
    pd.testing.assert_frame_equal(runs["before"]["table"], runs["after"]["table"], check_exact=True)
    stages = runs["before"]["stages"]
    assert set(stages) == set(bench_evaluate.STAGES) | {"all-in"}
    assert stages["write meshes"] > 0 and runs["after"]["stages"]["write meshes"] == 0
    assert all(v <= stages["all-in"] for v in stages.values())
# -- bench_sphere_trace: naive_parallel_trace and grid_and_marching_cubes vs dgs_core.sphere_trace -------
@pytest.mark.parametrize("scene", list(bench_sphere_trace.SCENES))
def test_naive_tracing_is_the_tracer_without_coarse_levels_and_the_exact_depth_agrees(scene) -> None:
    """naive_parallel_trace is trace(start_level=0, alpha=1) bit for bit (same arithmetic): the
    query counts the benchmark divides are counts of the same algorithm. Its hits lie in front of
    the scene's exact depth (never past a surface) and hit the same pixels but for the silhouettes."""
    from dgs_core.sphere_trace import TraceConfig, pixel_rays, trace

    s, (w, h) = bench_sphere_trace.SCENES[scene], (40, 30)
    k = (0.9 * w, 0.9 * w, w / 2, h / 2)
    depth, queries = bench_sphere_trace.naive_parallel_trace(s.sdf, w, h, k, z_far=s.z_far)
    plain = trace(s.sdf, w, h, k, TraceConfig(start_level=0, alpha=1.0, z_far=s.z_far))
    assert queries == plain.queries
    np.testing.assert_array_equal(depth, plain.depth.numpy())
    exact = s.exact_depth(pixel_rays(w, h, k).numpy())
    both = np.isfinite(depth) & np.isfinite(exact)
    assert both.mean() > 0.2 and (exact[both] - depth[both] > -1e-5).all()
    assert (np.isfinite(depth) != np.isfinite(exact)).mean() < 0.05


def test_grid_and_marching_cubes_dense_and_coarse_to_fine_agree_with_the_exact_depth() -> None:
    from dgs_core.sphere_trace import pixel_rays

    s, (w, h) = bench_sphere_trace.SCENES["object"], (40, 30)
    k = (0.9 * w, 0.9 * w, w / 2, h / 2)
    dense, q_dense = bench_sphere_trace.grid_and_marching_cubes(s.sdf, w, h, k, s.box, resolution=96)
    fine, q_fine = bench_sphere_trace.grid_and_marching_cubes(s.sdf, w, h, k, s.box, resolution=96,
                                                             grid="coarse_to_fine")
    assert q_fine < q_dense <= 96 ** 3
    np.testing.assert_allclose(fine, dense, atol=1e-6)  # the same mesh where the coarse lattice sees it
    exact = s.exact_depth(pixel_rays(w, h, k).numpy())
    both = np.isfinite(dense) & np.isfinite(exact)
    cell = (np.asarray(s.box[1]) - np.asarray(s.box[0])) / 96
    assert both.sum() > 100 and np.median(np.abs(dense[both] - exact[both])) < cell.max() / 4


# -- bench_study_step: no reference; it times the study's experiments on prepared frames --------------------
def test_study_step_times_every_experiment_and_names_missing_data(prepared_tiny, tmp_path, capsys) -> None:
    out = tmp_path / "steps.json"
    assert bench_study_step.main(["--manifest", str(prepared_tiny.manifest("scannet", "train")), "--overlay", "tiny",
                                  "--experiments", "dgs", "sdf", "--steps", "1", "--threads", "1",
                                  "--json", str(out)]) == 0
    import json

    times = json.loads(out.read_text())
    assert set(times) == {"dgs", "sdf"} and all(t > 0 for t in times.values())
    with pytest.raises(SystemExit) as exc:
        bench_study_step.main(["--manifest", str(tmp_path / "none" / "manifest.parquet")])
    assert exc.value.code == 2 and "config/sdf_study.yaml" in capsys.readouterr().err
