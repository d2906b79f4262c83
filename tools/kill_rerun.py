"""Robustness run: SIGKILL `python -m pipeline.prepare` at random points, rerun, compare bytes.

Usage::

    python tools/kill_rerun.py [--kills 4] [--seed 0] [--frames 24] [--workers 0] [--work DIR]

On a tiny generated ScanNet scene (pipeline.synthetic preset "tiny"), the script

1. runs the prepare job once, uninterrupted, into ``<work>/reference`` (the reference bytes);
2. ``--kills`` times: starts the same job into ``<work>/killed`` (over whatever the previous trial
   left there), waits until it is writing shards (a ``*.partial`` file exists), sleeps a seeded
   random delay, and SIGKILLs its whole process group (the job and any Dask workers: what SLURM
   does on a timeout); then checks the debris: every file that looks finished (no ``.partial``)
   must be complete (each shard opens and every one of its ``n_rows`` rows reads; a manifest
   reads), and if ``done`` exists (the job got that far before the kill) the folder must already
   equal the reference. Then it reruns the job to completion and compares the sha256 of every
   file with the reference;
3. prints one table row per kill and exits 1 if any debris check or comparison failed.

Kills land anywhere after the first shard is written: while frames are computed, while a shard
is written or renamed, while the manifest or the marker is written, or during interpreter exit. A
delay that outlasts the job is reported as ``exited`` (nothing was killed) and still checked.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

# Small per-frame sizes and 4 frames per shard: a 24-frame scene writes 6 shards in ~2 s.
OPTIONS = {"near_surface_points": 128, "non_surface_points": 32, "frames_per_shard": 4,
           "width": 64, "height": 48, "focal": 57.6}
PARTIAL = ".partial"


def make_scene(root: Path, frames: int, seed: int) -> str:
    """Generate a one-scene synthetic ScanNet root at ``root`` ("tiny" preset) unless a finished one
    (``<root>.complete``) is there already; returns the scene id.

    About 10 % of the frames carry ScanNet's invalid pose, so the manifest also holds skipped rows.
    """
    from pipeline.formats.scannet import read_split
    from pipeline.synthetic.config import preset
    from pipeline.synthetic.generate import generate_scannet

    if not root.with_suffix(".complete").exists():
        cfg = preset("tiny", seed=seed, frames_per_scene=frames, scannet_train=1, scannet_val=0,
                     scannet_test=0, invalid_pose_fraction=0.1)
        generate_scannet(root, cfg, progress=False)
    return read_split(root, "train")[0]


def prepare_argv(root: Path, scene: str, out: Path, workers: int) -> list[str]:
    """Arguments of ``python -m pipeline.prepare`` for the train split of ``scene`` into ``out``."""
    return ["--dataset", "scannet", "--root", str(root), "--split", "train", "--scene", scene,
            "--out", str(out), "--workers", str(workers), "--options", json.dumps(OPTIONS)]


def scene_dir(out: Path, scene: str) -> Path:
    """Where the job writes: ``<out>/scannet/train/<scene>``."""
    return out / "scannet" / "train" / scene


def _start_and_wait_for_writing(argv: Sequence[str], directory: Path, log: Path,
                                timeout_s: float) -> subprocess.Popen:
    """Start ``python -m pipeline.prepare ARGV`` in its own process group, its output going to
    ``log``; return once a ``*.partial`` file exists in ``directory`` (the job is writing shards)
    or the job has exited."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as sink:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, "-m", "pipeline.prepare", *argv],
                                start_new_session=True, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and not any(directory.glob(f"*{PARTIAL}")):
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise TimeoutError(f"{directory}: the prepare job wrote no '{PARTIAL}' file in "
                               f"{timeout_s:.0f} s; see its output in {log}")
        time.sleep(0.01)
    return proc


def run_to_end(argv: Sequence[str], directory: Path, log: Path,
               timeout_s: float = 600.0) -> tuple[float, float]:
    """Run the job uninterrupted; returns (seconds until it started writing shards, total seconds)."""
    t0 = time.perf_counter()
    proc = _start_and_wait_for_writing(argv, directory, log, timeout_s)
    t_writing = time.perf_counter() - t0
    if proc.wait() != 0:
        raise RuntimeError(f"python -m pipeline.prepare {' '.join(argv)} failed with exit code "
                           f"{proc.returncode}; see its output in {log}")
    return t_writing, time.perf_counter() - t0


def kill_while_writing(argv: Sequence[str], directory: Path, delay_s: float, log: Path,
                       timeout_s: float = 600.0) -> int | None:
    """Start the job, wait until it writes shards, sleep ``delay_s`` seconds and SIGKILL its whole
    process group. Returns None if the job was still running when killed, else its exit code."""
    proc = _start_and_wait_for_writing(argv, directory, log, timeout_s)
    try:
        time.sleep(delay_s)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            return None
        return proc.returncode
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Inspection:
    """What a killed job left in its scene directory.

    finished_shards / partial_files: file names; manifest, done: whether those files exist;
    problems: one sentence per file that looks finished but is not complete (empty = all good).
    """

    finished_shards: list[str] = field(default_factory=list)
    partial_files: list[str] = field(default_factory=list)
    manifest: bool = False
    done: bool = False
    problems: list[str] = field(default_factory=list)

    def state(self) -> str:
        """One table cell, e.g. ``3 shards + 1 partial``."""
        words = [f"{len(self.finished_shards)} shards"]
        words += [f"{len(self.partial_files)} partial"] if self.partial_files else []
        words += ["manifest"] if self.manifest else []
        words += ["done"] if self.done else []
        return " + ".join(words)


def _shard_problem(path: Path) -> str | None:
    """None if the shard opens, every dataset has ``n_rows`` rows and every row reads; else why not."""
    import h5py

    from pipeline.shards import ShardReader

    try:
        with ShardReader(path) as reader:
            n = len(reader)
            lengths = {}
            reader.file.visititems(lambda name, obj: lengths.__setitem__(name, obj.shape[0])
                                   if isinstance(obj, h5py.Dataset) else None)
            short = {k: v for k, v in lengths.items()
                     if k not in ("visible_faces/offset", "visible_faces/delta") and v != n}
            if short or lengths.get("visible_faces/offset") != n + 1:
                return f"{path.name}: n_rows={n} but datasets have {short or lengths} rows"
            for row in range(n):
                reader[row]
    except Exception as exc:  # any failure to read a finished-looking file is the finding
        return f"{path.name} looks finished but does not read: {type(exc).__name__}: {exc}"
    return None


def inspect(directory: Path, expected: dict[str, str]) -> Inspection:
    """Check the files a killed job left in ``directory`` against the module docstring's rules;
    ``expected`` is :func:`digests` of the uninterrupted run (what ``done`` vouches for)."""
    from pipeline.manifest import read_manifest

    names = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    found = Inspection(finished_shards=[n for n in names if n.startswith("shard_") and n.endswith(".h5")],
                       partial_files=[n for n in names if n.endswith(PARTIAL)],
                       manifest="manifest.parquet" in names, done="done" in names)
    found.problems += filter(None, (_shard_problem(directory / n) for n in found.finished_shards))
    if found.manifest:
        try:
            read_manifest(directory / "manifest.parquet")
        except Exception as exc:
            found.problems.append(f"manifest.parquet looks finished but does not read: {exc}")
    if found.done and digests(directory) != expected:
        found.problems.append("'done' exists but the folder differs from the uninterrupted run")
    return found


def digests(directory: Path) -> dict[str, str]:
    """{file name: sha256 hex} of every file in ``directory``."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring); 0 if every check passed."""
    from tabulate import tabulate

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=4, help="SIGKILLs, each followed by a full rerun")
    ap.add_argument("--seed", type=int, default=0, help="seeds the scene and the kill delays")
    ap.add_argument("--frames", type=int, default=24, help="frames in the generated scene")
    ap.add_argument("--workers", type=int, default=0, help="prepare --workers of the killed runs")
    ap.add_argument("--work", type=Path, help="working folder (default: a new temporary one)")
    a = ap.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix="kill_rerun_"))
    root = work / "synthetic" / "scannet"
    scene = make_scene(root, a.frames, a.seed)
    reference = scene_dir(work / "reference", scene)
    logs = work / "logs"
    t_start, t_ref = run_to_end(prepare_argv(root, scene, work / "reference", workers=0), reference,
                                logs / "reference.log")
    expected = digests(reference)
    print(f"reference: {len(expected)} files in {reference} ({t_ref:.1f} s, writing from "
          f"{t_start:.1f} s, --workers 0)", file=sys.stderr)

    rng = np.random.default_rng(a.seed)
    killed_argv = prepare_argv(root, scene, work / "killed", a.workers)
    directory = scene_dir(work / "killed", scene)
    rows, ok = [], True
    for k in range(a.kills):
        # over the reference's writing phase and a little beyond, so a kill may also miss the job
        delay = float(rng.uniform(0.0, 1.1 * (t_ref - t_start)))
        exit_code = kill_while_writing(killed_argv, directory, delay, logs / f"kill_{k + 1}.log")
        found = inspect(directory, expected)
        if exit_code:
            found.problems.append(f"the job failed with exit code {exit_code} before the kill "
                                  f"(see {logs / f'kill_{k + 1}.log'})")
        t_rerun = run_to_end(killed_argv, directory, logs / f"rerun_{k + 1}.log")[1]
        same = digests(directory) == expected
        ok &= same and not found.problems
        job = "killed" if exit_code is None else f"exited {exit_code}"
        rows.append([k + 1, f"{delay:.2f}", job, found.state(), "; ".join(found.problems) or "ok",
                     f"{t_rerun:.1f}", "yes" if same else "NO"])
        print(f"kill {k + 1}/{a.kills}: {rows[-1][3]}, identical after rerun: {rows[-1][-1]}",
              file=sys.stderr)
    print(tabulate(rows, headers=["kill", "delay s", "job", "left behind", "finished files",
                                  "rerun s", "identical"], tablefmt="github"))
    print(f"\n{'PASS' if ok else 'FAIL'}: {a.kills} SIGKILLs (seed {a.seed}, --workers {a.workers}); "
          f"files in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
