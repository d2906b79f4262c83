"""benchmarks/gpu_check.py: its CPU smoke run writes every part, a failing part is recorded without
ending the run, and the goals and tables are judged from the measured numbers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bench_train_step, gpu_check
from benchmarks import gpu_check_report as report

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_cpu_smoke_writes_every_part(tmp_path: Path) -> None:
    out = tmp_path / "check"
    proc = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--cpu-smoke", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "gpu_check.json").read_text())
    assert data["meta"]["mode"] == "cpu-smoke"
    assert {p: data["parts"][p]["status"] for p in gpu_check.PARTS} == dict.fromkeys(gpu_check.PARTS, "ok")

    tests = data["parts"]["tests"]
    assert tests["files"] == gpu_check.cuda_test_files()
    assert {f"tests/test_{name}.py" for name in ("dgs_op_triton", "dgs_op_3d_and_errors", "gradient_modes",
                                                  "train")} <= set(tests["files"])
    assert "tests/test_gpu_check.py" not in tests["files"]
    assert tests["counts"]["skipped"] == len(tests["tests"]) >= 10
    assert all("needs a CUDA GPU" in t["message"] for t in tests["tests"])
    assert any(report.AUTOGRAD_TEST in t["id"] for t in tests["tests"])

    op = data["parts"]["op"]
    assert {report.DGS_CASE, report.GS_CASE, report.DOUBLE_CASE} <= set(op["cases"])
    assert op["bandwidth"]["forward"]["gbs"] > 0 and op["bandwidth"]["peak_gbs"] is None
    modes = data["parts"]["train"]["modes"]
    assert list(modes) == list(bench_train_step.MODES)
    assert all(m["min_ms"] > 0 and m["peak_mib"] > 0 for m in modes.values()), modes
    variants = data["parts"]["infer"]["variants"]
    expected = [(grid, amp) for amp in (False, True) for grid in ("dense", "coarse_to_fine")]
    assert [(v["grid"], v["amp"]) for v in variants] == expected
    assert all(0 < v["queries"] <= 16 ** 3 for v in variants)

    md = (out / "gpu_check.md").read_text()
    assert "CPU smoke run" in md and md.count("Status: ok") == 4
    for title, _ in report.SECTIONS.values():
        assert f"## {title}" in md
    assert {g["goal"] for g in data["goals"]} >= {"CUDA tests pass", "DGS fwd+bwd ≤ 1.3× grid_sample fwd+bwd"}
    assert "skipped" in (out / "cuda_tests.log").read_text()


def test_a_failing_part_is_recorded_and_the_next_one_runs(tmp_path: Path) -> None:
    """A bad experiment key makes the train part's worker fail; infer (run after it) fails the same
    way, each with the error named; the run ends with status 1 and both files written."""
    rc = gpu_check.main(["--cpu-smoke", "--out", str(tmp_path), "--only", "train", "infer",
                         "--set", "model.no_such_key=1"])
    assert rc == 1
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    for part in ("train", "infer"):
        assert data["parts"][part]["status"] == "error" and "no_such_key" in data["parts"][part]["error"]
    assert data["parts"]["tests"] == {"status": "not run"} and data["parts"]["op"] == {"status": "not run"}
    md = (tmp_path / "gpu_check.md").read_text()
    assert md.count("Status: error") == 2 and md.count("Status: not run") == 2


def test_without_cuda_the_gpu_mode_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "--cpu-smoke" in capsys.readouterr().err
    assert not (tmp_path / "gpu_check.json").exists()


def _parts(**parts) -> dict:
    base = {p: {"status": "not run"} for p in gpu_check.PARTS}
    return {**base, **parts}


def test_goals_are_judged_from_the_numbers() -> None:
    bw = {k: {"ms": 1.0, "gbs": 1000.0, "fraction": f} for k, f in (("forward", 0.7), ("backward", 0.5))}
    op = {"status": "ok", "cases": {report.DGS_CASE: {"median_ms": 1.2}, report.GS_CASE: {"median_ms": 1.0}},
          "failed": {report.DOUBLE_CASE: "derivative for grid_sampler_2d_backward is not implemented"},
          "bandwidth": {**bw, "peak_gbs": 2000.0}}
    modes = {"nograd": {"min_ms": 100.0}, "dgs": {"min_ms": 130.0}, "autograd": {"error": "RuntimeError: x"}}
    tests = {"status": "failed", "counts": {"passed": 3, "failed": 1, "error": 0, "skipped": 0},
             "tests": [{"id": f"tests.test_gradient_modes::t[{report.AUTOGRAD_TEST}-False-1e-10]",
                        "outcome": "failed", "message": "RuntimeError: not implemented"}]}
    found = {g["goal"]: g for g in report.goals(_parts(op=op, tests=tests, train={"status": "ok", "modes": modes}))}
    assert found["DGS fwd+bwd ≤ 1.3× grid_sample fwd+bwd"]["met"] is True
    assert found["DGS kernels ≥ 60 % of the device's memory bandwidth"]["met"] is False
    assert "dgs gradient-term overhead ≤ autograd's" not in found  # autograd failed: nothing to compare
    assert found["CUDA tests pass"]["met"] is False
    autograd = found["autograd mode (grid_sample double backward) runs"]
    assert autograd["met"] is False
    assert "test: RuntimeError" in autograd["measured"] and "op: derivative" in autograd["measured"]

    modes["autograd"] = {"min_ms": 150.0}
    found = {g["goal"]: g for g in report.goals(_parts(train={"status": "ok", "modes": modes}))}
    assert found["dgs gradient-term overhead ≤ autograd's"]["met"] is True  # 30 ms vs 50 ms
    assert found["autograd mode (grid_sample double backward) runs"]["met"] is True
    modes["autograd"] = {"min_ms": 90.0}  # noise above the gradient term: nothing to judge
    found = {g["goal"]: g for g in report.goals(_parts(train={"status": "ok", "modes": modes}))}
    assert found["dgs gradient-term overhead ≤ autograd's"]["met"] is None
    bw["backward"]["fraction"] = None
    assert [g["met"] for g in report.goals(_parts(op={**op, "status": "ok"})) if "bandwidth" in g["goal"]] == [None]


def test_junit_outcomes(tmp_path: Path) -> None:
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuites><testsuite><testcase classname="tests.test_a" name="t[cuda]" time="1.5"/>'
                   '<testcase classname="tests.test_a" name="u" time="0"><failure message="AssertionError: 2 != 3&#10;'
                   'more">tb</failure></testcase><testcase classname="tests.test_b" name="v" time="0">'
                   '<skipped message="needs a CUDA GPU"/></testcase></testsuite></testsuites>')
    assert gpu_check._junit_outcomes(xml) == [
        {"id": "tests.test_a::t[cuda]", "outcome": "passed", "message": "", "seconds": 1.5},
        {"id": "tests.test_a::u", "outcome": "failed", "message": "AssertionError: 2 != 3", "seconds": 0.0},
        {"id": "tests.test_b::v", "outcome": "skipped", "message": "needs a CUDA GPU", "seconds": 0.0}]


def test_release_sizes_come_from_the_experiment() -> None:
    """GPU mode measures the release: batch 32, 2048+512 points, the 256×192 virtual camera, the op
    on the stride-2 map of 256 channels; --set changes them (one source: the experiment)."""
    args = gpu_check.build_parser().parse_args(["--out", "x"])
    sizes = gpu_check.for_args(args, gpu_check.load_experiment_for(args))
    assert (sizes.device, sizes.image, sizes.op_shape) == ("cuda", (192, 256), (32, 256, 96, 128, 2560))
    assert sizes.resolution is None  # the infer part uses dgs_core.infer.RESOLUTION (128)
    args = gpu_check.build_parser().parse_args(["--out", "x", "--set", "optim.batch_size=8", "data.non_points=256"])
    assert gpu_check.for_args(args, gpu_check.load_experiment_for(args)).op_shape == (8, 256, 96, 128, 2304)
    args = gpu_check.build_parser().parse_args(["--out", "x", "--cpu-smoke"])
    smoke = gpu_check.for_args(args, gpu_check.load_experiment_for(args))
    assert (smoke.device, smoke.op_shape, smoke.resolution) == ("cpu", (2, 8, 24, 32, 80), 16)
