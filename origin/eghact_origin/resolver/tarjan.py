"""Strongly connected components of the resolved graph (Tarjan), and the cycles the lockfile reports.

``strongly_connected_components`` returns components in **reverse topological order**: if any edge
leads from component X to a different component Y, Y comes before X. Read with dependency edges
(dependent -> dependency) that is a load order: every component comes after everything it reaches.
This is the order in which Tarjan's algorithm completes components, so it costs nothing extra.

The traversal is iterative: dependency chains thousands of packages deep would overflow Python's
recursion limit long before they troubled the algorithm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from eghact_origin.resolver.graph import ResolvedGraph

__all__ = ["InvalidGraph", "cycles", "dependency_map", "strongly_connected_components"]


class InvalidGraph(ValueError):
    """A :class:`ResolvedGraph` that contradicts itself; ``problems`` lists every contradiction.

    Only a solver bug produces one, so it is a plain ``ValueError`` (a 500), not a client error.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("inconsistent resolved graph: " + "; ".join(self.problems))


def strongly_connected_components(
    nodes: Iterable[str], successors: Callable[[str], Iterable[str]]
) -> list[list[str]]:
    """Every strongly connected component reachable from ``nodes``, in reverse topological order.

    A component comes after every component it has an edge to (sinks first). Members of a
    component are sorted. Nodes that only ``successors`` mentions are visited too. Among
    components the order depends only on the order of ``nodes`` and of each ``successors`` list,
    so equal inputs give equal output; pass sorted inputs for an order independent of the caller.
    O(V + E) time, no recursion.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []  # Tarjan's stack: visited nodes whose component is not yet complete
    on_stack: set[str] = set()
    components: list[list[str]] = []

    for start in nodes:
        if start in index:
            continue
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        # The explicit call stack: each frame is a node and the rest of its successor iterator, so
        # a frame resumes where it left off after a child returns -- what recursion would do.
        frames: list[tuple[str, Iterator[str]]] = [(start, iter(successors(start)))]
        while frames:
            node, pending = frames[-1]
            for succ in pending:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    frames.append((succ, iter(successors(succ))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                frames.pop()
                if frames:
                    parent = frames[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    component.sort()
                    components.append(component)
    return components


def dependency_map(graph: ResolvedGraph) -> dict[str, list[str]]:
    """Node key -> the keys it depends on (every edge kind), sorted and without repeats.

    Built once in O(E log E): ``ResolvedGraph.dependencies_of`` scans every edge per call.
    Edges from the request (source ``""``) are left out. Raises :class:`InvalidGraph` listing
    every edge or root that names a node the graph does not hold.
    """
    problems: list[str] = []
    for key, node in graph.nodes.items():
        if node.key != key:
            problems.append(f"node {key!r} carries key {node.key!r}")
    for name, key in graph.roots.items():
        if key not in graph.nodes:
            problems.append(f"root {name!r} points to missing node {key!r}")
    targets: dict[str, set[str]] = {key: set() for key in graph.nodes}
    for edge in graph.edges:
        if edge.target not in graph.nodes:
            problems.append(f"edge {edge.source!r} -> {edge.target!r}: missing target")
        if edge.source == "":
            continue
        if edge.source not in graph.nodes:
            problems.append(f"edge {edge.source!r} -> {edge.target!r}: missing source")
            continue
        targets[edge.source].add(edge.target)
    if problems:
        raise InvalidGraph(problems)
    return {key: sorted(deps) for key, deps in sorted(targets.items())}


def cycles(graph: ResolvedGraph) -> list[list[str]]:
    """The dependency cycles of ``graph``: components of more than one node, and self-loops.

    Each cycle lists its node keys sorted; cycles are sorted by their first key (components are
    disjoint, so that is a total order). Every edge kind counts, peer and optional included.
    """
    deps = dependency_map(graph)
    found = [
        component
        for component in strongly_connected_components(deps, deps.__getitem__)
        if len(component) > 1 or component[0] in deps[component[0]]
    ]
    return sorted(found)
