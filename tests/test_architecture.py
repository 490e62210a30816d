"""The import graph keeps the shape DESIGN.md draws: no two parts of the package import each
other, and the surfaces (api, web, mcp, cli) never reach into the store.

The graph is read from the source with ``ast``, not by importing it: every ``import`` counts,
including those inside functions (a lazy import is still a dependency) and under
``TYPE_CHECKING``; relative imports are resolved. A node is a top-level part of the package
(``confluence_rag.api``, ``confluence_rag.services``, ...). Failures list every offending import
with its file and line, so one run shows all there is to fix.

The builder is tested on small synthetic packages too: a check that cannot fail proves nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "confluence_rag"
SURFACES = ("api", "web", "mcp", "cli")
FORBIDDEN = {surface: ("store",) for surface in SURFACES}


@dataclass(frozen=True, slots=True)
class Edge:
    """``importer`` (a module) imports ``imported`` (a module) at ``path:line``."""

    importer: str
    imported: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}"


def module_name(root: Path, path: Path) -> tuple[str, bool]:
    """The dotted name of a source file and whether it is a package's ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute module a ``from ... import`` names (``level`` dots of relativity)."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, target] if target else base)


def imports_of(root: Path, path: Path, package: str, modules: set[str]) -> Iterator[Edge]:
    """Every import of ``package`` modules in one file, wherever it sits in the file.
    ``modules`` are the package's module names (to tell ``from a import submodule`` from
    ``from a import name``)."""
    module, is_package = module_name(root, path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = resolve(module, is_package, node.level, node.module)
            # ``from pkg import sub`` imports the submodule ``pkg.sub``.
            names = [
                f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                for alias in node.names
            ]
        for name in names:
            if name == package or name.startswith(package + "."):
                yield Edge(module, name, path.relative_to(root), node.lineno)


def part_of(module: str, package: str) -> str:
    """The top-level part a module belongs to: ``confluence_rag.api.routes.x`` -> ``api``."""
    rest = module.removeprefix(package).lstrip(".")
    return rest.split(".", 1)[0] if rest else "__init__"


def build_graph(root: Path, package: str) -> dict[tuple[str, str], list[Edge]]:
    """``(part, part) -> the imports making that edge``, between different top-level parts."""
    graph: dict[tuple[str, str], list[Edge]] = {}
    paths = sorted((root / package).rglob("*.py"))
    modules = {module_name(root, path)[0] for path in paths}
    for path in paths:
        for edge in imports_of(root, path, package, modules):
            source, target = part_of(edge.importer, package), part_of(edge.imported, package)
            # The package root only holds the version; importing it makes no real dependency.
            if source != target and "__init__" not in (source, target):
                edges = graph.setdefault((source, target), [])
                if edge not in edges:  # ``from x import a, b`` is one import, listed once
                    edges.append(edge)
    return graph


def cycles(graph: dict[tuple[str, str], list[Edge]]) -> list[list[str]]:
    """Strongly connected components of more than one part (Tarjan), each sorted."""
    successors: dict[str, set[str]] = {}
    for source, target in graph:
        successors.setdefault(source, set()).add(target)
        successors.setdefault(target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(successors[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(successors):
        if node not in index:
            visit(node)
    return found


def cycle_report(graph: dict[tuple[str, str], list[Edge]]) -> list[str]:
    lines = []
    for component in cycles(graph):
        lines.append("cycle between " + ", ".join(component) + ":")
        for (source, target), edges in sorted(graph.items()):
            if source in component and target in component:
                lines.extend(f"  {edge}" for edge in edges)
    return lines


def forbidden_edges(
    graph: dict[tuple[str, str], list[Edge]], rules: dict[str, tuple[str, ...]]
) -> list[Edge]:
    return [
        edge
        for (source, target), edges in sorted(graph.items())
        if target in rules.get(source, ())
        for edge in edges
    ]


def forbidden_report(
    graph: dict[tuple[str, str], list[Edge]], rules: dict[str, tuple[str, ...]]
) -> list[str]:
    return [
        f"{edge.importer.split('.')[1]} must not import {edge.imported.split('.')[1]}: {edge}"
        for edge in forbidden_edges(graph, rules)
    ]


# --- the real package ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph() -> dict[tuple[str, str], list[Edge]]:
    built = build_graph(SRC, PACKAGE)
    assert ("api", "services") in built, "the graph builder found no api -> services import"
    return built


def test_no_two_parts_of_the_package_import_each_other(
    graph: dict[tuple[str, str], list[Edge]],
) -> None:
    report = cycle_report(graph)
    assert not report, "import cycles:\n" + "\n".join(report)


def test_the_surfaces_never_import_the_store(graph: dict[tuple[str, str], list[Edge]]) -> None:
    report = [f"{edge}" for edge in forbidden_edges(graph, FORBIDDEN)]
    assert not report, "surfaces reaching into store/ (go through a service):\n" + "\n".join(report)


# --- the checks can fail ------------------------------------------------------------------------
SYNTHETIC: list[tuple[str, dict[str, str], list[list[str]], int]] = [
    (
        "clean",
        {"a/__init__.py": "", "a/x.py": "from pkg.b import y\n", "b/y.py": "import os\n"},
        [],
        0,
    ),
    (
        "cycle through a lazy relative import",
        {
            "a/__init__.py": "",
            "a/x.py": "def f():\n    from ..b import y\n",
            "b/__init__.py": "",
            "b/y.py": "import pkg.a.x\n",
        },
        [["a", "b"]],
        0,
    ),
    (
        "cycle of three through 'from pkg import module'",
        {
            "a.py": "from pkg import b\n",
            "b.py": "from pkg.c import thing\n",
            "c/__init__.py": "from . import inner\n",
            "c/inner.py": "from ..a import name\n",
        },
        [["a", "b", "c"]],
        0,
    ),
    (
        "a surface importing the store",
        {
            "api/__init__.py": "",
            "api/routes.py": "if True:\n    from pkg.store.base import Store\n",
            "store/__init__.py": "",
            "store/base.py": "",
        },
        [],
        1,
    ),
    (
        "a surface importing the store relatively, inside a function",
        {
            "cli/__init__.py": "",
            "cli/cmd.py": "def run():\n    from ..store import open_store\n",
            "store/__init__.py": "",
        },
        [],
        1,
    ),
]


@pytest.mark.parametrize(
    ("files", "expected_cycles", "expected_forbidden"),
    [pytest.param(files, c, f, id=name) for name, files, c, f in SYNTHETIC],
)
def test_the_graph_builder_finds_cycles_and_forbidden_imports(
    tmp_path: Path,
    files: dict[str, str],
    expected_cycles: list[list[str]],
    expected_forbidden: int,
) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    for name, text in files.items():
        path = tmp_path / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    graph = build_graph(tmp_path, "pkg")
    assert cycles(graph) == expected_cycles
    forbidden = forbidden_report(graph, {"api": ("store",), "cli": ("store",)})
    assert len(forbidden) == expected_forbidden, forbidden
    if expected_forbidden:
        assert forbidden[0].startswith(
            (
                "api must not import store: pkg/api/routes.py:2:",
                "cli must not import store: pkg/cli/cmd.py:2:",
            )
        )


@pytest.mark.parametrize(
    ("module", "is_package", "level", "target", "expected"),
    [
        ("pkg.a.x", False, 1, "y", "pkg.a.y"),
        ("pkg.a.x", False, 2, "b", "pkg.b"),
        ("pkg.a", True, 1, "x", "pkg.a.x"),
        ("pkg.a", True, 2, None, "pkg"),
        ("pkg.a.x", False, 0, "os", "os"),
    ],
)
def test_relative_imports_resolve(
    module: str, is_package: bool, level: int, target: str | None, expected: str
) -> None:
    assert resolve(module, is_package, level, target) == expected
