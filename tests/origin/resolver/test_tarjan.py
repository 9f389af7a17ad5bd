"""Tarjan's strongly connected components: known graphs, deep chains, and brute force on random graphs."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eghact_origin.resolver.graph import Edge, ResolvedGraph
from eghact_origin.resolver.tarjan import InvalidGraph, cycles, dependency_map, strongly_connected_components

from .test_loadplan import graph_of, key


def successors_of(edges: dict[str, list[str]]) -> Callable[[str], list[str]]:
    return lambda n: edges.get(n, [])


def components_of(edges: dict[str, list[str]], nodes: list[str] | None = None) -> list[list[str]]:
    return strongly_connected_components(nodes if nodes is not None else sorted(edges), successors_of(edges))


def assert_reverse_topological(components: list[list[str]], edges: dict[str, list[str]]) -> None:
    """Every edge between two components points to one listed earlier."""
    where = {n: i for i, c in enumerate(components) for n in c}
    for source, targets in edges.items():
        for target in targets:
            assert where[target] <= where[source], (source, target)


def test_empty_and_single() -> None:
    assert strongly_connected_components([], successors_of({})) == []
    assert components_of({"a": []}) == [["a"]]
    assert components_of({"a": ["a"]}) == [["a"]]


def test_the_textbook_graph() -> None:
    # CLRS figure 22.9: {a,b,e} -> {c,d} -> {f,g} -> {h}, and {a,b,e} -> {f,g} directly
    edges = {"a": ["b"], "b": ["c", "e", "f"], "c": ["d", "g"], "d": ["c", "h"], "e": ["a", "f"],
             "f": ["g"], "g": ["f", "h"], "h": ["h"]}
    found = components_of(edges)
    assert found == [["h"], ["f", "g"], ["c", "d"], ["a", "b", "e"]]
    assert_reverse_topological(found, edges)


def test_the_order_is_sinks_first_whatever_the_start() -> None:
    edges = {"app": ["lib"], "lib": ["core"], "core": []}
    assert components_of(edges, ["core", "lib", "app"]) == [["core"], ["lib"], ["app"]]
    assert components_of(edges, ["app", "lib", "core"]) == [["core"], ["lib"], ["app"]]


def test_nodes_only_successors_mention_are_visited() -> None:
    assert components_of({"a": ["b"]}, ["a"]) == [["b"], ["a"]]


def test_duplicate_edges_and_start_nodes_are_harmless() -> None:
    assert components_of({"a": ["b", "b"], "b": ["a", "a"]}, ["a", "b", "a"]) == [["a", "b"]]


@pytest.mark.parametrize("ring", [False, True])
def test_ten_thousand_deep_without_recursion(ring: bool) -> None:
    n = 10_000
    assert n > sys.getrecursionlimit()
    edges = {f"n{i}": [f"n{i + 1}"] for i in range(n - 1)}
    edges[f"n{n - 1}"] = ["n0"] if ring else []
    found = components_of(edges, ["n0"])
    if ring:
        assert found == [sorted(edges)]
    else:
        assert found == [[f"n{i}"] for i in reversed(range(n))]


def _brute_force(nodes: list[str], edges: dict[str, list[str]]) -> set[frozenset[str]]:
    reach: dict[str, set[str]] = {}
    for start in nodes:
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges.get(todo.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen
    return {frozenset(m for m in nodes if m in reach[n] and n in reach[m]) for n in nodes}


@st.composite
def random_graphs(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(1, 25))
    names = [f"v{i}" for i in range(n)]
    density = draw(st.floats(0, 3))
    pairs = draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)), max_size=int(density * n)))
    edges: dict[str, list[str]] = {name: [] for name in names}
    for source, target in pairs:
        edges[source].append(target)
    return edges


@settings(max_examples=400, deadline=None)
@given(random_graphs(), st.randoms(use_true_random=False))
def test_random_graphs_match_brute_force(edges: dict[str, list[str]], rnd: random.Random) -> None:
    nodes = list(edges)
    rnd.shuffle(nodes)
    found = components_of(edges, nodes)
    assert {frozenset(c) for c in found} == _brute_force(nodes, edges)
    assert sum(len(c) for c in found) == len(nodes)
    assert all(c == sorted(c) for c in found)
    assert_reverse_topological(found, edges)
    assert components_of(edges, nodes) == found  # deterministic


# ---- cycles of a resolved graph ------------------------------------------------------------------------

def test_cycles_lists_components_and_self_loops_sorted() -> None:
    graph = graph_of("app>z z>y y^x x?z app>me me>me app>a a>b b>a app>lone", ["app"])
    assert cycles(graph) == [[key("a"), key("b")], [key("me")], [key("x"), key("y"), key("z")]]


def test_an_acyclic_graph_has_no_cycles() -> None:
    assert cycles(graph_of("app>left app>right left>base right>base", ["app"])) == []


def test_dependency_map_is_sorted_and_leaves_out_the_request() -> None:
    graph = graph_of("app>z app>a app>a", ["app"])
    assert dependency_map(graph) == {key("a"): [], key("app"): [key("a"), key("z")], key("z"): []}


def test_an_inconsistent_graph_lists_every_problem() -> None:
    graph = graph_of("app>lib", ["app"])
    nodes = dict(graph.nodes)
    nodes["node_modules/alias"] = nodes[key("lib")]
    broken = ResolvedGraph(roots={"app": key("app"), "gone": "node_modules/gone"}, nodes=nodes,
                           edges=(*graph.edges, Edge("", "node_modules/nope", "prod", "1"),
                                  Edge("node_modules/ghost", key("lib"), "prod", "1")))
    with pytest.raises(InvalidGraph) as caught:
        cycles(broken)
    assert isinstance(caught.value, ValueError)
    assert caught.value.problems == [
        "node 'node_modules/alias' carries key 'node_modules/lib'",
        "root 'gone' points to missing node 'node_modules/gone'",
        "edge '' -> 'node_modules/nope': missing target",
        "edge 'node_modules/ghost' -> 'node_modules/lib': missing source",
    ]
