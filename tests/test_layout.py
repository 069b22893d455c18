"""The layout's rules, read off the imports (ast): the UIM stages can be read off the
folders, and adding a world is adding a folder and one registry line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from uim_sim.worlds import BUILT_IN

PACKAGE = Path(__file__).resolve().parents[1] / "uim_sim"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(name: str) -> set[str]:
    """Every module of the project (or any library) ``name`` imports, at any depth of
    the file (function bodies included), except under ``if TYPE_CHECKING``."""
    tree = ast.parse(MODULES[name].read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _type_checking(node)
            for n in ast.walk(node) if n is not node}  # fmt: skip
    found = set()
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return found


GRAPH = {name: {m for m in imports(name) if m in MODULES and m != name} for name in MODULES}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def importers(target: str) -> set[str]:
    return {name for name, deps in GRAPH.items() if any(_within(d, target) for d in deps)}


@pytest.mark.parametrize("stage", ["uim_sim.lfm", "uim_sim.understand", "uim_sim.vocab"])
def test_models_and_understanding_import_no_world(stage):
    for name, deps in GRAPH.items():
        if _within(name, stage):
            assert not [d for d in deps if _within(d, "uim_sim.worlds")], name


def test_lfm_imports_nothing_of_understand_and_vocab_nothing_beyond_vocab():
    for name, deps in GRAPH.items():
        if _within(name, "uim_sim.lfm"):
            assert not [d for d in deps if _within(d, "uim_sim.understand")], name
        if _within(name, "uim_sim.vocab"):
            assert all(_within(d, "uim_sim.vocab") for d in deps), name


def test_no_world_imports_mitigate_run_report_or_cli():
    banned = ("uim_sim.mitigate", "uim_sim.run", "uim_sim.report", "uim_sim.cli",
              "uim_sim.catalogue", "uim_sim.spec")  # fmt: skip
    for name, deps in GRAPH.items():
        if _within(name, "uim_sim.worlds"):
            assert not [d for d in deps if any(_within(d, b) for b in banned)], name


def test_no_import_cycles():
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for dep in GRAPH[name]:
            if state.get(dep) == 1:
                raise AssertionError(" -> ".join([*path, name, dep]))
            if dep not in state:
                visit(dep, [*path, name])
        state[name] = 2

    for name in GRAPH:
        if name not in state:
            visit(name, [])


def test_a_world_is_one_folder_and_one_registry_line():
    registry = MODULES["uim_sim.worlds"].read_text()
    for world, package in BUILT_IN.items():
        assert registry.count(f'"{package}"') == 1
        assert (PACKAGE / "worlds" / world / "__init__.py").is_file()
        for name in importers(package):
            assert _within(name, package), f"{name} imports the {world} world"


def test_only_the_model_layer_calls_torch_and_transformers():
    """Inference goes through lfm's engine; forging trains (understand.forge); the
    process executor sets the thread count of each worker."""
    allowed = {
        "uim_sim.understand.forge",
        "uim_sim.understand.private",
        "uim_sim.understand.training",
        "uim_sim.run.executors",
    }
    for name in MODULES:
        heavy = {m for m in imports(name) if _within(m, "torch") or _within(m, "transformers")}
        if heavy:
            assert _within(name, "uim_sim.lfm") or name in allowed, (name, heavy)


def test_only_the_cli_and_the_report_print():
    for name, path in MODULES.items():
        calls = [
            n for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"
        ]  # fmt: skip
        if calls:
            assert name == "uim_sim.cli" or _within(name, "uim_sim.report"), name
