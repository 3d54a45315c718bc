"""The package's layers, written once: no import loop, no import that climbs a layer.

The import graph of ``src/attrition`` is read with :mod:`ast` (every ``import``, including the
ones inside functions, which run as surely as the others). A module may import from its own
layer and from the layers below it, never from a layer above; and no chain of imports may come
back to where it started.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "src" / "attrition"

#: The layers, lowest first. A module belongs to the layer of its longest matching prefix.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("attrition", "attrition.errors"),  # version, domain errors
    ("attrition.config",),  # typed settings
    ("attrition.logs",),  # logging set-up
    ("attrition.data",),  # the extracts and their vocabulary
    ("attrition.db",),  # tables, engine, audit trail, repositories
    ("attrition.model",),  # features, training, registry, runtime, explanations
    ("attrition.security",),  # API keys, clients, rate limits, sessions
    ("attrition.monitoring",),  # drift, metrics
    ("attrition.services",),  # prediction service, read side
    ("attrition.api",),  # FastAPI app, routers, web pages
    ("attrition.bootstrap",),  # prepare database, data, model before serving
    ("attrition.cli",),  # the ``attrition`` command
)

#: Third-party packages the API (and what it imports) must never load.
API_FORBIDDEN = ("typer", "click")


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_imports(root: Path = PACKAGE_DIR) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(internal, external)``: per module, the package modules and top-level packages it imports."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    internal: dict[str, set[str]] = {name: set() for name in files}
    external: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    for alias in node.names
                ]
            for target in targets:
                if target.split(".")[0] == "attrition":
                    while target not in files and "." in target:
                        target = target.rsplit(".", 1)[0]
                    if target != name:
                        internal[name].add(target)
                else:
                    external[name].add(target.split(".")[0])
    return internal, external


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def loops(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
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
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def upward_imports(graph: Mapping[str, Iterable[str]]) -> list[str]:
    return sorted(
        f"{source} ({LAYERS[layer_of(source)][0]}) -> {target} ({LAYERS[layer_of(target)][0]})"
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(source)
    )


def reachable(graph: Mapping[str, Iterable[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_module_has_a_layer() -> None:
    internal, _ = read_imports()
    assert [m for m in internal if layer_of(m) < 0] == []


def test_no_import_loop() -> None:
    internal, _ = read_imports()
    assert loops(internal) == []


def test_no_import_climbs_a_layer() -> None:
    internal, _ = read_imports()
    assert upward_imports(internal) == []


def test_the_api_never_imports_the_command_line() -> None:
    internal, external = read_imports()
    loaded = reachable(internal, "attrition.api.app")
    assert sorted(m for m in loaded if layer_of(m) > layer_of("attrition.api")) == []
    assert (
        sorted(f"{m}: {pkg}" for m in loaded for pkg in external[m] if pkg in API_FORBIDDEN) == []
    )


def test_the_checks_catch_what_they_look_for(tmp_path: Path) -> None:
    """A loop and an upward import planted in a tiny package are both reported."""
    pkg = tmp_path / "attrition"
    (pkg / "db").mkdir(parents=True)
    (pkg / "api").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "db" / "__init__.py").write_text("")
    (pkg / "api" / "__init__.py").write_text("")
    (pkg / "db" / "audit.py").write_text("def f():\n    from attrition.api.routers import x\n")
    (pkg / "api" / "routers.py").write_text("from attrition.db import audit\n")
    (pkg / "api" / "a.py").write_text("from . import b\n")
    (pkg / "api" / "b.py").write_text("from attrition.api.a import thing\nimport typer\n")
    internal, external = read_imports(pkg)
    assert loops(internal) == [
        ["attrition.api.a", "attrition.api.b"],
        ["attrition.api.routers", "attrition.db.audit"],
    ]
    assert upward_imports(internal) == [
        "attrition.db.audit (attrition.db) -> attrition.api.routers (attrition.api)"
    ]
    assert external["attrition.api.b"] == {"typer"}
