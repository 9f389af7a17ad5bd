"""``duplicate=isolate``: the tree ``npm install`` (npm 7+, @npmcli/arborist) would build.

A port of arborist's ``buildIdealTree``, so that ``npm install --package-lock-only`` and this
solver agree on the (name, version) set. The loop, as npm runs it:

* a queue of tree nodes, shallowest first, then by location in ``Intl.Collator('en')`` order;
  each node's *problem edges* (missing or invalid) are fetched -- the version chosen by
  npm's picker, loaded with its peer set into a *virtual root* that carries the dependent's
  own dependencies -- and placed in name order;
* placement (``PlaceDep``) walks up from the dependent (from its parent, for a peer) and
  keeps the highest spot where ``CanPlaceDep`` says OK, KEEP or REPLACE, stopping at the first
  CONFLICT: a copy visible there that the dependent cannot use, a dependent of the shadowed
  copy that the new one would break, or a peer set that cannot come along;
* placing a node replaces an older copy that every dependent can accept, prunes copies
  below it made redundant, and places its unmet peers beside it;
* nodes whose edges were broken by a placement go back into the queue.

Failed fetches become *failure nodes*; at the end one that something needs for real is an
error, and one reached only through optional edges is pruned with its optional set (npm's
``optionalSet``), leaving a warning.

Divergences, by design: ``peer=warn`` behaves like ``npm --force`` for peer conflicts (warn
and override, never ERESOLVE) and ``peer=error`` like ``--strict-peer-deps``; there are no
bundled dependencies, shrinkwraps, workspaces, overrides, aliases or engine checks; a cyclic
nesting that npm would break with a symlink reuses the ancestor copy; nodes left
unreachable (npm's "extraneous") are not reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from eghact_common.errors import Unresolvable

from . import explain
from .graph import Edge, Node, ResolvedGraph
from .picker import Candidates, Catalog
from .policy import Policy
from .provider import Provider, spec_kind
from .request import ResolveRequest

__all__ = ["resolve_isolate"]

CONFLICT, OK, REPLACE, KEEP = "CONFLICT", "OK", "REPLACE", "KEEP"
_COLLATION = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz"
_WEIGHT = {c: i for i, c in enumerate(_COLLATION)}
_MAX_PEER_DEPTH = 64


def _collate(text: str) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """A sort key that orders ASCII as ICU's root collation (npm's ``localeCompare``) does."""
    return tuple(_WEIGHT.get(c.lower(), 256 + ord(c)) for c in text), tuple(c.isupper() for c in text)


class _Edge:
    __slots__ = ("name", "peer_conflicted", "source", "spec", "type")

    def __init__(self, source: _Node, name: str, spec: str, type: str):
        self.source, self.name, self.spec, self.type = source, name, spec, type
        self.peer_conflicted = False

    @property
    def peer(self) -> bool:
        return self.type in ("peer", "peerOptional")

    @property
    def optional(self) -> bool:
        return self.type in ("optional", "peerOptional")

    def to(self) -> _Node | None:
        return self.source.resolve(self.name)

    def valid(self) -> bool:
        to = self.source.resolve(self.name)
        if to is None:
            return self.optional
        if self.peer and to.parent is self.source and self.source.parent is not None:
            return False  # npm's PEER LOCAL: a peer nested under its own dependent
        return _satisfies(to, self)


def _satisfies(node: _Node, edge: _Edge) -> bool:
    """npm's ``depValid``: ``*`` takes anything, a dist-tag any registry copy, else semver."""
    if node.name != edge.name:
        return False
    target = node.link or node
    spec = edge.spec.strip()
    if spec in ("*", ""):
        return True
    kind = spec_kind(edge.spec)
    if target.cand is None or kind == "unsupported":
        return False
    return kind == "tag" or bool(target.cand.info.mask(edge.spec) >> target.index & 1)


class _Node:
    __slots__ = ("cand", "children", "edges", "errors", "index", "link", "name", "parent", "source_ref", "tree")

    def __init__(self, name: str, cand: Candidates | None = None, index: int = -1, errors: tuple[str, ...] = ()):
        self.name, self.cand, self.index, self.errors = name, cand, index, errors
        self.parent: _Node | None = None
        self.children: dict[str, _Node] = {}
        self.edges: dict[str, _Edge] = {}
        self.link: _Node | None = None
        self.source_ref: _Node | None = None
        self.tree = False
        if cand is not None:
            for dep, kind, spec in cand.info.ordered[index].edges:
                self.edges[dep] = _Edge(self, dep, spec, kind)

    @property
    def version(self) -> Any:
        target = self.link or self
        return target.cand.info.version_of(target.index) if target.cand is not None else None

    @property
    def location(self) -> str:
        parts, node = [], self
        while node.parent is not None:
            parts.append("node_modules/" + node.name)
            node = node.parent
        return "/".join(reversed(parts))

    @property
    def depth(self) -> int:
        depth, node = 0, self
        while node.parent is not None:
            depth, node = depth + 1, node.parent
        return depth

    def ancestry(self) -> Iterator[_Node]:
        node: _Node | None = self
        while node is not None:
            yield node
            node = node.parent

    def resolve(self, name: str) -> _Node | None:
        node: _Node | None = self
        while node is not None:
            found = node.children.get(name)
            if found is not None:
                return found
            node = node.parent
        return None

    def is_descendant_of(self, other: _Node) -> bool:
        return any(node is other for node in self.ancestry())

    def label(self) -> str:
        return explain.ROOT if self.parent is None and self.source_ref is None and not self.name else (
            f"{self.name}@{self.version}" if self.version is not None else self.name)


def _deepest_nesting_target(start: _Node, name: str) -> _Node:
    for target in start.ancestry():
        if target.parent is None:
            return target
        edge = target.edges.get(name)
        if edge is None or not edge.peer:
            return target
    return start  # unreachable: the loop returns at the top


def _grow(start: Iterable[_Node], more: Callable[[_Node], Iterable[_Node]]) -> dict[_Node, None]:
    """The closure of ``start`` under ``more``, in discovery order."""
    found = dict.fromkeys(start)
    queue = list(found)
    for node in queue:
        for other in more(node):
            if other not in found:
                found[other] = None
                queue.append(other)
    return found


class _Check:
    """arborist's ``CanPlaceDep``: may ``dep`` go into ``target``'s node_modules for ``edge``?"""

    def __init__(self, b: _Builder, dep: _Node, target: _Node, edge: _Edge, *, prefer_dedupe: bool = False,
                 parent: _Check | None = None, peer_path: tuple[_Node, ...] = ()):
        self.b, self.dep, self.target, self.edge, self.parent, self.peer_path = b, dep, target, edge, parent, peer_path
        self.prefer_dedupe = prefer_dedupe or edge.peer
        self.children: list[_Check] = []
        self.can_place_self: str | None = None
        self._peers: str | None = None
        self.current = target.children.get(edge.name)
        self.target_edge = target.edges.get(edge.name)
        self.edge_override = not _satisfies(dep, edge)
        self.can_place = self._check()
        if self.can_place_self is None:
            self.can_place_self = self.can_place

    @property
    def top(self) -> _Check:
        return self.parent.top if self.parent else self

    def deepest(self) -> _Node:
        start = self.parent.deepest() if self.parent else self.edge.source
        return _deepest_nesting_target(start, self.edge.name)

    def _check(self) -> str:
        if self.dep.errors:
            return REPLACE if self.current else OK
        te = self.target_edge
        if te is not None and te.peer and self.target.parent is not None:
            return CONFLICT
        if self.current is None and te is not None and te is not self.edge and not _satisfies(self.dep, te):
            return CONFLICT
        return self._check_current() if self.current is not None else self._check_no_current()

    def _check_current(self) -> str:
        b, current, dep, edge, target = self.b, self.current, self.dep, self.edge, self.target
        assert current is not None
        if b.matches(dep, current) and (_satisfies(current, edge) or self.edge_override):
            return KEEP
        try_replace = current.version is not None and dep.version is not None and dep.version >= current.version
        if try_replace and b.can_replace_with(current, dep):
            peers = self._can_place_peers(REPLACE)
            if peers != CONFLICT:
                return peers
        if _satisfies(current, edge):
            return KEEP
        if self.prefer_dedupe and not try_replace and b.can_replace_with(current, dep):
            peers = self._can_place_peers(REPLACE)
            if peers != CONFLICT:
                return peers
        if target is not self.deepest():
            return CONFLICT
        if not edge.peer and target is edge.source:
            return self._can_place_peers(REPLACE)
        if self.parent is None and not edge.peer:
            return CONFLICT
        for entry_edge, current_peers in b.peer_entry_sets(current).items():
            if entry_edge is edge or entry_edge is self.top.edge:
                continue
            entry_node = entry_edge.to()
            vr = dep.parent
            rep = vr.children.get(entry_node.name) if vr is not None and entry_node is not None else None
            if rep is not None and entry_node is not None and b.can_replace_with(entry_node, rep, set(vr.children)):
                continue
            if rep is None and vr is not None and entry_node is not None and self._can_clobber(entry_node, vr):
                continue
            for peer in current_peers:
                deepest = _deepest_nesting_target(entry_edge.source, peer.name)
                if deepest is target or target.is_descendant_of(deepest):
                    return CONFLICT
        return self._can_place_peers(REPLACE)

    @staticmethod
    def _can_clobber(entry_node: _Node, vr: _Node) -> bool:
        walk = [entry_node]
        for node in walk:
            for edge in node.edges.values():
                if not edge.peer or not edge.valid():
                    continue
                rep = vr.children.get(edge.name)
                if rep is None:
                    to = edge.to()
                    if to is not None and to not in walk:
                        walk.append(to)
                elif not _satisfies(rep, edge):
                    return False
        return True

    def _check_no_current(self) -> str:
        if self.target is not self.top.edge.source:
            shadowed = self.target.resolve(self.edge.name)
            if shadowed is not None:
                for edge in self.b.edges_in(shadowed):
                    if edge.source.is_descendant_of(self.target) and edge.valid() and not _satisfies(self.dep, edge):
                        return CONFLICT
        return self._can_place_peers(OK)

    def _can_place_peers(self, state: str) -> str:
        self.can_place_self = state
        if self._peers is not None:
            return self._peers
        path = (*self.peer_path, self.dep)
        conflict = False
        for peer_edge in self.dep.edges.values():
            peer = peer_edge.to() if peer_edge.peer else None
            if peer is None or peer in path:
                continue
            check = _Check(self.b, peer, _deepest_nesting_target(self.target, peer.name), peer_edge,
                           prefer_dedupe=True, parent=self, peer_path=path)
            self.children.append(check)
            conflict = conflict or check.can_place == CONFLICT
        self._peers = CONFLICT if conflict else state
        return self._peers


class _Place:
    """arborist's ``PlaceDep``: put ``dep`` where ``edge`` can see it, then its unmet peers."""

    def __init__(self, b: _Builder, edge: _Edge, dep: _Node, parent: _Place | None = None):
        self.b, self.edge, self.dep, self.parent = b, edge, dep, parent
        self.can_place: _Check | None = None
        self.can_place_self: _Check | None = None
        self.placed: _Node | None = None
        self.children: list[_Place] = []
        self.need_evaluation: list[_Node] = []
        self.top: _Place = parent.top if parent else self
        if edge.to() is not None and edge.valid():
            return
        for target in self.start().ancestry():
            target_edge = target.edges.get(edge.name)
            if target.parent is not None and target_edge is not None and target_edge.peer:
                continue
            check = _Check(b, dep, target, edge, parent=parent.can_place if parent else None)
            if check.can_place_self != CONFLICT:
                self.can_place_self = check
            if check.can_place == CONFLICT:
                break
            self.can_place = check
            if dep.errors:
                break
        if self.can_place is None:
            if b.strict:
                raise b.peer_conflict(self.top.edge, self.top.dep)
            if self.can_place_self is None:
                edge.peer_conflicted = True
                return
            self.can_place = self.can_place_self
        self._place(self.can_place)

    def start(self) -> _Node:
        start = self.parent.start() if self.parent else self.edge.source
        return _deepest_nesting_target(start, self.edge.name)

    def _place(self, check: _Check) -> None:
        b, edge, dep, target = self.b, self.edge, self.dep, check.target
        placement = check.can_place_self if check.can_place == CONFLICT else check.can_place
        if placement == KEEP:
            if edge.peer and not edge.valid():
                edge.peer_conflicted = True
            b.prune_dedupable(target)
            return
        for ancestor in target.ancestry():
            if ancestor.parent is not None and b.matches(ancestor, dep):
                self.placed = b.new_node(dep.name, ancestor.cand, ancestor.index, link=ancestor)
                b.attach(self.placed, target)
                return
        placed = self.placed = b.new_node(dep.name, dep.cand, dep.index, errors=dep.errors)
        old = target.children.get(edge.name)
        if old is not None:
            self._replace(old, target)
        else:
            b.attach(placed, target)
        if edge.peer and not _satisfies(placed, edge):
            edge.peer_conflicted = True
        to = edge.to()
        if to is not None and to is not placed and edge.valid():
            b.prune_dedupable(to, descend=False)
        for node in list(b.named.get(edge.name, ())):
            if node.tree and node.parent is not None and node.is_descendant_of(target):
                b.prune_dedupable(node, descend=False)
                for kid in list(node.children.values()) if node.tree else ():
                    b.prune_dedupable(kid, descend=False)
        virtual_root = dep.parent
        for peer_edge in list(placed.edges.values()):
            if peer_edge.valid() or not peer_edge.peer or peer_edge.peer_conflicted or virtual_root is None:
                continue
            peer = virtual_root.children.get(peer_edge.name)
            if peer is not None and _satisfies(peer, peer_edge):
                self.children.append(_Place(b, peer_edge, peer, parent=self))

    def _replace(self, old: _Node, target: _Node) -> None:
        b, placed = self.b, self.placed
        assert placed is not None
        old_deps: list[_Node] = []
        for name, edge in old.edges.items():
            to = edge.to()
            if name not in placed.edges and to is not None:
                old_deps.extend(b.gather_dep_set([to], lambda e, to=to: e.to() is not to))
        prune: list[_Node] = []
        for edge in b.edges_in(old):
            if _satisfies(placed, edge) or not edge.peer or edge.source.parent is not target or edge.peer_conflicted:
                continue
            for entry_edge in b.peer_entry_sets(edge.source):
                entry = entry_edge.to()
                if entry is not None and entry is not target and entry_edge.source is not b.root:
                    prune.extend(b.gather_dep_set([entry], lambda e, n=entry: e.to() is not n and not e.peer_conflicted))
                else:
                    edge.peer_conflicted = True
        b.replace(placed, old)
        b.prune_for_replacement(placed, old_deps)
        for node in prune:
            self.need_evaluation.extend(e.source for e in b.edges_in(node))
            b.detach(node)

    def walk(self) -> Iterator[_Place]:
        yield self
        for child in self.children:
            yield from child.walk()
