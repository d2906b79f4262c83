"""Helpers shared by the speed scripts: peak memory, self-started worker processes, missing inputs.

A script imports this module so that both ways of running it work::

    if __package__:  # python -m benchmarks.bench_x, or imported by a test
        from . import common
    else:  # python benchmarks/bench_x.py: this folder is sys.path[0]
        import common
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path


def _status_kib(key: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (Linux: write 5 to ``clear_refs``) so that import-time peaks
    do not hide the measured code's own; returns the current RSS in KiB as the baseline."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmRSS") or 0
    except OSError:  # not Linux: fall back to the process-lifetime peak
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss_kib() -> int:
    """Peak resident set size of this process in KiB (since the last :func:`reset_peak_rss`)."""
    hwm = _status_kib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_worker(script: str, args: list[str], env: dict[str, str] | None = None,
               timeout: float | None = None) -> dict:
    """Run ``script`` (a path) with ``args`` in a fresh Python process; its last stdout line is JSON.

    A fresh process makes a measured peak RSS the worker's own. Raises ``RuntimeError`` with the
    end of the worker's stderr when it fails, ``subprocess.TimeoutExpired`` (the worker killed) when
    it runs longer than ``timeout`` seconds.
    """
    proc = subprocess.run([sys.executable, str(Path(script).resolve()), *args],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(script).name}: worker {args} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def require_inputs(script: str, paths: dict[str, Path], hint: str) -> None:
    """Exit with status 2 and one clear message when an input the script reads does not exist.

    ``paths`` maps what each input is ("prepared train manifest") to its path; ``hint`` says how to
    make them (e.g. run ``make demo``) or which option points elsewhere.
    """
    missing = [f"{what} {str(path)!r}" for what, path in paths.items() if not Path(path).exists()]
    if missing:
        print(f"{script}: not found: {'; '.join(missing)}. {hint}", file=sys.stderr)
        raise SystemExit(2)
