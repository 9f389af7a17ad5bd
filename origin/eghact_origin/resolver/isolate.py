"""``duplicate=isolate``: the tree ``npm install`` (npm 7+, @npmcli/arborist) would build.

A port of arborist's ``buildIdealTree``, so that ``npm install --package-lock-only`` and this
solver agree on the (name, version) set. The loop, as npm runs it:

* a queue of tree nodes, shallowest first, then by location in ``Intl.Collator('en')`` order;
* each node's *problem edges* (missing or invalid) are fetched -- the version npm's picker
  chooses (:mod:`.picker`), loaded with its peer set into a *virtual root* that carries the
  dependent's own dependencies -- and placed in name order (:mod:`._placement`): as high as
  possible short of a conflict, replacing an older copy every dependent accepts, pruning
  copies made redundant, with its unmet peers beside it;
* nodes whose edges a placement broke go back into the queue.

Failed fetches become *failure nodes*. At the end, one that something needs for real is an
error; one reached only through optional edges (or, under ``peer=warn``, peer edges) is
pruned with what needs it, up to those edges (npm's ``optionalSet``), leaving a warning.

Known divergences from npm (checked against npm 11 on seeded universes and ~1,000 random
peer-heavy ones), by design:

* ``peer=warn`` handles peer conflicts as ``npm --force`` does (warn and override, never
  ERESOLVE) and ``peer=error`` as ``--strict-peer-deps``; a peer with no matching version
  at all is a warning under ``peer=warn`` (npm: ETARGET even with --force);
* npm 11 writes "inert" optional sets (an optional dependency whose own dependency failed)
  and "extraneous" copies (left unreachable by a replacement) to package-lock.json; here
  a copy nothing reaches is not reported;
* a cyclic nesting that npm breaks with a symlink to an ancestor copy points at that copy;
* a package's peer dependency on itself is ignored (npm crashes on some);
* a copy that replaces another and depends on a later version of its own name (e@1 -> e ^2)
  stays, with that version nested under it; npm 11 prunes it as its own invalid dependency
  and writes a lockfile without it, even when the project itself depends on it (data case
  ``self-dependency-replaced``);
* on some peer-heavy inputs npm never returns; here the loop stops after a bounded number
  of steps with an ``Unresolvable`` that says so;
* no bundled dependencies, shrinkwraps, workspaces, overrides, engine/os checks; ``npm:``
  aliases are followed (the target package in the alias's folder), other non-registry specs
  (git, URL, path) are warned about and left out.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from typing import Any

from eghact_common.errors import Unresolvable

from . import explain
from ._placement import OK, REPLACE, PlaceDep
from ._tree import Tree, TreeEdge, TreeNode, collate, grow, satisfies
from .graph import Edge, EdgeKind, ResolvedGraph
from .picker import Catalog
from .policy import Policy
from .provider import Provider, registry_spec, spec_kind
from .request import ResolveRequest

__all__ = ["resolve_isolate"]

_MAX_PEER_DEPTH = 64
_STEPS_PER_COPY = 20
_KIND: dict[str, EdgeKind] = {"prod": "prod", "optional": "optional", "peer": "peer", "peerOptional": "peer"}


def resolve_isolate(request: ResolveRequest, provider: Provider) -> ResolvedGraph:
    """Resolve as ``npm install`` would lay out node_modules. Raises
    :class:`~eghact_common.errors.Unresolvable` when a required dependency has no version."""
    policy = Policy(request)
    catalog = Catalog(provider, policy, request.strategy.version, request.prefer)
    builder = Builder(request, catalog, policy)
    try:
        builder.build()
        return builder.finish(request)
    except Unresolvable as error:
        error.detail["considered"] = sorted(catalog.considered)
        raise


class Builder(Tree):
    """arborist's ``buildIdealTree`` over a :class:`Tree`."""

    def __init__(self, request: ResolveRequest, catalog: Catalog, policy: Policy,
                 pins: Mapping[tuple[str, str], int] | None = None):
        root = TreeNode("")
        root.edges = {name: TreeEdge(root, name, spec, "prod") for name, spec in request.dependencies.items()}
        super().__init__(root)
        self.catalog, self.policy, self.strict = catalog, policy, policy.peer_error
        # (name, spec) -> the version (an index) a dependency on a plain library at spec gets,
        # chosen beforehand by duplicate=plugins' search (whose catalog holds each plugin to
        # its version); None: npm's pick for everything
        self.pins = pins
        self.queue: list[tuple[int, Any, int, TreeNode]] = []
        self.queued: set[TreeNode] = set()
        self._pushes = 0
        self.seen: set[TreeNode] = set()
        self.failures: dict[TreeNode, None] = {}
        self.virtual_roots: dict[TreeNode, TreeNode] = {}
        self.omitted: dict[TreeEdge, str] = {}  # edges whose target was pruned as a failure, and why
        self._peer_depth = 0

    # ------------------------------------------------------------------ fetching

    def virtual_root(self, source: TreeNode, reuse: bool = False) -> TreeNode:
        if reuse and source in self.virtual_roots:
            return self.virtual_roots[source]
        vr = TreeNode(source.name)
        vr.cand, vr.index, vr.source_ref = source.cand, source.index, source
        vr.edges = {name: TreeEdge(vr, name, e.spec, e.type) for name, e in source.edges.items()}
        self.virtual_roots[source] = vr
        return vr

    def node_from_spec(self, name: str, spec: str, parent: TreeNode) -> TreeNode:
        # ``name`` is the folder; an npm: alias puts its target package there
        package, wanted = registry_spec(name, spec)
        cand = self.catalog.get(package)
        info = None
        why = "not in the registry" if cand is None else f"no installable version satisfies {spec}"
        if cand is not None and spec_kind(wanted) != "unsupported":
            pinned = self.pins.get((package, wanted)) if self.pins is not None and not cand.info.plugin else None
            info = cand.pick(wanted) if pinned is None else cand.info.ordered[pinned]
        if cand is None or info is None:
            node = TreeNode(name, None, -1, (why,))
            self.failures[node] = None
        else:
            node = TreeNode(name, cand, cand.info.index[info.version])
        self.attach(node, parent)
        return node

    def node_from_edge(self, edge: TreeEdge, parent: TreeNode | None, second: TreeEdge | None,
                       required: set[TreeNode]) -> TreeNode:
        parent = parent if parent is not None else self.virtual_root(edge.source)
        first = self.node_from_spec(edge.name, edge.spec, parent)
        other = None
        if second is not None and not second.valid():
            other = self.node_from_spec(edge.name, second.spec, parent)
        node = other if other is not None and edge.valid() else first
        self.attach(node, parent)
        if (edge.source in required and edge.type != "peerOptional") or (
                second is not None and second.source in required and second.type != "peerOptional"):
            required.add(node)
        return self.load_peer_set(node, required)

    def load_peer_set(self, node: TreeNode, required: set[TreeNode]) -> TreeNode:
        """Fetch ``node``'s peers (and theirs) into its virtual root, as arborist does."""
        self._peer_depth += 1
        try:
            if self._peer_depth > _MAX_PEER_DEPTH:
                return node
            peer_edges = sorted((e for e in node.edges.values()
                                 if e.peer and not (e.valid() and e.to()) and not self.dropped(e)),
                                key=lambda e: collate(e.name))
            for edge in peer_edges:
                vr = node.parent
                if vr is None:
                    break
                if edge.valid() and edge.to() is not None:
                    continue
                parent_edge = vr.edges.get(edge.name)
                if edge.to() is None:
                    if parent_edge is None:
                        self.node_from_edge(edge, vr, None, required)
                        continue
                    dep = self.node_from_edge(parent_edge, vr, edge, required)
                    if edge.valid():
                        continue
                    if not self.strict or dep not in required:
                        edge.peer_conflicted = True
                        continue
                    raise self.peer_conflict(edge, dep)
                current = edge.to()
                dep = self.node_from_edge(edge, None, None, required)
                if current is not None and self.can_replace_with(current, dep):
                    self.node_from_edge(edge, vr, None, required)
                    continue
                if not self.strict or edge.source not in required:
                    continue
                raise self.peer_conflict(edge, dep)
            return node
        finally:
            self._peer_depth -= 1

    # ------------------------------------------------------------------ the loop

    def push(self, node: TreeNode) -> None:
        # arborist's DepsQueue: no repeats; shallowest first, then by location. A node keeps
        # its location while it is in the tree, so its key can be taken when it is queued.
        if node not in self.queued:
            self.queued.add(node)
            self._pushes += 1
            heapq.heappush(self.queue, (node.depth, collate(node.location), self._pushes, node))

    def build(self) -> None:
        self.push(self.root)
        steps, placed, recent = 0, set[tuple[str, str, str]](), list[str]()
        while self.queue:
            node = heapq.heappop(self.queue)[-1]
            self.queued.discard(node)
            if node in self.seen or not node.tree:
                continue
            self.seen.add(node)
            # Some peer-heavy inputs make arborist replace the same copies round and round
            # forever (npm itself never returns on them); a real tree takes a few steps per copy.
            steps += 1
            placed.add((node.location, node.name, str(node.version)))
            recent = [*recent[-15:], node.name]
            if steps > _STEPS_PER_COPY * len(placed) + 200:
                raise _no_settle(recent)
            self.step(node)

    def dropped(self, edge: TreeEdge) -> bool:
        """Whether duplicate=plugins' search dropped this (optional or peer) requirement: it
        chose no version of a library for it, or the plugin's one version does not meet it.
        It is not fetched (a failed copy would shadow good copies of the name), and is
        warned about at the end like any unmet optional or peer dependency."""
        if self.pins is None:
            return False
        package, spec = registry_spec(edge.name, edge.spec)
        cand = self.catalog.get(package)
        if cand is None or spec_kind(spec) == "unsupported":
            return False
        # the catalog allows a plugin only its chosen version (none if it was not installed)
        return not cand.mask(spec) if cand.info.plugin else (package, spec) not in self.pins

    def missed_optional_peers(self) -> list[TreeEdge]:
        """The optional peers on plain libraries that :meth:`dropped` kept out although the
        tree shows their dependent a copy outside their range (npm would have fetched one in
        range): duplicate=plugins' search then wants them (see :mod:`.plugins`)."""
        missed = []
        for node in grow([self.root], lambda n: n.children.values()):
            for edge in node.edges.values():
                if edge.type != "peerOptional" or edge.valid() or not self.dropped(edge):
                    continue
                to, cand = edge.to(), self.catalog.get(registry_spec(edge.name, edge.spec)[0])  # dropped() asked
                if to is not None and not to.errors and cand is not None and not cand.info.plugin:
                    missed.append(edge)
        return missed

    def problem_edges(self, node: TreeNode) -> list[TreeEdge]:
        problems = []
        for edge in node.edges.values():
            if _unsupported(edge) or self.dropped(edge):
                continue  # git, URL, path...: nothing a registry resolver can fetch; warned at the end
            to = edge.to()
            if to is not None and to in self.failures:
                continue
            if to is None:
                if edge.type != "peerOptional":
                    problems.append(edge)
            elif not edge.valid():
                problems.append(edge)
        return problems

    def step(self, node: TreeNode) -> None:
        tasks = []
        for edge in self.problem_edges(node):
            if edge.peer_conflicted:
                continue
            # arborist consults the node's latest virtual root for every problem edge: a copy
            # already fetched there (with its peer set) is reused; only peers are fetched into it
            virtual_root = self.virtual_root(node, reuse=True)
            vr_edge = virtual_root.edges.get(edge.name)
            vr_dep = vr_edge.to() if vr_edge is not None and vr_edge.valid() else None
            dep = vr_dep if vr_dep is not None and satisfies(vr_dep, edge) else None
            parent = virtual_root if edge.peer else None
            if dep is None and edge.type == "peerOptional":
                dep = self._find_hoistable(node.parent or node, edge)
            if dep is None:
                dep = self.node_from_edge(edge, parent, None, {edge.source})
            tasks.append((edge, dep))
        for edge, dep in sorted(tasks, key=lambda t: collate(t[0].name)):
            for placement in PlaceDep(self, edge, dep).walk():
                self.visit(placement)

    def _find_hoistable(self, top: TreeNode, edge: TreeEdge) -> TreeNode | None:
        queue = list(top.children.values())
        for node in queue:
            if node.name == edge.name and satisfies(node, edge):
                return node
            queue.extend(node.children.values())
        return None

    def visit(self, placement: PlaceDep) -> None:
        placed = placement.placed
        if placed is None or placement.can_place is None:
            return
        if placed.errors:
            self.failures[placed] = None
        if placement.can_place.can_place_self in (OK, REPLACE):
            for edge in self.edges_in(placed):
                if edge is not placement.edge and not edge.valid() and not edge.peer_conflicted:
                    self.seen.discard(edge.source)
                    self.push(edge.source)
        self.push(placed)
        for node in placement.need_evaluation:
            self.seen.discard(node)
            self.push(node)

    def peer_conflict(self, edge: TreeEdge, dep: TreeNode) -> Unresolvable:
        """``peer=error``: a peer dependency that cannot be met where it must be."""
        wanted = self._requirement(edge)
        holder = edge.source.resolve(edge.name)
        others = [self._requirement(e) for e in (self.edges_in(holder) if holder is not None else []) if e is not edge]
        return explain.unresolvable(edge.name, [wanted, *others[:3]], excluded=self.policy.excluded(edge.name))

    def _requirement(self, edge: TreeEdge) -> explain.Requirement:
        step = explain.Step(edge.source.label(), edge.name, edge.spec, edge.type)
        return explain.Requirement((*self.chain_to(edge.source), step))

    # ------------------------------------------------------------------ the result

    def _drop_failures(self) -> None:
        """Prune each failed fetch with what needs it, up to the optional edges (and, under
        ``peer=warn``, the peer edges) that brought it in -- npm's ``optionalSet``. A failure
        that the request needs through hard edges only is an error."""
        def soft(edge: TreeEdge) -> bool:
            return edge.optional or (edge.peer and not self.strict)

        for failure in list(self.failures):
            if not failure.tree:
                continue
            needers = grow([failure], lambda n: [e.source for e in self.edges_in(n) if not soft(e)])
            if self.root in needers:
                needs = [e for e in self.edges_in(failure) if not soft(e)]
                raise explain.unresolvable(failure.name, [self._requirement(e) for e in needs[:3]],
                                           excluded=self.policy.excluded(failure.name),
                                           missing=self.catalog.get(_package(failure, needs)) is None)
            dropped = self.gather_dep_set(needers, _not_into_any(needers))
            for node in dropped:
                for edge in self.edges_in(node):
                    if edge.source not in dropped:
                        self.omitted[edge] = f"{failure.name}: {failure.errors[0]}"
            for node in dropped:
                self.detach(node)

    def finish(self, request: ResolveRequest) -> ResolvedGraph:
        self._drop_failures()
        warnings: list[dict[str, Any]] = []
        everything = [n for n in grow([self.root], lambda n: n.children.values()) if not n.link and not n.errors]
        edges: list[Edge] = []
        declared: dict[TreeNode, dict[str, str]] = {}
        for node in everything:  # the root first: its edges are the request's
            declared[node] = {}
            for edge in node.edges.values():
                to = edge.to()
                if to is not None and not to.errors and edge.valid():
                    edges.append(Edge(node.location, (to.link or to).location, _KIND[edge.type], edge.spec))
                    declared[node][edge.name] = edge.spec
                elif to is not None or edge.type != "peerOptional":
                    warnings.append(self._unmet(edge, to))
        nodes = self.policy.nodes([(n.location, n.cand.info, n.cand.info.ordered[n.index], deps)
                                   for n, deps in declared.items() if n.cand is not None and n is not self.root],
                                  edges)
        for installed in nodes.values():
            warnings.extend(self.policy.node_warnings(installed))
        kept = tuple(e for e in edges if e.target in nodes and (not e.source or e.source in nodes))
        roots = {name: target for name, target in ((e.target.rsplit("node_modules/", 1)[-1], e.target)
                                                   for e in kept if not e.source)}
        return ResolvedGraph(roots=roots, nodes=nodes, edges=kept, warnings=tuple(warnings),
                             considered=self.catalog.considered)

    def _unmet(self, edge: TreeEdge, to: TreeNode | None) -> dict[str, Any]:
        if _unsupported(edge):
            return _warning("unsupported_spec", edge, f"{edge.spec!r} is not a registry range; ignored")
        if edge.peer and self.strict:
            raise self.peer_conflict(edge, to or edge.source)
        installed = f"{to.name}@{to.version}" if to is not None and to.version is not None else None
        because = f" ({self.omitted[edge]})" if edge in self.omitted else ""
        if edge.type == "optional":
            return _warning("optional_omitted", edge, f"optional dependency {edge.name} {edge.spec} omitted{because}")
        if edge.peer:
            code = "peer_conflict" if installed else "peer_unmet"
            why = f"conflicts with the installed {installed}" if installed else f"is not installed{because}"
            return _warning(code, edge, f"peer dependency {edge.name} {edge.spec} {why}", installed)
        # Only peer conflicts overridden under peer=warn leave a dependency unmet: npm writes
        # such a tree too (with --force, or when the conflict is not the project's own).
        return _warning("unmet_dependency", edge, f"dependency {edge.name} {edge.spec} is not met"
                        + (f" (found {installed})" if installed else because), installed)


def _unsupported(edge: TreeEdge) -> bool:
    """A spec no registry resolver can follow (git, URL, path); an npm: alias is followed."""
    return spec_kind(registry_spec(edge.name, edge.spec)[1]) == "unsupported"


def _package(failure: TreeNode, needs: list[TreeEdge]) -> str:
    """The package a failed copy stood for (its folder's name, or an alias's target)."""
    return registry_spec(failure.name, needs[0].spec)[0] if needs else failure.name


def _not_into_any(nodes: dict[TreeNode, None]) -> Callable[[TreeEdge], bool]:
    def keep(edge: TreeEdge) -> bool:
        return edge.to() not in nodes

    return keep


def _no_settle(recent: list[str]) -> Unresolvable:
    names = list(dict.fromkeys(recent))
    message = (f"npm's node_modules layout does not settle for this request: it keeps replacing "
               f"{', '.join(names)} (npm loops on it too); duplicate=dedupe-all may resolve it")
    return Unresolvable(message, detail={"conflict": {"package": names[0] if names else None, "requirements": []},
                                         "because": [message], "looping": names})


def _warning(code: str, edge: TreeEdge, why: str, installed: str | None = None) -> dict[str, Any]:
    source = edge.source
    version = str(source.version) if source.version is not None else None
    return {"code": code, "package": source.name or None, "version": version, "key": source.location,
            "dependency": edge.name, "range": edge.spec, "kind": edge.type, "installed": installed,
            "message": f"{source.label()}: {why}"}
