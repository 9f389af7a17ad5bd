"""The load plan (DESIGN §4): which plugins an app loads at start, and how the rest split into chunks.

The rules, and how they are met:

- **Eager.** Every middleware, transformer and theme node, and the node of every root named in
  ``eager``, is an *eager seed*; the ``"eager"`` chunk holds the seeds and everything they reach.
  A root whose node lands there (an eager type, named eager, or a dependency of an eager plugin)
  is an eager root: it is loaded at start anyway, so it gets no lazy chunk.
- **Lazy.** Every other root is a *lazy root*. Each remaining plugin gets its *reach set*: the
  lazy roots whose node reaches it (a root's node reaches itself). Plugins are grouped by exact
  reach set: a set of one root ``r`` is chunk ``"lazy:<r>"``; a larger set is a shared chunk
  ``"shared:<sha1 of the sorted root names, joined by newlines>[:10]"``. Loading root ``r`` is
  loading ``"lazy:<r>"`` after its ``requires``; by construction that brings in exactly the
  plugins ``r`` reaches -- none twice (one chunk per plugin), none early (a plugin sits in no
  chunk that some root needing it would not load anyway).
- **Every lazy root has its chunk**, even an empty one: when all of ``r``'s plugins are shared
  (another lazy root depends on ``r``, or two roots form a cycle) ``"lazy:<r>"`` has no plugins
  and ``requires`` the chunk holding ``r``'s node, so ``"lazy:<r>"`` is always the entry point.
  The ``"eager"`` chunk is always present too, possibly empty.
- **Cycles stay whole.** The graph is collapsed into strongly connected components (tarjan.py)
  and reach sets are computed per component, so a cycle's members share one reach set -- and
  one chunk -- by construction. Eager closure cannot split one either: what an eager member
  reaches includes the rest of its cycle.
- **Order.** Within a chunk plugins follow Tarjan's completion order, dependencies before
  dependents (a cycle's members in key order). ``requires`` names the other chunks holding
  direct dependencies of the chunk's plugins. Chunks come eager first, then shared chunks by
  decreasing root-set size, then lazy chunks by root name: a dependency's reach set contains
  its dependent's (whoever reaches the dependent reaches the dependency), so a chunk only ever
  requires ``"eager"`` or a chunk with a strictly larger root set, which that order puts first.

Plugins that neither a root nor an eager seed reaches are needed by nothing and are in no chunk.
Every edge kind (prod, optional, peer) is a dependency here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from eghact_common.errors import BadRequest
from eghact_origin.resolver.graph import ResolvedGraph
from eghact_origin.resolver.tarjan import dependency_map, strongly_connected_components

__all__ = ["EAGER_TYPES", "UnknownEagerRoot", "build_load_plan", "shared_chunk_id"]

#: plugin types the app needs from its first request, so they always load eagerly
EAGER_TYPES = frozenset({"middleware", "transformer", "theme"})
EAGER_CHUNK = "eager"


class UnknownEagerRoot(BadRequest, ValueError):
    """``eager`` names something that is not a root of the request; ``names`` lists all of them."""

    code = "unknown_eager_root"

    def __init__(self, names: list[str]):
        self.names = list(names)
        super().__init__(
            "eager names packages that are not requested dependencies: " + ", ".join(self.names),
            detail={"names": self.names},
        )


def shared_chunk_id(roots: Iterable[str]) -> str:
    """The id of the shared chunk for the lazy roots ``roots`` (order does not matter)."""
    digest = hashlib.sha1("\n".join(sorted(roots)).encode(), usedforsecurity=False).hexdigest()
    return f"shared:{digest[:10]}"


def build_load_plan(
    graph: ResolvedGraph,
    *,
    eager: Iterable[str],
    prefetch: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The ``loadPlan`` of the lockfile: ``{"chunks": [...], "prefetch": {...}}``.

    Each chunk is ``{"id", "plugins", "mode", "requires", "bytes"}`` as the module docstring
    explains. ``eager`` names roots (keys of ``graph.roots``) to load at start; a name that is
    not a root raises :class:`UnknownEagerRoot`. ``prefetch`` maps a root name to the root names
    most often used with it (co-usage statistics, most likely first); the plan's ``prefetch``
    maps each ``"lazy:<root>"`` to the lazy chunks of those roots, in the same order, dropping
    names that are not lazy roots of this plan (they are loaded at start, or not requested).
    A client prefetches a chunk with its ``requires``, as it loads one. Raises
    :class:`~eghact_origin.resolver.tarjan.InvalidGraph` on a graph that contradicts itself.
    O((V + E) * lazy roots / 64) for the reach sets, which are bit sets.
    """
    deps = dependency_map(graph)
    eager_names = set(eager)
    unknown = sorted(eager_names - graph.roots.keys())
    if unknown:
        raise UnknownEagerRoot(unknown)

    seeds = [key for key, node in graph.nodes.items() if node.type in EAGER_TYPES]
    seeds += [graph.roots[name] for name in eager_names]
    eager_keys = _closure(seeds, deps)

    lazy_roots = sorted(name for name, key in graph.roots.items() if key not in eager_keys)
    bit_of = {name: 1 << i for i, name in enumerate(lazy_roots)}

    # Reverse topological order over the whole graph, from sorted inputs: deterministic, and the
    # position of a component is a valid load position for each of its members.
    components = strongly_connected_components(deps, deps.__getitem__)
    component_of = {key: i for i, members in enumerate(components) for key in members}

    # Reach sets per component, pushed from dependents to dependencies: walking the components
    # backwards visits every dependent before its dependencies, so each mask is complete before
    # it is passed on. Eager components are skipped: everything they reach is eager too.
    masks = [0] * len(components)
    for name in lazy_roots:
        masks[component_of[graph.roots[name]]] |= bit_of[name]
    for i in range(len(components) - 1, -1, -1):
        mask = masks[i]
        if not mask or components[i][0] in eager_keys:
            continue
        for key in components[i]:
            for dep in deps[key]:
                j = component_of[dep]
                if j != i:
                    masks[j] |= mask

    # chunk id of every planned plugin; chunk contents in component order = load order
    chunk_of: dict[str, str] = {}
    plugins: dict[str, list[str]] = {EAGER_CHUNK: []}
    root_sets: dict[str, tuple[str, ...]] = {}
    chunk_of_mask: dict[int, str] = {}
    for i, members in enumerate(components):
        mask = masks[i]
        if members[0] in eager_keys:
            chunk_id = EAGER_CHUNK
        elif mask in chunk_of_mask:
            chunk_id = chunk_of_mask[mask]
        elif mask:
            roots = tuple(name for name in lazy_roots if mask & bit_of[name])
            chunk_id = f"lazy:{roots[0]}" if len(roots) == 1 else shared_chunk_id(roots)
            if chunk_id in root_sets:
                # 40 bits of sha1: a clash is astronomically unlikely, and would silently merge
                # two chunks, so it stops the plan rather than ship a wrong one.
                raise RuntimeError(f"shared chunk id clash: {chunk_id} for {roots} and {root_sets[chunk_id]}")
            root_sets[chunk_id] = roots
            chunk_of_mask[mask] = chunk_id
        else:
            continue  # reached by nothing that is loaded
        plugins.setdefault(chunk_id, []).extend(members)
        for key in members:
            chunk_of[key] = chunk_id

    # every lazy root has its entry chunk, even when all its plugins are shared
    for name in lazy_roots:
        entry = f"lazy:{name}"
        plugins.setdefault(entry, [])
        root_sets[entry] = (name,)

    requires: dict[str, set[str]] = {chunk_id: set() for chunk_id in plugins}
    for chunk_id, keys in plugins.items():
        for key in keys:
            requires[chunk_id].update(chunk_of[dep] for dep in deps[key])
    for name in lazy_roots:
        requires[f"lazy:{name}"].add(chunk_of[graph.roots[name]])
    for chunk_id, needed in requires.items():
        needed.discard(chunk_id)

    def order(chunk_id: str) -> tuple[int, int, tuple[str, ...]]:
        if chunk_id == EAGER_CHUNK:
            return (0, 0, ())
        return (1, -len(root_sets[chunk_id]), root_sets[chunk_id])

    ordered = sorted(plugins, key=order)
    position = {chunk_id: i for i, chunk_id in enumerate(ordered)}
    chunks = [
        {
            "id": chunk_id,
            "plugins": plugins[chunk_id],
            "mode": "eager" if chunk_id == EAGER_CHUNK else "lazy",
            "requires": sorted(requires[chunk_id], key=position.__getitem__),
            "bytes": sum(graph.nodes[key].size for key in plugins[chunk_id]),
        }
        for chunk_id in ordered
    ]
    return {"chunks": chunks, "prefetch": _prefetch(prefetch or {}, lazy_roots)}


def _closure(seeds: Iterable[str], deps: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(seeds)
    while todo:
        key = todo.pop()
        if key not in seen:
            seen.add(key)
            todo.extend(deps[key])
    return seen


def _prefetch(co_usage: Mapping[str, list[str]], lazy_roots: list[str]) -> dict[str, list[str]]:
    lazy = set(lazy_roots)
    hints: dict[str, list[str]] = {}
    for name in lazy_roots:
        likely: list[str] = []
        for other in co_usage.get(name, ()):
            chunk_id = f"lazy:{other}"
            # statistics are learnt across requests, so they name roots this request may lack
            if other in lazy and other != name and chunk_id not in likely:
                likely.append(chunk_id)
        if likely:
            hints[f"lazy:{name}"] = likely
    return hints
