"""No import circles in the core (``rnnvision_kit/``): the module import graph, read with ``ast``,
has no cycle. Every import counts: at module level, inside functions and under
``TYPE_CHECKING``. ``from pkg import name`` is an edge to ``pkg.name`` when that is a module,
else to ``pkg``; a module's implicit import of its parent package is not an edge (a package's
``__init__`` importing its own modules would otherwise make every package a circle)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from tests.conftest import REPO

CORE = REPO / "rnnvision_kit"

Graph = dict[str, dict[str, int]]  # module -> {imported module: line of the first such import}


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the package at ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def _targets(module: str, path: Path, node: ast.AST, known: Iterable[str]) -> list[str]:
    known = set(known)
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    if isinstance(node, ast.ImportFrom):
        base = _base(module, path.name == "__init__.py", node)
        found = []
        for alias in node.names:
            child = f"{base}.{alias.name}"
            if child in known:
                found.append(child)
            elif base in known:
                found.append(base)
        return found
    return []


def import_graph(root: Path) -> Graph:
    """Who imports whom among the modules of the package at ``root``."""
    modules = module_names(root)
    graph: Graph = {name: {} for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _targets(name, path, node, modules):
                if target != name:
                    graph[name].setdefault(target, getattr(node, "lineno", 0))
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` through each strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, set(group), group[0]) for group in groups]


def _cycle_in(graph: Graph, group: set[str], start: str) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``group`` (breadth first)."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node]):
            if nxt == start:
                return [*paths[node], start]
            if nxt in group and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"{start} is in a strongly connected group but on no cycle")


def describe(graph: Graph, cycle: list[str], root: Path) -> str:
    """``a (a.py:12) -> b (b.py:40) -> a``: each module and the line of its import."""
    files = module_names(root)
    steps = []
    for here, there in zip(cycle, cycle[1:], strict=False):
        file = files[here].relative_to(root.parent).as_posix()
        steps.append(f"{here} ({file}:{graph[here][there]})")
    return " -> ".join([*steps, cycle[-1]])


def test_the_core_has_no_import_circle() -> None:
    graph = import_graph(CORE)
    found = cycles(graph)
    assert not found, f"{len(found)} import circle(s) in the core:\n" + "\n".join(
        describe(graph, c, CORE) for c in found
    )


def test_the_finder_sees_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg import a\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..c import C\n"
    )
    (package / "c.py").write_text("from pkg import a\n")  # a -> b -> c -> a
    (package / "d.py").write_text("import pkg.c\n")  # on no cycle
    graph = import_graph(package)
    assert graph["pkg.sub.b"] == {"pkg.c": 3}
    found = cycles(graph)
    assert found == [["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]]
    text = describe(graph, found[0], package)
    assert text.startswith("pkg.a (pkg/a.py:2) -> pkg.sub.b (pkg/sub/b.py:3) -> pkg.c (pkg/c.py:1)")
