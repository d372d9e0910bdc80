"""The package's imports run one way, down the pipeline; this test fails on an import from a
higher stage (function-level imports count: a lazy import is still a dependency).

    cli (taskc/cli.py and every taskc/<stage>/cli.py)
      -> bench, report, view, distill, testing
      -> evaluate
      -> backends
      -> runner
      -> compiler
      -> spec, constraints
      -> metrics and the shared helpers (common, errors, atomic)
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "taskc"
LAYERS = [
    {"taskc", "common", "errors", "atomic", "metrics"},
    {"spec", "constraints"},
    {"compiler"},
    {"runner"},
    {"backends"},
    {"evaluate"},
    {"bench", "report", "view", "distill", "testing"},
]
CLI = len(LAYERS)


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    """The layer of a taskc module: a `cli` module is the top; else its stage's layer."""
    parts = module.split(".")
    if parts[-1] == "cli":
        return CLI
    stage = parts[1] if len(parts) > 1 else "taskc"
    for i, stages in enumerate(LAYERS):
        if stage in stages:
            return i
    raise AssertionError(f"{module}: stage '{stage}' has no layer; add it to LAYERS in {__file__}")


def imports(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every taskc import in a file, wherever it is (relative imports resolved
    against `package`, the file's own package by default)."""
    if package is None:
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.split(".")[0] != "taskc":
                continue
            names = [f"{base}.{a.name}" for a in node.names]
            found.append((node.lineno, _deepest(names, base) if _is_package(base) else base))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "taskc")
    return found


def _is_package(module: str) -> bool:
    return (PACKAGE.parent / Path(*module.split("."))).is_dir()


def _deepest(names: list[str], module: str) -> str:
    """`from taskc.x import cli` imports the module taskc.x.cli, not the package."""
    for name in names:
        if (PACKAGE.parent / Path(*name.split("."))).with_suffix(".py").exists():
            return name
    return module


def test_no_module_imports_a_higher_stage():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _module(path)
        for line, target in imports(path):
            if layer(target) > layer(here):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} (layer {layer(here)}) imports "
                              f"{target} (layer {layer(target)})")
    assert not upward, "imports from a higher stage:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path):
    """The rule itself: a compiler module importing a backend is caught, a cli module may."""
    assert layer("taskc.backends.openai_chat") > layer("taskc.compiler.contract")
    assert layer("taskc.compiler.cli") == CLI > layer("taskc.backends.templates")
    assert layer("taskc.common.encoding") == layer("taskc.metrics.values") == 0
    sample = tmp_path / "mod.py"
    sample.write_text("def f():\n    from taskc.backends import get_backend\nfrom . import cli\n")
    assert imports(sample, "taskc.compiler") == [(3, "taskc.compiler.cli"), (2, "taskc.backends")]


def _runtime_imports(path: Path) -> list[str]:
    """The taskc modules a file imports at run time (under `if TYPE_CHECKING:` does not count),
    each resolved to the deepest module that exists."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in node.body for n in ast.walk(child)}
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.split(".")[0] == "taskc":
                out.extend(_existing(f"{base}.{a.name}") for a in node.names)
        elif isinstance(node, ast.Import):
            out.extend(_existing(a.name) for a in node.names if a.name.split(".")[0] == "taskc")
    return [m for m in out if m != module]


def _existing(name: str) -> str:
    while name.count(".") and not ((PACKAGE.parent / Path(*name.split("."))).with_suffix(".py").exists()
                                   or (PACKAGE.parent / Path(*name.split("."))).is_dir()):
        name = name.rpartition(".")[0]
    return name


def test_no_import_cycles():
    """No two modules import each other, directly or round a loop (function-level imports too)."""
    graph = {_module(p): set(_runtime_imports(p)) for p in PACKAGE.rglob("*.py")}
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
