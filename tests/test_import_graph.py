"""No import circles between edgepose's packages, and no production module imports the test helpers.

Every module under ``edgepose/`` is parsed with :mod:`ast` (nothing is imported), and every import counts:
module level, inside functions (the lazy imports that keep ``import edgepose`` light), under
``TYPE_CHECKING``. Modules collapse to their unit: a subpackage (``edgepose/export/targets/onnx.py`` →
``edgepose.export``) or a top-level module as itself (``edgepose.cli``, ``edgepose.testing``). A unit importing
its own modules is no edge. The root ``edgepose/__init__.py`` is the public facade (lazy re-exports of
``load`` / ``export`` / subpackages) and is no unit: an import of ``edgepose`` itself (``import edgepose``,
``from edgepose import __version__``) links to nothing, while ``from edgepose import models`` links to
``edgepose.models``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import edgepose

ROOT = Path(edgepose.__file__).parent
TEST_HELPERS = "edgepose.testing"

# Package edges that still close a cycle, each left to the work that owns its lines (issue 15), with what removes
# it. The test fails when an entry's edge is gone or no longer closes a cycle: then delete the entry. Never add one.
PENDING: dict[tuple[str, str], str] = {}  # edges that still close a cycle, each with what removes it


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def unit_of(module: str) -> str | None:
    """``edgepose.a.b.c`` → ``edgepose.a`` (its top-level subpackage or module); the root facade → None."""
    parts = module.split(".")
    if parts[0] != "edgepose" or len(parts) == 1:
        return None
    return ".".join(parts[:2])


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """Every edgepose module ``module`` imports, wherever the import statement stands."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.add(source)
            for alias in node.names:  # `from edgepose.export import targets` imports a module
                if f"{source}.{alias.name}" in known:
                    found.add(f"{source}.{alias.name}")
    return {m for m in found if m == "edgepose" or m.startswith("edgepose.")}


def import_graph() -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    """(unit → units it imports, (unit, unit) → the module-level evidence "a.b imports c.d")."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    why: dict[tuple[str, str], list[str]] = {}
    for module, path in modules.items():
        src = unit_of(module)
        if src is None:
            continue
        graph.setdefault(src, set())
        for target in sorted(imported_modules(module, path, known)):
            dst = unit_of(target)
            if dst is None or dst == src:
                continue
            graph[src].add(dst)
            why.setdefault((src, dst), []).append(f"{module} imports {target}")
    return graph, why


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one unit (Tarjan), each as one cycle through them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, comp) for comp in components]


def _cycle_in(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """One closed path a → ... → a inside a strongly connected component (shortest from its first unit)."""
    start, members = comp[0], set(comp)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    return comp


def _describe(cycle: list[str], why: dict[tuple[str, str], list[str]]) -> str:
    steps = []
    for a, b in zip(cycle, cycle[1:]):
        evidence = why[(a, b)]
        more = f" (+{len(evidence) - 1} more)" if len(evidence) > 1 else ""
        steps.append(f"  {a} → {b}: {evidence[0]}{more}")
    return " → ".join(cycle) + "\n" + "\n".join(steps)


def test_the_walk_sees_lazy_and_relative_imports():
    """The parser is no weaker than the code it checks: function-level and relative imports count."""
    modules = _modules()
    assert "edgepose.export.api" in modules and "edgepose.cli" in modules
    lazy = imported_modules("edgepose.export.api", modules["edgepose.export.api"], set(modules))
    assert "edgepose.runtimes.spec" in lazy  # imported inside a function only
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def _component_report(cycle: list[str], graph: dict[str, set[str]], why) -> str:
    """One cycle with its evidence, then every edge inside its tangle (all must go for the tangle to go)."""
    members = _members(graph, cycle[0])
    edges = [f"    {a} → {b}: {why[(a, b)][0]}" for a in sorted(members) for b in sorted(graph[a] & members)]
    return (_describe(cycle, why) + f"\n  the tangle: {len(members)} packages, {len(edges)} edges among them:\n"
            + "\n".join(edges))


def _members(graph: dict[str, set[str]], start: str) -> set[str]:
    """The units on a cycle through ``start``: reachable from it and reaching it."""

    def reach(v: str, edges) -> set[str]:
        seen, todo = {v}, [v]
        while todo:
            for w in edges(todo.pop()):
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen

    back = {v: {u for u in graph if v in graph[u]} for v in graph}
    return reach(start, lambda v: graph.get(v, ())) & reach(start, lambda v: back.get(v, ()))


def _without(graph: dict[str, set[str]], edges) -> dict[str, set[str]]:
    return {v: {w for w in ws if (v, w) not in edges} for v, ws in graph.items()}


def test_no_import_cycles_between_packages():
    graph, why = import_graph()
    cycles = find_cycles(_without(graph, PENDING))
    assert not cycles, "import cycles between edgepose packages:\n" + "\n".join(
        _component_report(c, graph, why) for c in cycles)


def test_production_code_does_not_import_the_test_helpers():
    modules = _modules()
    offenders = [f"{module} imports {target}" for module, path in modules.items() if module != TEST_HELPERS
                 for target in sorted(imported_modules(module, path, set(modules)))
                 if target == TEST_HELPERS or target.startswith(TEST_HELPERS + ".")]
    assert not offenders, ("production modules import the test helpers (move what they need into the package "
                           "that owns it; edgepose.testing may re-export it):\n  " + "\n  ".join(offenders))


def test_pending_edges_are_still_needed():
    """PENDING only shrinks: an entry whose edge is gone, or no longer closes a cycle, must be deleted."""
    graph, _ = import_graph()
    rest = _without(graph, PENDING)
    for (a, b), why in PENDING.items():
        assert b in graph.get(a, set()), f"{a} no longer imports {b}: delete its PENDING entry ({why[:60]}...)"
        alone = {v: set(ws) for v, ws in rest.items()}
        alone[a].add(b)
        assert find_cycles(alone), f"{a} → {b} no longer closes a cycle: delete its PENDING entry"
