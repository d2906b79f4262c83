"""Expected errors through the command line (exit 2, one line, no traceback), two jobs on one scene
folder, ids that would become paths downstream, and bad prediction files in an evaluate run."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.evaluate import Settings, evaluate
from benchmark.evaluate import main as evaluate_main
from pipeline.errors import EXIT_BUG, EXIT_USER_ERROR, InputError, run_main
from pipeline.formats.errors import FormatError
from pipeline.formats.ply import write_ply
from pipeline.manifest import make_manifest, write_manifest
from pipeline.prepare import main as prepare_main
from pipeline.testset import list_test_frames, read_test_frame

REPO = Path(__file__).resolve().parents[1]


# -- one mechanism for expected errors ------------------------------------------------------------
def test_run_main_maps_expected_errors_to_2_and_bugs_to_1(capsys) -> None:
    def bad_input(argv):
        raise FormatError("scene.sens", "expected .sens version 4, found 3.", offset=0, hint="re-export it.")

    def bug(argv):
        return 1 // 0

    assert run_main(bad_input, [], prog="tool") == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err == "tool: error: scene.sens (byte 0): expected .sens version 4, found 3. What to do: re-export it.\n"
    assert run_main(bad_input, ["--debug"], prog="tool") == EXIT_USER_ERROR
    assert "Traceback" in capsys.readouterr().err  # --debug shows where an expected error came from
    assert run_main(bug, [], prog="tool") == EXIT_BUG
    assert "ZeroDivisionError" in capsys.readouterr().err
    assert run_main(lambda argv: None, []) == 0


def test_every_entry_point_exits_2_with_one_line_for_a_missing_file(tmp_path: Path) -> None:
    """Each `python -m` entry point, run as a script (runpy, in one child process to save start-up)."""
    missing = tmp_path / "missing"
    cases = {
        "pipeline.prepare": ["--dataset", "scannet", "--root", str(missing), "--split", "train",
                             "--scene", "scene0000_00", "--out", str(tmp_path / "out"), "--workers", "0"],
        "pipeline.manifest": ["summary", str(missing / "manifest.parquet")],
        "pipeline.synthetic": ["--root", str(tmp_path / "syn"), "--set", "frames_per_scene=0"],
        "dgs_core.train": ["--config", str(missing / "x.yaml"), "--train-manifest", "t", "--val-manifest", "v",
                           "--out", str(tmp_path / "run")],
        "dgs_core.infer": ["--checkpoint", str(missing / "final.pt"), "--manifest", "m", "--root", "r",
                           "--out", str(tmp_path / "pred")],
        "benchmark.evaluate": ["--method", f"dgs={missing}", "--manifest", f"scannet={missing / 'm.parquet'}",
                               "--root", f"scannet={missing}", "--out", str(tmp_path / "ev")],
        "benchmark.report": [str(missing / "per_frame.csv"), "--out", str(tmp_path / "rep")],
        "benchmark.ablation": [str(missing / "per_frame.csv"), "--runs", str(missing), "--out", str(tmp_path / "ab")],
    }
    script = textwrap.dedent("""
        import contextlib, io, json, runpy, sys, warnings
        warnings.simplefilter("ignore")
        results = {}
        for module, argv in json.loads(sys.argv[1]).items():
            sys.argv, err = [module, *argv], io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    runpy.run_module(module, run_name="__main__", alter_sys=True)
                    status = 0
                except SystemExit as exc:
                    status = exc.code
            results[module] = [status, err.getvalue()]
        print(json.dumps(results))
    """)
    done = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for module, (status, err) in results.items():
        lines = [line for line in err.splitlines() if line.strip()]
        assert status == 2 and len(lines) == 1 and "Traceback" not in err, (module, status, err)
        assert "missing" in lines[0] or "frames_per_scene" in lines[0], (module, err)


# -- two jobs, one folder -------------------------------------------------------------------------
def test_second_prepare_job_on_a_folder_fails_naming_the_first_ones_pid(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "out" / "scannet" / "train" / "scene0000_00"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pipeline.locking import exclusive_lock\n"
         "with exclusive_lock(sys.argv[1], 'prepared'):\n    print('locked', flush=True)\n    time.sleep(60)\n",
         str(folder)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "locked"
        status = run_main(prepare_main, ["--dataset", "scannet", "--root", str(tmp_path / "raw"), "--split", "train",
                                         "--scene", "scene0000_00", "--out", str(tmp_path / "out"),
                                         "--workers", "0"], prog="prepare")
        err = capsys.readouterr().err
        assert status == 2 and f"{folder}: already being prepared by PID {holder.pid}" in err, err
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the dead job's lock: the next job gets past it (to the missing input)
    assert run_main(prepare_main, ["--dataset", "scannet", "--root", str(tmp_path / "raw"), "--split", "train",
                                   "--scene", "scene0000_00", "--out", str(tmp_path / "out"), "--workers", "0"]) == 2
    assert "not found" in capsys.readouterr().err


# -- ids and names that become folders downstream -------------------------------------------------
def test_manifest_scene_id_that_is_a_path_is_refused_naming_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "manifest.parquet"
    write_manifest(make_manifest([{"dataset": "scannet", "scene_id": "../../../tmp/x", "frame_index": 0,
                                   "split": "test", "shard": "s.h5", "row": 0, "status": "ok"}]), path)
    with pytest.raises(InputError, match=r"scene id \(from .*manifest\.parquet\).*\.\./\.\./\.\./tmp/x"):
        list_test_frames(path, "scannet", tmp_path)


@pytest.mark.parametrize("name", ["../outside", "/abs", "a/b", ".."])
def test_method_names_that_are_paths_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="method name"):
        evaluate([], Settings({name: tmp_path}, ("release",), tmp_path / "out"))


# -- bad prediction files -------------------------------------------------------------------------
def test_bad_prediction_files_are_unreadable_rows_and_the_run_goes_on(prepared_tiny, tmp_path: Path,
                                                                      capsys) -> None:
    refs = list_test_frames(prepared_tiny.manifest("scannet", "test"), "scannet", prepared_tiny.scannet_root)[:5]
    method = tmp_path / "method"
    stems = [method / r.dataset / r.scene_id / f"{r.frame_index:06d}" for r in refs]
    stems[0].parent.mkdir(parents=True)
    rng = np.random.default_rng(0)
    stems[0].with_suffix(".npy").write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    np.save(stems[1].with_suffix(".npy"), np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    stems[2].with_suffix(".ply").write_bytes(b"ply\nformat binary_little_endian 1.0\n" + rng.bytes(500))
    stems[3].with_suffix(".npz").write_bytes(pickle.dumps({"occupancy": 1}))
    frame = read_test_frame(refs[4])
    vertices = np.vstack([frame.gt_vertices, [[np.nan, 0.0, 1.0]]])
    faces = np.vstack([frame.gt_faces, [[0, 1, len(vertices) - 1]]])
    write_ply(stems[4].with_suffix(".ply"), vertices, faces)

    out = tmp_path / "out"
    manifest = f"scannet={prepared_tiny.manifest('scannet', 'test')}"
    # 20k samples: an apartment frame sees ~10 m², and two independent 2k-sample sets of the same
    # surface would sit ~7 cm apart, beyond τ = 5 cm (the ground truth scored ~0.55 against itself)
    assert evaluate_main(["--method", f"m={method}", "--manifest", manifest, "--root",
                          f"scannet={prepared_tiny.scannet_root}", "--protocols", "release", "--samples", "20000",
                          "--out", str(out)]) == 0
    err = capsys.readouterr().err
    table = pd.read_csv(out / "per_frame.csv")
    rows = {int(r.frame_index): r for r in table.itertuples()}
    for ref, stem, ext in zip(refs[:4], stems, (".npy", ".npy", ".ply", ".npz")):
        row = rows[ref.frame_index]
        assert row.prediction == "unreadable" and row.fit_reason == "unreadable_prediction", row
        # a failure of the method: penalized under the protocol's default policy (F1 0, distances at the clamp)
        assert row.missing == "penalize" and row.fit_f1 == 0 and str(stem.with_suffix(ext)) in err
    assert "pickled" in err or "allow_pickle" in err  # the object array was refused, not unpickled
    nan_row = rows[refs[4].frame_index]
    assert nan_row.prediction == "mesh" and nan_row.nan_vertices == 1 and nan_row.fit_f1 > 0.8
    assert f"{refs[4].name}: 1 non-finite vertices dropped" in err
    assert (table["prediction"] == "missing").sum() == len(table) - 5  # the other frames: no file
