"""The shape of the code: no import cycles between workbench's modules, and
no module longer than a reader can hold in mind.

Imports are read from the source with ``ast``, nothing is imported: every
``import`` and ``from ... import`` counts, at the top of a module, inside a
function (a lazy import) or under ``if TYPE_CHECKING:`` (a cycle of type-only
imports still ties the modules together for a reader and for mypy).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "workbench"
MAX_LINES = 500

# Modules allowed past MAX_LINES for now, each with why. Keep it empty.
LONG_MODULES: dict[str, str] = {}

# Packages whose inner cycles are allowed. Keep it empty: the app's flows
# reach their screen through tui/host.py's protocol, not by importing it.
CYCLE_EXEMPT_PACKAGES: tuple[str, ...] = ()


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The workbench modules that ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                while target and target not in modules:  # import a.b.c names a.b.c
                    target = target.rpartition(".")[0]
                if target:
                    yield target
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                # ``from pkg import mod`` imports the module; otherwise a name in base.
                if f"{base}.{alias.name}" in modules:
                    yield f"{base}.{alias.name}"
                elif base in modules:
                    yield base


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {t for t in _imports(name, path, modules) if t != name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so a long chain of imports cannot hit the recursion limit.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def _exempt(component: list[str]) -> bool:
    return any(
        all(m == p or m.startswith(p + ".") for m in component) for p in CYCLE_EXEMPT_PACKAGES
    )


def test_no_import_cycles() -> None:
    found = [c for c in cycles(import_graph()) if not _exempt(c)]
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert not _exempt(["workbench.tui.app", "workbench.tui.history"])


def test_the_import_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    # Top level, lazy (inside a function) and type-only imports are all edges.
    assert "workbench.engine.running.protocol" in graph["workbench.engine.running.compare"]
    assert "workbench.engine.running.backends.remote" in graph["workbench.engine.running.runners"]
    assert "workbench.engine.models.hub" in graph["workbench.cli_hub"]
    assert "workbench.tui.app" in graph["workbench.cli"]


def test_no_module_is_too_long() -> None:
    too_long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text("utf-8").splitlines())
        if lines > MAX_LINES and name not in LONG_MODULES:
            too_long[name] = lines
    assert not too_long, f"modules over {MAX_LINES} lines (split them by job): {too_long}"


def test_the_long_modules_listed_exist() -> None:
    for name in LONG_MODULES:
        assert (ROOT / name).is_file(), f"{name} is gone: take it off LONG_MODULES"
