"""The package layout: no import cycles, data flows one way, speed scripts stay out of the packages.

The graph is read from the source (``ast``), including imports inside functions, so a cycle hidden
behind a lazy import counts as a cycle too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "dgs_core", "benchmark", "dgs")
# What each package may import from the others (CONVENTIONS: a lower stage never imports a higher one).
# `dgs` (the command dispatcher and the glue that needs two stages at once) sits above them all.
ALLOWED = {"pipeline": set(), "dgs_core": {"pipeline"}, "benchmark": {"pipeline"},
           "dgs": {"pipeline", "dgs_core", "benchmark"}}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((REPO / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``name`` imports (``from pkg import mod`` resolves to ``pkg.mod``)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # a.b.func -> a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    # importing a.b.c runs the __init__ of a and a.b first
    for target in list(out):
        parts = target.split(".")
        out.update(".".join(parts[:k]) for k in range(1, len(parts)) if ".".join(parts[:k]) in modules)
    out.discard(name)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # a package's __init__ importing its own submodules is how packages work, not a cycle
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("package", PACKAGES)
def test_lower_stages_never_import_higher_ones(package: str) -> None:
    bad = sorted(f"{m} imports {t}" for m, targets in _graph().items() if m.split(".")[0] == package
                 for t in targets if t.split(".")[0] not in ALLOWED[package] | {package})
    assert not bad, bad


def test_no_speed_script_inside_an_installed_package() -> None:
    scripts = sorted(str(p.relative_to(REPO)) for pkg in PACKAGES for p in (REPO / pkg).rglob("bench_*.py"))
    assert not scripts, f"speed benchmarks belong in benchmarks/: {scripts}"


def test_the_cycle_finder_finds_a_lazy_cycle(tmp_path: Path) -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"a.x"}, "a.x": set()}) is None  # a package importing its own submodule
