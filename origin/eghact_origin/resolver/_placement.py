"""Placement: arborist's ``CanPlaceDep`` and ``PlaceDep``, which decide where in the tree a
fetched dependency goes, and put it there with the peers it brings.

Private to :mod:`.isolate`. ``CanPlace`` answers for one target directory: OK (free),
KEEP (an equal or acceptable copy is already there), REPLACE (the copy there can be
swapped for this one without breaking its dependents) or CONFLICT; it checks the peer set
that must come along, recursively. ``PlaceDep`` walks up from the dependent, keeps the
highest target short of the first CONFLICT, places the node, prunes copies it makes
redundant, and places the dependency's unmet peers beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ._tree import Tree, TreeEdge, TreeNode, deepest_nesting_target, satisfies

__all__ = ["CONFLICT", "KEEP", "OK", "REPLACE", "CanPlace", "PlaceDep"]

CONFLICT, OK, REPLACE, KEEP = "CONFLICT", "OK", "REPLACE", "KEEP"


class CanPlace:
    """arborist's ``CanPlaceDep``: may ``dep`` go into ``target``'s node_modules for ``edge``?"""

    def __init__(self, b: Tree, dep: TreeNode, target: TreeNode, edge: TreeEdge, *, prefer_dedupe: bool = False,
                 parent: CanPlace | None = None, peer_path: tuple[TreeNode, ...] = ()):
        self.b, self.dep, self.target, self.edge, self.parent, self.peer_path = b, dep, target, edge, parent, peer_path
        self.prefer_dedupe = prefer_dedupe or edge.peer
        self.children: list[CanPlace] = []
        self.can_place_self: str | None = None
        self._peers: str | None = None
        self.current = target.children.get(edge.name)
        self.target_edge = target.edges.get(edge.name)
        self.edge_override = not satisfies(dep, edge)
        self.can_place = self._check()
        if self.can_place_self is None:
            self.can_place_self = self.can_place

    @property
    def top(self) -> CanPlace:
        return self.parent.top if self.parent else self

    def deepest(self) -> TreeNode:
        start = self.parent.deepest() if self.parent else self.edge.source
        return deepest_nesting_target(start, self.edge.name)

    def _check(self) -> str:
        if self.dep.errors:
            return REPLACE if self.current else OK
        te = self.target_edge
        if te is not None and te.peer and self.target.parent is not None:
            return CONFLICT
        if self.current is None and te is not None and te is not self.edge and not satisfies(self.dep, te):
            return CONFLICT
        return self._check_current() if self.current is not None else self._check_no_current()

    def _check_current(self) -> str:
        b, current, dep, edge, target = self.b, self.current, self.dep, self.edge, self.target
        assert current is not None
        if b.matches(dep, current) and (satisfies(current, edge) or self.edge_override):
            return KEEP
        try_replace = current.version is not None and dep.version is not None and dep.version >= current.version
        if try_replace and b.can_replace_with(current, dep):
            peers = self._can_place_peers(REPLACE)
            if peers != CONFLICT:
                return peers
        if satisfies(current, edge):
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
            if rep is not None and entry_node is not None and vr is not None and b.can_replace_with(
                    entry_node, rep, set(vr.children)):
                continue
            if rep is None and vr is not None and entry_node is not None and self._can_clobber(entry_node, vr):
                continue
            for peer in current_peers:
                deepest = deepest_nesting_target(entry_edge.source, peer.name)
                if deepest is target or target.is_descendant_of(deepest):
                    return CONFLICT
        return self._can_place_peers(REPLACE)

    @staticmethod
    def _can_clobber(entry_node: TreeNode, vr: TreeNode) -> bool:
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
                elif not satisfies(rep, edge):
                    return False
        return True

    def _check_no_current(self) -> str:
        if self.target is not self.top.edge.source:
            shadowed = self.target.resolve(self.edge.name)
            if shadowed is not None:
                for edge in self.b.edges_in(shadowed):
                    if edge.source.is_descendant_of(self.target) and edge.valid() and not satisfies(self.dep, edge):
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
            check = CanPlace(self.b, peer, deepest_nesting_target(self.target, peer.name), peer_edge,
                           prefer_dedupe=True, parent=self, peer_path=path)
            self.children.append(check)
            conflict = conflict or check.can_place == CONFLICT
        self._peers = CONFLICT if conflict else state
        return self._peers


class PlaceDep:
    """arborist's ``PlaceDep``: put ``dep`` where ``edge`` can see it, then its unmet peers."""

    def __init__(self, b: Tree, edge: TreeEdge, dep: TreeNode, parent: PlaceDep | None = None):
        self.b, self.edge, self.dep, self.parent = b, edge, dep, parent
        self.can_place: CanPlace | None = None
        self.can_place_self: CanPlace | None = None
        self.placed: TreeNode | None = None
        self.children: list[PlaceDep] = []
        self.need_evaluation: list[TreeNode] = []
        self.top: PlaceDep = parent.top if parent else self
        if edge.to() is not None and edge.valid():
            return
        for target in self.start().ancestry():
            target_edge = target.edges.get(edge.name)
            if target.parent is not None and target_edge is not None and target_edge.peer:
                continue
            check = CanPlace(b, dep, target, edge, parent=parent.can_place if parent else None)
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

    def start(self) -> TreeNode:
        start = self.parent.start() if self.parent else self.edge.source
        return deepest_nesting_target(start, self.edge.name)

    def _place(self, check: CanPlace) -> None:
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
        if edge.peer and not satisfies(placed, edge):
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
            if peer is not None and satisfies(peer, peer_edge):
                self.children.append(PlaceDep(b, peer_edge, peer, parent=self))

    def _replace(self, old: TreeNode, target: TreeNode) -> None:
        b, placed = self.b, self.placed
        assert placed is not None
        old_deps: list[TreeNode] = []
        for name, edge in old.edges.items():
            to = edge.to()
            if name not in placed.edges and to is not None:
                old_deps.extend(b.gather_dep_set([to], _not_into(to, check_conflicts=False)))
        prune: list[TreeNode] = []
        for edge in b.edges_in(old):
            if satisfies(placed, edge) or not edge.peer or edge.source.parent is not target or edge.peer_conflicted:
                continue
            for entry_edge in b.peer_entry_sets(edge.source):
                entry = entry_edge.to()
                if entry is not None and entry is not target and entry_edge.source is not b.root:
                    prune.extend(b.gather_dep_set([entry], _not_into(entry, check_conflicts=True)))
                else:
                    edge.peer_conflicted = True
        b.replace(placed, old)
        b.prune_for_replacement(placed, old_deps)
        for node in prune:
            self.need_evaluation.extend(e.source for e in b.edges_in(node))
            b.detach(node)

    def walk(self) -> Iterator[PlaceDep]:
        yield self
        for child in self.children:
            yield from child.walk()


def _not_into(node: TreeNode, *, check_conflicts: bool) -> Callable[[TreeEdge], bool]:
    def keep(edge: TreeEdge) -> bool:
        return edge.to() is not node and not (check_conflicts and edge.peer_conflicted)

    return keep
