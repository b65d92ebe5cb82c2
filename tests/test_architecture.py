"""The layout's own limits (issue 43), read from the source: no import cycle inside qa/,
lazy imports counted; no module over 450 lines; no function over 80. The layers and "the
product never imports the lab" are import-linter's contracts (pyproject.toml), checked
here too so that the quick tier sees them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

QA = Path(__file__).resolve().parent.parent / "qa"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, ast.Module]:
    out = {}
    for f in QA.rglob("*.py"):
        parts = f.relative_to(QA.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (f, ast.parse(f.read_text(encoding="utf-8")))
    return out


def _imports(name: str, path: Path, tree: ast.Module, known: set[str]) -> set[str]:
    """Every qa module this one imports, at the top or inside a function."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known} or {target}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m in known and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_inside_qa_lazy_imports_counted():
    modules = _modules()
    graph = {name: _imports(name, path, tree, set(modules)) for name, (path, tree) in modules.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_lazy_cycle():
    """The check above would fail if one function-level import closed a loop."""
    loop = ast.parse("def f():\n    from .b import g\n")
    back = ast.parse("from .a import f\n")
    known = {"qa.a", "qa.b"}
    graph = {"qa.a": _imports("qa.a", QA / "a.py", loop, known), "qa.b": _imports("qa.b", QA / "b.py", back, known)}
    assert _cycles(graph) == [["qa.a", "qa.b"]]


def test_modules_and_functions_are_small_enough_to_read_in_one_sitting():
    long_modules, long_functions = [], []
    for name, (path, tree) in _modules().items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            long_modules.append((name, lines))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append((f"{name}.{node.name}", length))
    assert long_modules == [] and long_functions == []


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], capture_output=True, text=True, cwd=QA.parent, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
