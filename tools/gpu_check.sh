#!/usr/bin/env bash
# The GPU check in one command (docs/gpu_check.md): tools/gpu_check.sh [OUT_DIR] [gpu_check.py options]
root="$(cd "$(dirname "$0")/.." && pwd)"; py="${PYTHON:-$root/.venv/bin/python}"; [[ -x "$py" ]] || py=python3
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 exec "$py" "$root/benchmarks/gpu_check.py" --out "${1:-results/gpu_check}" "${@:2}"
