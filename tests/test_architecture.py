"""The house rules, read from the code: small modules, short functions, imports that run one way.

One folder per stage of the data flow; a stage imports only the stages below it (``ALLOWED``),
so the transport (``api``) and the ledger never know the domain above them, and no import
circle exists.
"""

from __future__ import annotations

import ast
import statistics
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "batch"
MAX_LINES = 800
MAX_MEDIAN_FUNCTION = 10

#: What each stage may import (besides itself). ``batch`` itself (the package's front door)
#: may import anything.
ALLOWED: dict[str, set[str]] = {
    "text": set(),
    "lazy": set(),
    "errors": set(),
    "serving": {"errors", "text"},
    "api": {"errors", "text", "lazy"},
    "ledger": {"errors", "text"},
    "manifest": {"errors", "text"},
    "payload": {"errors", "text", "manifest", "api"},
    "run": {"errors", "text", "lazy", "manifest", "payload", "api", "ledger"},
    "outputs": {"errors", "text", "manifest", "ledger", "run"},
    "pull": {"errors", "text", "api", "ledger", "manifest", "run", "outputs", "serving"},
    "sandbox": {"text", "lazy", "api", "serving"},
    "jobs": {"errors", "text", "lazy", "api", "ledger", "manifest", "payload", "run", "outputs",
             "pull", "sandbox", "serving"},
    "cli": {"errors", "text", "api", "ledger", "manifest", "payload", "run", "outputs", "pull",
            "sandbox", "jobs", "serving"},
}


def modules() -> Iterator[tuple[str, Path]]:
    """``(dotted name, path)`` of every module of the package."""
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imports_of(path: Path) -> set[str]:
    """The ``batch`` modules a file imports (``from batch.p import m`` of a module counts as
    ``batch.p.m``, not as the package ``batch.p``)."""
    known = {name for name, _ in modules()}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "batch" or node.module.startswith("batch."):
                subs = {f"{node.module}.{a.name}" for a in node.names} & known
                found.update(subs or {node.module})
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("batch."))
    return found


def stage(module: str) -> str:
    """The stage (top folder or module under ``batch``) a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "batch"


def test_no_module_is_over_800_lines() -> None:
    long = {str(p.relative_to(PACKAGE.parent)): n for _, p in modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_median_function_is_short() -> None:
    lengths = [node.end_lineno - node.lineno + 1
               for _, path in modules()
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
               and node.end_lineno is not None]
    assert statistics.median(lengths) <= MAX_MEDIAN_FUNCTION


def test_each_stage_imports_only_the_stages_below_it() -> None:
    wrong = {}
    for name, path in modules():
        own = stage(name)
        if own in ("batch", "__main__"):
            continue
        outside = {stage(m) for m in imports_of(path)} - {own}
        if outside - ALLOWED[own]:
            wrong[name] = sorted(outside - ALLOWED[own])
    assert wrong == {}


def test_the_transport_and_the_ledger_know_nothing_above_them() -> None:
    for name, path in modules():
        if stage(name) in ("api", "ledger"):
            bottom = {stage(name), "errors", "text", "lazy"}
            assert {stage(m) for m in imports_of(path)} <= bottom, name


def test_no_import_circle() -> None:
    graph = {name: {m for m in imports_of(path) if m != name} for name, path in modules()}
    circles = [scc for scc in _components(graph) if len(scc) > 1]
    assert circles == []


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _mapped_modules() -> set[str]:
    """The modules ARCHITECTURE.md's folder tree names, as paths under ``batch/``."""
    text = (PACKAGE.parent / "ARCHITECTURE.md").read_text(encoding="utf-8")
    block = text.split("```\nbatch/\n", 1)[1].split("```", 1)[0]
    stack: list[str] = []
    found: set[str] = set()
    for line in block.splitlines():
        name = line.strip().split(" ", 1)[0]
        depth = (len(line) - len(line.lstrip(" ")) - 2) // 2
        stack[depth:] = [name.rstrip("/")]
        if name.endswith(".py"):
            found.add("/".join(stack))
    return found


def test_the_architecture_map_names_every_module() -> None:
    modules = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
               if p.name != "__init__.py" or p.parent == PACKAGE}
    mapped = _mapped_modules()
    assert sorted(modules - mapped) == [], "modules missing from ARCHITECTURE.md"
    assert sorted(mapped - modules) == [], "ARCHITECTURE.md names modules that do not exist"
