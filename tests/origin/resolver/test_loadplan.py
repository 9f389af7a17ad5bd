"""The load plan: hand-built graphs for each rule, and properties checked against brute force."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eghact_common.errors import BadRequest
from eghact_origin.resolver.graph import Edge, EdgeKind, Node, ResolvedGraph
from eghact_origin.resolver.loadplan import EAGER_TYPES, UnknownEagerRoot, build_load_plan, shared_chunk_id
from eghact_origin.resolver.tarjan import InvalidGraph

FAST = settings(max_examples=300, deadline=None)
_ARROWS: dict[str, EdgeKind] = {">": "prod", "?": "optional", "^": "peer"}


# ---- building graphs (also used by the tarjan and lockfile tests) -----------------------------------

def key(name: str) -> str:
    return f"node_modules/{name}"


def node(name: str, type: str = "library", size: int = 100, **extra: Any) -> Node:
    fields: dict[str, Any] = {
        "key": key(name), "name": name, "version": "1.0.0", "type": type,
        "resolved": f"https://registry.test/{name}/-/{name}-1.0.0.tgz",
        "integrity": "sha512-" + hashlib.sha512(name.encode()).hexdigest(),
        "size": size, "license": "MIT", "dependencies": {},
    }
    fields.update(extra)
    return Node(**fields)


def graph_of(
    edges: str | Iterable[tuple[str, str, EdgeKind]],
    roots: Iterable[str],
    types: dict[str, str] | None = None,
    sizes: dict[str, int] | None = None,
    names: Iterable[str] = (),
) -> ResolvedGraph:
    """A graph from ``"a>b b?c c^a"`` (prod, optional, peer edges) or triples, by package name."""
    if isinstance(edges, str):
        triples = [(word[0:i], word[i + 1:], _ARROWS[word[i]])
                   for word in edges.split() for i in [next(j for j, ch in enumerate(word) if ch in _ARROWS)]]
    else:
        triples = list(edges)
    roots = list(roots)
    everyone = sorted({*names, *roots, *(s for s, _, _ in triples), *(t for _, t, _ in triples)})
    deps: dict[str, dict[str, str]] = {name: {} for name in everyone}
    for source, target, _ in triples:
        deps[source][target] = "^1.0.0"
    types, sizes = types or {}, sizes or {}
    nodes = {key(name): node(name, types.get(name, "library"), sizes.get(name, 100), dependencies=deps[name])
             for name in everyone}
    all_edges = [Edge("", key(root), "prod", "^1.0.0") for root in roots]
    all_edges += [Edge(key(s), key(t), kind, "^1.0.0") for s, t, kind in triples]
    return ResolvedGraph(roots={root: key(root) for root in roots}, nodes=nodes, edges=tuple(all_edges))


def by_id(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {chunk["id"]: chunk for chunk in plan["chunks"]}


def names_in(chunk: dict[str, Any]) -> list[str]:
    return [plugin.removeprefix("node_modules/") for plugin in chunk["plugins"]]


def shared(*roots: str) -> str:
    return "shared:" + hashlib.sha1("\n".join(sorted(roots)).encode()).hexdigest()[:10]


# ---- hand-built graphs ------------------------------------------------------------------------------

def test_diamond_loads_in_dependency_order_in_one_lazy_chunk() -> None:
    graph = graph_of("app>left app>right left>base right>base", ["app"], sizes={"base": 7})
    plan = build_load_plan(graph, eager=[])
    assert [c["id"] for c in plan["chunks"]] == ["eager", "lazy:app"]
    order = names_in(by_id(plan)["lazy:app"])
    assert order[0] == "base" and order[-1] == "app" and set(order[1:3]) == {"left", "right"}
    assert by_id(plan)["lazy:app"] == {
        "id": "lazy:app", "plugins": [key(n) for n in order], "mode": "lazy", "requires": [], "bytes": 307,
    }
    assert by_id(plan)["eager"] == {"id": "eager", "plugins": [], "mode": "eager", "requires": [], "bytes": 0}
    assert plan["prefetch"] == {}


def test_a_cycle_of_three_inside_a_lazy_root_stays_together_before_its_dependent() -> None:
    graph = graph_of("app>x x>y y>z z>x z>leaf", ["app", "other"])
    chunks = by_id(build_load_plan(graph, eager=[]))
    assert names_in(chunks["lazy:app"]) == ["leaf", "x", "y", "z", "app"]  # the cycle in key order
    assert names_in(chunks["lazy:other"]) == ["other"]


def test_shared_chunks_group_by_the_exact_set_of_lazy_roots() -> None:
    graph = graph_of(
        "a>ab b>ab a>abc b>abc c>abc b>bc c>bc ab>abc bc>deep", ["a", "b", "c"],
        sizes={"ab": 10, "abc": 20, "bc": 30, "deep": 40},
    )
    plan = build_load_plan(graph, eager=[])
    chunks = by_id(plan)
    assert [c["id"] for c in plan["chunks"]] == [
        "eager", shared("a", "b", "c"), shared("a", "b"), shared("b", "c"), "lazy:a", "lazy:b", "lazy:c",
    ]
    assert names_in(chunks[shared("a", "b", "c")]) == ["abc"]
    assert names_in(chunks[shared("a", "b")]) == ["ab"]
    assert names_in(chunks[shared("b", "c")]) == ["deep", "bc"]  # deep is reached only through bc
    assert chunks[shared("b", "c")]["bytes"] == 70
    assert chunks[shared("a", "b")]["requires"] == [shared("a", "b", "c")]
    assert chunks["lazy:a"]["requires"] == [shared("a", "b", "c"), shared("a", "b")]
    assert chunks["lazy:b"]["requires"] == [shared("a", "b", "c"), shared("a", "b"), shared("b", "c")]
    assert chunks["lazy:c"]["requires"] == [shared("a", "b", "c"), shared("b", "c")]
    assert {c["mode"] for c in plan["chunks"][1:]} == {"lazy"}
    assert shared("a", "b") == shared_chunk_id(["b", "a"])


def test_a_dependency_of_eager_middleware_is_eager_not_shared() -> None:
    graph = graph_of("auth>util page>util page>chart blog>chart", ["page", "blog"],
                     types={"auth": "middleware", "page": "component", "blog": "component"})
    chunks = by_id(build_load_plan(graph, eager=[]))
    assert names_in(chunks["eager"]) == ["util", "auth"]  # auth is not a root: every middleware node is eager
    assert names_in(chunks["lazy:page"]) == ["page"]
    assert chunks["lazy:page"]["requires"] == ["eager", shared("blog", "page")]
    assert names_in(chunks[shared("blog", "page")]) == ["chart"]


@pytest.mark.parametrize("kind", sorted(EAGER_TYPES))
def test_a_root_of_an_eager_type_is_eager_and_has_no_lazy_chunk(kind: str) -> None:
    graph = graph_of("look>palette page>palette", ["look", "page"], types={"look": kind})
    chunks = by_id(build_load_plan(graph, eager=[]))
    assert list(chunks) == ["eager", "lazy:page"]
    assert names_in(chunks["eager"]) == ["palette", "look"]
    assert chunks["lazy:page"]["requires"] == ["eager"]


def test_roots_named_eager_load_at_start_with_their_dependencies() -> None:
    graph = graph_of("shell>nav nav>icons page>icons", ["shell", "page"])
    chunks = by_id(build_load_plan(graph, eager=["shell", "shell"]))
    assert names_in(chunks["eager"]) == ["icons", "nav", "shell"]
    assert list(chunks) == ["eager", "lazy:page"]


def test_a_lazy_root_reached_by_another_lazy_root_keeps_an_entry_chunk() -> None:
    graph = graph_of("editor>markdown markdown>parser", ["editor", "markdown"])
    plan = build_load_plan(graph, eager=[])
    chunks = by_id(plan)
    pair = shared("editor", "markdown")
    assert [c["id"] for c in plan["chunks"]] == ["eager", pair, "lazy:editor", "lazy:markdown"]
    assert names_in(chunks[pair]) == ["parser", "markdown"]
    assert chunks["lazy:markdown"] == {"id": "lazy:markdown", "plugins": [], "mode": "lazy", "requires": [pair],
                                       "bytes": 0}
    assert names_in(chunks["lazy:editor"]) == ["editor"]


def test_two_lazy_roots_in_one_cycle_share_a_chunk() -> None:
    graph = graph_of("a>b b^a b>c", ["a", "b"])
    chunks = by_id(build_load_plan(graph, eager=[]))
    assert names_in(chunks[shared("a", "b")]) == ["c", "a", "b"]
    assert chunks["lazy:a"]["plugins"] == chunks["lazy:b"]["plugins"] == []


def test_a_cycle_reaching_into_eager_is_not_split() -> None:
    # m is middleware inside the cycle m -> x -> m: the whole cycle is eager
    graph = graph_of("page>x x>m m>x", ["page"], types={"m": "middleware"})
    chunks = by_id(build_load_plan(graph, eager=[]))
    assert names_in(chunks["eager"]) == ["m", "x"]
    assert names_in(chunks["lazy:page"]) == ["page"]


def test_peer_and_optional_edges_order_loading() -> None:
    graph = graph_of("app?opt app^peer peer>base opt>base", ["app"])
    order = names_in(by_id(build_load_plan(graph, eager=[]))["lazy:app"])
    assert order.index("base") < order.index("peer") < order.index("app")
    assert order.index("opt") < order.index("app")


def test_plugins_no_root_reaches_are_in_no_chunk() -> None:
    graph = graph_of("app>lib stray>lib", ["app"])
    plan = build_load_plan(graph, eager=[])
    assert {p for c in plan["chunks"] for p in c["plugins"]} == {key("app"), key("lib")}


def test_prefetch_maps_co_used_roots_to_their_lazy_chunks() -> None:
    graph = graph_of("", ["a", "b", "c", "shell"], types={"shell": "theme"})
    plan = build_load_plan(graph, eager=[], prefetch={
        "a": ["c", "shell", "unknown", "a", "b", "c"],  # eager, unrequested, itself and repeats dropped
        "b": ["shell"],
        "shell": ["a"],  # an eager root has no lazy chunk to hang hints on
    })
    assert plan["prefetch"] == {"lazy:a": ["lazy:c", "lazy:b"]}


def test_eager_must_name_roots() -> None:
    graph = graph_of("app>lib", ["app"])
    with pytest.raises(UnknownEagerRoot) as caught:
        build_load_plan(graph, eager=["lib", "app", "ghost"])
    assert caught.value.names == ["ghost", "lib"]
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, BadRequest)
    assert caught.value.status == 400 and caught.value.to_body()["detail"] == {"names": ["ghost", "lib"]}


def test_an_inconsistent_graph_is_refused_with_every_problem() -> None:
    graph = graph_of("app>lib", ["app"])
    broken = ResolvedGraph(roots={**graph.roots, "gone": key("gone")}, nodes=graph.nodes,
                           edges=(*graph.edges, Edge(key("app"), key("missing"), "prod", "1"),
                                  Edge(key("ghost"), key("lib"), "peer", "1")))
    with pytest.raises(InvalidGraph) as caught:
        build_load_plan(broken, eager=[])
    assert len(caught.value.problems) == 3


def test_a_chain_ten_thousand_deep_plans_without_recursion() -> None:
    n = 10_000
    graph = graph_of([(f"p{i:05}", f"p{i + 1:05}", "prod") for i in range(n - 1)], ["p00000"])
    chunk = by_id(build_load_plan(graph, eager=[]))["lazy:p00000"]
    assert chunk["plugins"] == [key(f"p{i:05}") for i in reversed(range(n))]
    assert chunk["bytes"] == 100 * n


# ---- properties against brute force ----------------------------------------------------------------

_TYPES = ["library"] * 4 + ["component"] * 4 + sorted(EAGER_TYPES)
_KINDS: list[EdgeKind] = ["prod", "prod", "prod", "optional", "peer"]


@st.composite
def plan_inputs(draw: st.DrawFn) -> tuple[ResolvedGraph, list[str]]:
    """A random DAG (edges from lower to higher index) plus a few arbitrary edges making cycles."""
    n = draw(st.integers(1, 14))
    names = [f"p{i:02}" for i in range(n)]
    pair = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    forward = draw(st.lists(pair.filter(lambda p: p[0] < p[1]), max_size=2 * n)) if n > 1 else []
    back = draw(st.lists(pair, max_size=3))
    edges = [(names[s], names[t], draw(st.sampled_from(_KINDS))) for s, t in [*forward, *back]]
    types = {name: draw(st.sampled_from(_TYPES)) for name in names}
    sizes = {name: draw(st.integers(0, 10**6)) for name in names}
    roots = draw(st.lists(st.sampled_from(names), unique=True, max_size=n))
    eager = draw(st.lists(st.sampled_from(roots), unique=True)) if roots else []
    return graph_of(edges, roots, types, sizes, names=names), eager


def _reach(deps: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in deps[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@FAST
@given(plan_inputs())
def test_load_plan_properties(case: tuple[ResolvedGraph, list[str]]) -> None:
    graph, eager = case
    plan = build_load_plan(graph, eager=eager)
    chunks = by_id(plan)
    deps: dict[str, set[str]] = {k: set() for k in graph.nodes}
    for edge in graph.edges:
        if edge.source:
            deps[edge.source].add(edge.target)
    reach = {k: _reach(deps, k) for k in graph.nodes}

    seeds = {k for k, n in graph.nodes.items() if n.type in EAGER_TYPES} | {graph.roots[r] for r in eager}
    eager_closure = set().union(*(reach[s] for s in seeds))
    lazy_roots = {r for r, k in graph.roots.items() if k not in eager_closure}
    reach_set = {p: frozenset(r for r in lazy_roots if p in reach[graph.roots[r]]) for p in graph.nodes}
    needed = eager_closure | {p for p in graph.nodes if reach_set[p]}

    # every needed plugin in exactly one chunk, nothing else anywhere
    placed = [p for c in plan["chunks"] for p in c["plugins"]]
    assert len(placed) == len(set(placed)) and set(placed) == needed
    chunk_of = {p: c["id"] for c in plan["chunks"] for p in c["plugins"]}

    # the eager chunk is exactly the closure of the eager seeds, and comes first
    assert plan["chunks"][0]["id"] == "eager" and plan["chunks"][0]["mode"] == "eager"
    assert set(chunks["eager"]["plugins"]) == eager_closure
    assert all(c["mode"] == "lazy" for c in plan["chunks"][1:])

    # the lazy chunks are exactly the groups by reach set, and every lazy root has its own
    groups: dict[frozenset[str], set[str]] = {}
    for p in needed - eager_closure:
        groups.setdefault(reach_set[p], set()).add(p)
    expected = {(f"lazy:{min(s)}" if len(s) == 1 else shared(*s)): plugins for s, plugins in groups.items()}
    expected.update({f"lazy:{r}": expected.get(f"lazy:{r}", set()) for r in lazy_roots})
    assert {cid: set(c["plugins"]) for cid, c in chunks.items() if cid != "eager"} == expected

    # cycles stay inside one chunk
    for p in needed:
        for q in needed:
            if q in reach[p] and p in reach[q]:
                assert chunk_of[p] == chunk_of[q]

    # every dependency loads before its dependent (except within a cycle), and across chunks it is required
    position = {p: i for i, p in enumerate(placed)}
    for p in needed:
        for q in deps[p]:
            if p not in reach[q]:
                assert position[q] < position[p]
            if chunk_of[q] != chunk_of[p]:
                assert chunk_of[q] in chunks[chunk_of[p]]["requires"]

    # requires: exactly the chunks holding direct dependencies (plus a root's own chunk), listed earlier
    order = [c["id"] for c in plan["chunks"]]
    for cid, c in chunks.items():
        wanted = {chunk_of[q] for p in c["plugins"] for q in deps[p]}
        if cid.startswith("lazy:"):
            wanted.add(chunk_of[graph.roots[cid.removeprefix("lazy:")]])
        assert set(c["requires"]) == wanted - {cid}
        assert all(order.index(r) < order.index(cid) for r in c["requires"])
        assert c["bytes"] == sum(graph.nodes[p].size for p in c["plugins"])

    # loading a lazy root loads exactly what it reaches: nothing missing, nothing early
    for r in lazy_roots:
        loaded, todo = {"eager"}, [f"lazy:{r}"]
        while todo:
            cid = todo.pop()
            if cid not in loaded:
                loaded.add(cid)
                todo.extend(chunks[cid]["requires"])
        plugins = {p for cid in loaded for p in chunks[cid]["plugins"]}
        assert plugins == reach[graph.roots[r]] | eager_closure


@FAST
@given(plan_inputs(), st.randoms(use_true_random=False))
def test_the_plan_does_not_depend_on_input_order(case: tuple[ResolvedGraph, list[str]], rnd: random.Random) -> None:
    graph, eager = case

    def shuffled(items: Iterable[Any]) -> list[Any]:
        items = list(items)
        rnd.shuffle(items)
        return items

    again = ResolvedGraph(roots=dict(shuffled(graph.roots.items())), nodes=dict(shuffled(graph.nodes.items())),
                          edges=tuple(shuffled(graph.edges)))
    prefetch = {r: sorted(graph.roots) for r in graph.roots}
    assert build_load_plan(graph, eager=eager, prefetch=prefetch) == build_load_plan(
        again, eager=shuffled(eager), prefetch=prefetch)
