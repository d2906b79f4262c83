"""The `dgs` command: it lists every sub-command, each sub-command's --help shows every option with its
default, errors exit 2 with one line, and check-root tells a complete root from an incomplete one."""
from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dgs.cli import COMMANDS, main
from pipeline.cli import HelpFormatter
from pipeline.errors import EXIT_USER_ERROR

REPO = Path(__file__).resolve().parents[1]


def test_dgs_help_lists_every_command_and_imports_none_of_them() -> None:
    code = ("import sys; from dgs.cli import main; status = main(['--help']); "
            "print(sorted(m for m in ('torch', 'pipeline.prepare', 'benchmark.evaluate', 'dgs_core') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    for name in ("check-root", "synth", "prepare", "manifest", "train", "predict", "evaluate", "report", "ablation",
                 "inspect", "run"):
        assert f"\n  {name} " in done.stdout, name
    assert done.stdout.strip().splitlines()[-1] == "[]"  # fast: no sub-command's module was imported


def test_every_command_target_exists() -> None:
    for name, command in COMMANDS.items():
        module, _, function = command.target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name


def _parsers(name: str, monkeypatch) -> list[argparse.ArgumentParser]:
    """The parsers command ``name`` builds for ``--help`` (and their sub-parsers)."""
    seen: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_args

    def spy(self, *args, **kwargs):
        seen.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", spy)
    with pytest.raises(SystemExit) as stop:
        main([name, "--help"])
    assert stop.value.code == 0
    nested = [p for parser in seen for a in parser._actions if isinstance(a, argparse._SubParsersAction)
              for p in a.choices.values()]
    return seen + nested


@pytest.mark.parametrize("name", [n for n in COMMANDS if n != "run"])
def test_help_shows_every_option_with_its_default(name: str, monkeypatch, capsys) -> None:
    parsers = _parsers(name, monkeypatch)
    assert parsers, f"dgs {name} built no parser"
    assert parsers[0].prog == f"dgs {name}"  # the usage line names the command typed
    capsys.readouterr()
    for parser in parsers:
        assert parser.formatter_class is HelpFormatter, parser.prog
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"{parser.prog} {action.dest}: no help text"
            shows_default = (action.default is not None and action.default is not False and not action.required
                             and (action.option_strings or action.nargs in ("?", "*")))
            if shows_default:
                shown = " ".join(parser._get_formatter()._format_action(action).split())
                assert "(default: " in shown, (parser.prog, action.dest)
        assert "usage:" in text


def test_unknown_command_and_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["frobnicate"]) == EXIT_USER_ERROR
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r")]) == EXIT_USER_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dgs report:"), err


def test_python_m_dgs_runs_the_dispatcher() -> None:
    done = subprocess.run([sys.executable, "-m", "dgs", "check-root", "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("usage: dgs check-root"), done.stdout + done.stderr


def test_check_root_accepts_complete_roots_and_names_what_is_missing(prepared_tiny, tmp_path: Path,
                                                                     capsys) -> None:
    assert main(["check-root", str(prepared_tiny.scannet_root)]) == 0
    out = capsys.readouterr().out
    assert "a complete ScanNet v2 root (1 train, 1 val, 1 test scenes)" in out
    assert main(["check-root", str(prepared_tiny.matterport_root)]) == 0
    assert "a complete Matterport3D root (1 test scenes)" in capsys.readouterr().out

    broken = tmp_path / "scannet"
    shutil.copytree(prepared_tiny.scannet_root, broken)
    scene = next((broken / "scans").iterdir())
    (scene / f"{scene.name}.sens").unlink()
    (broken / "scannetv2-labels.combined.tsv").unlink()
    assert main(["check-root", str(broken)]) == EXIT_USER_ERROR
    captured = capsys.readouterr()
    assert f"missing {scene / scene.name}.sens" in captured.out
    assert "scannetv2-labels.combined.tsv" in captured.out and "download-scannet.py" in captured.out
    assert "not a complete ScanNet v2 root: fix the 2 problems" in captured.err

    mp = tmp_path / "mp"
    shutil.copytree(prepared_tiny.matterport_root, mp)
    house = next(p for p in mp.iterdir() if p.is_dir() and p.name != "metadata")
    shutil.rmtree(house / "undistorted_depth_images")
    assert main(["check-root", str(mp), "--dataset", "matterport"]) == EXIT_USER_ERROR
    assert f"house {house.name}: missing folder {house / 'undistorted_depth_images'}" in capsys.readouterr().out
    assert main(["check-root", str(tmp_path / "nothing")]) == EXIT_USER_ERROR
    assert "dataset root does not exist" in capsys.readouterr().out
