"""The import graph of pbgm, adapters, controls and the admin GUI has no loop.

A loop is found as a strongly connected component of more than one module in the graph
that import-linter builds (grimp), with one edge more than it draws: importing `a.b.c`
runs `a/__init__` and `a/b/__init__` first, so those count as imported too. Imports made
only for type checking count as well: a loop that needs `TYPE_CHECKING` to run is still
two modules that cannot be read apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grimp
import pytest

PACKAGES = ("pbgm", "pbgm_admin", "adapters", "controls")


def import_graph() -> dict[str, set[str]]:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        imported = {
            m for m in graph.find_modules_directly_imported_by(module) if m in graph.modules
        }
        edges[module] = imported | {p for m in imported for p in _parents(m, module, graph.modules)}
    return edges


def _parents(module: str, importer: str, known: set[str]) -> Iterable[str]:
    parts = module.split(".")
    for end in range(1, len(parts)):
        parent = ".".join(parts[:end])
        if parent in known and importer != parent and not importer.startswith(parent + "."):
            yield parent


def loops(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


@pytest.mark.parametrize(
    ("what_is_checked", "edges", "expected"),
    [
        ("no edges, no loop", {"a": set(), "b": set()}, []),
        ("a chain is no loop", {"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ("two modules importing each other", {"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        (
            "a loop of three beside a chain",
            {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}},
            [["a", "b", "c"]],
        ),
    ],
)
def test_the_loop_finder(what_is_checked, edges, expected):
    assert loops(edges) == expected


def test_a_submodule_import_runs_its_parents():
    graph = import_graph()
    # pbgm.access imports pbgm.store.base, so it runs pbgm.store's __init__ first;
    # a module inside a package does not run its own package again
    assert {"pbgm.store", "pbgm.store.base"} <= graph["pbgm.access"]
    assert "adapters.pmu" not in graph["adapters.pmu._stream"]


def test_no_module_imports_another_in_a_loop():
    assert loops(import_graph()) == []
