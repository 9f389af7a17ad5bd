"""The node_modules tree the isolate solver builds: arborist's ``Node`` and ``Edge``, and the
tree surgery its placement uses (``gatherDepSet``, ``canReplace``, ``canDedupe``, pruning).

Private to :mod:`.isolate` and :mod:`._placement`. A node is one copy of one version at one
location; its edges are its declared dependencies and *resolve* by walking up the tree, as
Node's module resolution does. Nodes outside the real tree (virtual roots holding a
dependency with its peer set while it is being placed) work the same way. The real tree
keeps two indexes -- nodes by name, and nodes by the names they depend on -- so that
"who depends on this copy" (``edges_in``) is cheap.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import explain
from .picker import Candidates
from .provider import registry_spec, spec_kind

__all__ = ["Tree", "TreeEdge", "TreeNode", "collate", "deepest_nesting_target", "grow", "satisfies"]

_COLLATION = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz"
_WEIGHT = {c: i for i, c in enumerate(_COLLATION)}


@functools.lru_cache(maxsize=16384)
def collate(text: str) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """A sort key that orders ASCII as ICU's root collation (npm's ``localeCompare``) does."""
    return tuple(_WEIGHT.get(c.lower(), 256 + ord(c)) for c in text), tuple(c.isupper() for c in text)


class TreeEdge:
    __slots__ = ("name", "peer_conflicted", "source", "spec", "type")

    def __init__(self, source: TreeNode, name: str, spec: str, type: str):
        self.source, self.name, self.spec, self.type = source, name, spec, type
        self.peer_conflicted = False

    @property
    def peer(self) -> bool:
        return self.type in ("peer", "peerOptional")

    @property
    def optional(self) -> bool:
        return self.type in ("optional", "peerOptional")

    def to(self) -> TreeNode | None:
        return self.source.resolve(self.name)

    def valid(self) -> bool:
        to = self.source.resolve(self.name)
        if to is None:
            return self.optional
        if self.peer and to.parent is self.source and self.source.parent is not None:
            return False  # npm's PEER LOCAL: a peer nested under its own dependent
        return satisfies(to, self)


def satisfies(node: TreeNode, edge: TreeEdge) -> bool:
    """npm's ``depValid``: ``*`` takes anything, a dist-tag any registry copy, else semver.
    An ``npm:`` alias wants its target package in the alias's folder, at the target's range."""
    if node.name != edge.name:
        return False
    target = node.link or node
    package, wanted = registry_spec(edge.name, edge.spec)
    if target.cand is not None and target.cand.info.name != package:
        return False  # the folder holds another package (an alias's, or the real one)
    spec = wanted.strip()
    if spec in ("*", ""):
        return True
    kind = spec_kind(wanted)
    if target.cand is None or kind == "unsupported":
        return False
    return kind == "tag" or bool(target.cand.info.mask(wanted) >> target.index & 1)


class TreeNode:
    __slots__ = ("cand", "children", "edges", "errors", "index", "link", "name", "parent", "source_ref", "tree")

    def __init__(self, name: str, cand: Candidates | None = None, index: int = -1, errors: tuple[str, ...] = ()):
        self.name, self.cand, self.index, self.errors = name, cand, index, errors
        self.parent: TreeNode | None = None
        self.children: dict[str, TreeNode] = {}
        self.edges: dict[str, TreeEdge] = {}
        self.link: TreeNode | None = None  # a symlink to an ancestor copy (breaks cyclic nesting)
        self.source_ref: TreeNode | None = None  # for a virtual root: the node it stands in for
        self.tree = False  # in the real tree (and its indexes)
        if cand is not None:
            for dep, kind, spec in cand.info.ordered[index].edges:
                # a peer dependency on oneself means nothing; npm crashes on some of them
                if dep != name or kind not in ("peer", "peerOptional"):
                    self.edges[dep] = TreeEdge(self, dep, spec, kind)

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

    def ancestry(self) -> Iterator[TreeNode]:
        node: TreeNode | None = self
        while node is not None:
            yield node
            node = node.parent

    def resolve(self, name: str) -> TreeNode | None:
        node: TreeNode | None = self
        while node is not None:
            found = node.children.get(name)
            if found is not None:
                return found
            node = node.parent
        return None

    def is_descendant_of(self, other: TreeNode) -> bool:
        return any(node is other for node in self.ancestry())

    def label(self) -> str:
        if not self.name:
            return explain.ROOT
        return f"{self.name}@{self.version}" if self.version is not None else self.name


def deepest_nesting_target(start: TreeNode, name: str) -> TreeNode:
    """The deepest node whose node_modules may hold ``name`` for ``start``: ``start`` itself,
    or above it while the candidates have ``name`` as a peer."""
    for target in start.ancestry():
        if target.parent is None:
            return target
        edge = target.edges.get(name)
        if edge is None or not edge.peer:
            return target
    return start  # unreachable: the loop returns at the top


def grow(start: Iterable[TreeNode], more: Callable[[TreeNode], Iterable[TreeNode]]) -> dict[TreeNode, None]:
    """The closure of ``start`` under ``more``, in discovery order."""
    found = dict.fromkeys(start)
    queue = list(found)
    for node in queue:
        for other in more(node):
            if other not in found:
                found[other] = None
                queue.append(other)
    return found


def _valid_and_not_into(node: TreeNode) -> Callable[[TreeEdge], bool]:
    def keep(edge: TreeEdge) -> bool:
        return edge.to() is not node and edge.valid()

    return keep


class Tree:
    """The real tree under ``root`` and the surgery placement performs on it."""

    strict = False  # peer=error: a peer conflict fails the resolution instead of warning

    def __init__(self, root: TreeNode):
        self.root = root
        self.named: dict[str, dict[TreeNode, None]] = {}  # real-tree nodes by name
        self.dependents: dict[str, dict[TreeNode, None]] = {}  # real-tree nodes by the names they depend on
        self._index(root, True)
        # every change of shape bumps the version; edges_in answers are reused until then
        self._version = 0
        self._edges_in: dict[TreeNode, tuple[int, list[TreeEdge]]] = {}

    def peer_conflict(self, edge: TreeEdge, dep: TreeNode) -> Exception:
        """The error for a peer conflict under ``strict`` (the isolate solver explains it)."""
        raise NotImplementedError

    def _index(self, top: TreeNode, on: bool) -> None:
        for node in grow([top], lambda n: n.children.values()):
            node.tree = on
            for table, keys in ((self.named, (node.name,)), (self.dependents, node.edges)):
                for key in keys:
                    if on:
                        table.setdefault(key, {})[node] = None
                    else:
                        table.get(key, {}).pop(node, None)

    def new_node(self, name: str, cand: Candidates | None, index: int, *, errors: tuple[str, ...] = (),
                 link: TreeNode | None = None) -> TreeNode:
        node = TreeNode(name, None if link else cand, index, errors)
        if link is not None:
            node.cand, node.link = cand, link  # a link has no edges of its own
        return node

    def attach(self, node: TreeNode, parent: TreeNode) -> None:
        """Make ``node`` a child of ``parent``, replacing a child of the same name."""
        old = parent.children.get(node.name)
        if old is node:
            return
        if node.parent is not None:
            self.detach(node)
        if old is not None:
            self.detach(old)
        node.parent = parent
        parent.children[node.name] = node
        self._version += 1
        if parent.tree:
            self._index(node, True)

    def detach(self, node: TreeNode) -> None:
        """Take ``node`` (and what lies below it) out of its tree."""
        parent = node.parent
        if parent is not None and parent.children.get(node.name) is node:
            del parent.children[node.name]
        node.parent = None
        self._version += 1
        if node.tree:
            self._index(node, False)

    def replace(self, new: TreeNode, old: TreeNode) -> None:
        """``new`` takes ``old``'s place, children included."""
        parent = old.parent
        assert parent is not None
        for kid in old.children.values():
            kid.parent = new
            new.children[kid.name] = kid
        old.children = {}
        self._version += 1
        self.detach(old)
        self.attach(new, parent)

    def edges_in(self, node: TreeNode) -> list[TreeEdge]:
        """The edges that resolve to ``node`` (the same list until the tree changes)."""
        cached = self._edges_in.get(node)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        found = self._find_edges_in(node)
        self._edges_in[node] = (self._version, found)
        return found

    def _find_edges_in(self, node: TreeNode) -> list[TreeEdge]:
        if node.tree:
            sources: Iterable[TreeNode] = self.dependents.get(node.name, {})
        else:
            top = next(n for n in node.ancestry() if n.parent is None)
            sources = [n for n in grow([top], lambda n: n.children.values()) if node.name in n.edges]
        return [n.edges[node.name] for n in sources if n.resolve(node.name) is node]

    @staticmethod
    def matches(a: TreeNode, b: TreeNode) -> bool:
        a, b = a.link or a, b.link or b
        return a is b or (a.name == b.name and a.cand is not None and a.cand is b.cand and a.index == b.index)

    def gather_dep_set(self, nodes: Iterable[TreeNode], keep: Callable[[TreeEdge], bool]) -> list[TreeNode]:
        """arborist's ``gatherDepSet``: the nodes and their dependencies that nothing outside
        the set depends on (edges for which ``keep`` is false do not count)."""
        deps = grow(nodes, lambda n: [t for e in n.edges.values() if (t := e.to()) is not None and keep(e)])
        # arborist removes, until nothing changes, every member with a dependent outside the
        # set; that fixpoint is the set minus everything reachable from such members, which a
        # worklist finds in one pass
        outside = [d for d in deps if any(e.source not in deps and keep(e) for e in self.edges_in(d))]
        removed = set(outside)
        for node in outside:
            for edge in node.edges.values():
                target = edge.to()
                if target is not None and target in deps and target not in removed and keep(edge):
                    removed.add(target)
                    outside.append(target)
        return [d for d in deps if d not in removed]

    def can_replace_with(self, current: TreeNode, new: TreeNode, ignore_peers: Iterable[str] = ()) -> bool:
        """Whether every dependent of ``current`` (outside its own dependency set) accepts ``new``."""
        if new.name != current.name:
            return False
        ignored = set(ignore_peers)
        unmet = [e for e in self.edges_in(current) if not (
            current.parent is not None and e.source.parent is current.parent and e.peer
            and e.source.name in ignored) and not satisfies(new, e)]
        if not unmet:
            return True
        if any(e.source.parent is None for e in unmet):
            return False  # a top (the root) is in nobody's dependency set
        def keep(edge: TreeEdge) -> bool:
            return edge.to() is not current and edge.valid()

        # cheap first: what current cannot even reach is certainly outside its dependency set
        reach = grow([current], lambda n: [t for e in n.edges.values() if (t := e.to()) is not None and keep(e)])
        if any(e.source not in reach for e in unmet):
            return False
        own = set(self.gather_dep_set([current], keep))
        return all(e.source in own for e in unmet)

    def can_dedupe(self, node: TreeNode) -> bool:
        """Whether ``node`` may go because the copy its grandparent sees serves its dependents."""
        up = node.parent.parent if node.parent is not None else None
        if up is None:
            return False
        if not self.edges_in(node):
            return True
        other = up.resolve(node.name)
        if other is None:
            return False
        if self.matches(other, node):
            return True
        if not self.can_replace_with(node, other) or other.version is None or node.version is None:
            return False
        return bool(other.version >= node.version)

    def prune_dedupable(self, node: TreeNode, descend: bool = True) -> None:
        if self.can_dedupe(node):
            for dep in self.gather_dep_set([node], lambda e: e.to() is not node and e.valid()):
                self.detach(dep)
            return
        if descend:
            for child in sorted(node.children.values(), key=lambda c: collate(c.location)):
                self.prune_dedupable(child)

    def prune_for_replacement(self, node: TreeNode, old_deps: list[TreeNode]) -> None:
        invalid = {t: None for e in node.edges.values() if (t := e.to()) is not None and not e.valid()}
        for dep in old_deps:
            invalid.update(dict.fromkeys(self.gather_dep_set([dep], _valid_and_not_into(dep))))
        # A dependency on its own name that it does not meet (e@1 -> e ^2, nothing nested yet)
        # resolves to the node itself, so arborist counts the new node among its own junk and,
        # since edges into it are ignored below, prunes what it just placed: a root can vanish
        # from the tree (npm 11 writes such a lockfile, which its own `npm ls` calls missing).
        # The node stays; its unmet edge is a problem edge, so the copy it wants nests under it.
        invalid.pop(node, None)
        for dep in self.gather_dep_set(invalid, lambda e: e.source is not node and e.to() is not node and e.valid()):
            self.detach(dep)

    def peer_entry_sets(self, node: TreeNode) -> dict[TreeEdge, list[TreeNode]]:
        """arborist's ``peerEntrySets``: each edge that brings ``node``'s peer group into the
        tree, with the peers it brings."""
        def peers_out(n: TreeNode) -> list[TreeNode]:
            return [t for e in n.edges.values() if e.peer and (t := e.to()) is not None and e.valid()]

        union = grow([node], lambda n: peers_out(n) + [e.source for e in self.edges_in(n) if e.peer and e.valid()])
        entries: dict[TreeEdge, list[TreeNode]] = {}
        for peer in union:
            for edge in self.edges_in(peer):
                if edge.valid() and (not edge.peer or edge.source.parent is None):
                    group = grow([peer], peers_out)
                    if node in group:
                        entries[edge] = list(group)
        return entries

    def chain_to(self, node: TreeNode) -> tuple[explain.Step, ...]:
        """The requirement steps from the request down to ``node`` (best effort for virtual nodes)."""
        if node is self.root:
            return ()
        if not node.tree:
            source = node.source_ref or (node.parent.source_ref if node.parent is not None else None)
            return self.chain_to(source) if source is not None else ()
        came: dict[TreeNode, TreeEdge | None] = {self.root: None}
        queue = [self.root]
        for current in queue:
            if current is node:
                break
            for edge in current.edges.values():
                to = edge.to()
                if to is not None and to not in came:
                    came[to] = edge
                    queue.append(to)
        steps: list[explain.Step] = []
        via = came.get(node)
        while via is not None:
            steps.append(explain.Step(via.source.label(), via.name, via.spec, via.type))
            via = came.get(via.source)
        return tuple(reversed(steps))
