"""The three dependency lists agree: pyproject.toml (the source), environment.yml (conda users) and
requirements.lock (the tested environment that `make setup` installs)."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
# conda-forge names of PyPI packages, where they differ
CONDA_NAMES = {"snakemake-minimal": "snakemake", "distributed": "dask"}
# conda entries that are not Python packages of pyproject (the interpreter, pip, system libraries)
CONDA_ONLY = {"python", "pip", "libusb"}


def _pyproject() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + extras["dev"]]


def _environment() -> dict[str, list[Requirement]]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    out: dict[str, list[Requirement]] = {}
    for item in env["dependencies"]:
        if isinstance(item, dict):
            entries = [r for r in item["pip"] if not r.startswith("-")]
        else:
            conda_pin = re.fullmatch(r"([\w.-]+)=([\w.]+)", item)  # conda's name=1.2 means 1.2.*
            entries = [f"{conda_pin[1]}=={conda_pin[2]}.*" if conda_pin else item]
        for entry in entries:
            req = Requirement(entry.split("#")[0].strip())
            name = CONDA_NAMES.get(canonicalize_name(req.name), canonicalize_name(req.name))
            out.setdefault(name, []).append(req)
    return out


def test_environment_yml_lists_every_dependency_with_the_same_bounds() -> None:
    env = _environment()
    for req in _pyproject():
        name = canonicalize_name(req.name)
        assert name in env, f"environment.yml lacks {req.name} (pyproject.toml: {req})"
        specs = {str(r.specifier) for r in env[name] if r.marker == req.marker or r.marker is None}
        assert str(req.specifier) in specs, f"{req.name}: pyproject.toml says {req.specifier}, environment.yml {specs}"
    known = {canonicalize_name(r.name) for r in _pyproject()}
    extra = sorted(set(env) - known - CONDA_ONLY)
    assert not extra, f"environment.yml lists packages pyproject.toml does not: {extra}"


def test_lock_pins_every_dependency_within_its_bounds() -> None:
    lock_file = REPO / "requirements.lock"
    pins = {}
    for line in lock_file.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            (version,) = [s.version for s in req.specifier]
            pins[canonicalize_name(req.name)] = version
    for req in _pyproject():
        if req.marker is not None and not req.marker.evaluate():
            continue  # not for this platform
        name = canonicalize_name(req.name)
        if name == "torch":
            continue  # tools/setup.sh installs torch==2.13.0 itself
        assert name in pins, f"requirements.lock lacks {req.name}; run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock pins {req.name}=={pins[name]}, outside {req.specifier}; run `make lock`"

