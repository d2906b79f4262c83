#!/usr/bin/env bash
# Create the project's virtual environment from nothing but Python 3.11 on Debian.
#
# 1. System libraries the stack needs (open3d 0.20 dlopens libusb-1.0; numba/torch use libgomp):
#    installed with apt-get when we are root, otherwise we say what to install.
# 2. A venv with torch==2.13.0 installed *first*, so no later requirement pulls another build
#    (and gigabytes of CUDA packages) from the index.
# 3. Every other dependency at the exact version of requirements.lock (the tested environment;
#    refresh it with `make lock`), then the project itself, editable, without re-resolving.
set -euo pipefail

venv="${1:-.venv}"
python="${PYTHON:-python3}"

system_packages=(libusb-1.0-0 libgomp1)
missing=()
for pkg in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "setup: missing system packages: ${missing[*]}" >&2
        echo "setup: run 'sudo apt-get install ${missing[*]}' and re-run 'make setup'." >&2
        exit 1
    fi
fi

if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 10))'; then
    echo "setup: $python is $("$python" --version 2>&1); Python >= 3.10 (3.11 recommended) is required." >&2
    exit 1
fi

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "torch==2.13.0"
if "$venv/bin/python" -c 'import platform, sys; sys.exit(not (platform.machine() == "x86_64" and sys.version_info[:2] == (3, 11)))'; then
    "$venv/bin/python" -m pip install --quiet -r requirements.lock
    "$venv/bin/python" -m pip install --quiet --no-deps -e .
else  # the lock was resolved on x86_64 / Python 3.11 (see its header)
    echo "setup: requirements.lock is for x86_64 and Python 3.11; installing from pyproject.toml's ranges instead"
    "$venv/bin/python" -m pip install --quiet -e ".[dev]"
fi
"$venv/bin/python" -m pip check
"$venv/bin/python" - <<'PY'
import open3d, torch, numba, h5py, snakemake  # noqa: F401  (fail now, not in the middle of a job)
print(f"setup: ok (torch {torch.__version__}, open3d {open3d.__version__}, numba {numba.__version__})")
PY
