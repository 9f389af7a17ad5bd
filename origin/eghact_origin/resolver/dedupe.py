"""``duplicate=dedupe-all``: one version per name, found by conflict-driven search (PubGrub).

The search is PubGrub as the Dart ``pub`` solver does it (unit propagation over
*incompatibilities*, decisions in the picker's order, and on a conflict the learning of a
new incompatibility that explains it, with a backjump to where it matters), over finite
version sets kept as bit masks: a *term* about package ``p`` is the set of its states it
allows, a mask over ``p``'s allowed versions plus one bit for "not installed". Set algebra
on terms is then integer arithmetic.

Dependencies become incompatibilities ``{X in S, not Y in R}`` ("X at any of the versions S,
which all declare Y at R, and Y not in R, cannot both hold"). Soft edges -- optional
dependencies, and peers under ``peer=warn`` -- go through a virtual package per edge with
two versions, 1 "enforced" (the requirement holds) and 0 "dropped"; 1 is tried first, so an
edge is dropped only when the search proves it cannot hold. Optional peers forbid the
versions outside their range instead of requiring any (``{X in S, Y in not R}``), unless
:meth:`Keys.wanted` makes them soft requirements. Cycles
need no care: a package is decided once, whoever asks for it again.

Packages are decided fewest-versions-left first (pub's fail-first rule), each at the first
version of the picker's preference order that is still allowed.

When the search fails, the incompatibility it ends with is derived from a set of external
facts (request ranges, dependency declarations); :mod:`.explain` turns them into the
"app needs ..., chart needs ... -- no version of core satisfies both" message.

The search is over *keys*, not names: :class:`Keys` says which key a dependency on a name at
a range is. Here the key is the name (one version per name); ``duplicate=plugins``
(:mod:`.plugins`) keys plain libraries by name and range, so that they never have to agree.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from typing import Any

from .explain import Fact, from_facts
from .graph import Edge, ResolvedGraph
from .picker import Candidates, Catalog
from .policy import Policy
from .provider import Provider, spec_kind
from .request import ResolveRequest

__all__ = ["Keys", "resolve_dedupe", "solve"]

_ENFORCED, _DROPPED = 1, 0


class Keys:
    """One key per name: every requirement on a name constrains the same package."""

    def key(self, name: str, spec: str) -> str:
        """The key that a dependency on ``name`` at ``spec`` constrains."""
        return name

    def edge(self, name: str, spec: str) -> tuple[str, str] | None:
        """The key a declared dependency ``name: spec`` constrains and the spec it asks of it;
        None when it asks nothing of the registry (git, URL, path; and here ``npm:`` aliases:
        one version per name has no room for an alias's second copy of its target)."""
        return None if spec_kind(spec) == "unsupported" else (self.key(name, spec), spec)

    def name(self, key: str) -> str:
        """The package name behind ``key``."""
        return key

    def wanted(self, key: str) -> bool:
        """Whether an optional peer dependency on ``key`` is a soft requirement (installed at
        its range if it can be) rather than a limit on the versions something else installs."""
        return False


class _Incompat:
    __slots__ = ("cause", "terms")

    def __init__(self, terms: dict[str, int], cause: tuple[Any, ...]):
        self.terms = terms
        # ("fact", Fact) | ("edge", (source, versions, dep, spec, kind)) | ("soft",) | ("conflict", a, b)
        self.cause = cause


class _Assignment:
    __slots__ = ("cause", "index", "level", "mask", "pkg")

    def __init__(self, pkg: str, mask: int, level: int, cause: _Incompat | None, index: int):
        self.pkg, self.mask, self.level, self.cause, self.index = pkg, mask, level, cause, index


class _Failure(Exception):
    def __init__(self, incompat: _Incompat):
        self.incompat = incompat


class _Solver:
    def __init__(self, catalog: Catalog, peer_error: bool, keys: Keys | None = None):
        self.catalog = catalog
        self.peer_error = peer_error
        self.keys = keys or Keys()
        self.universe: dict[str, int] = {}
        self.absent: dict[str, int] = {}
        self.virtual: dict[str, tuple[str, str, str, str, int]] = {}  # key -> (source, dep, kind, spec, S)
        self.incompats: dict[str, list[_Incompat]] = defaultdict(list)
        self.assignments: list[_Assignment] = []
        self.by_pkg: dict[str, list[_Assignment]] = defaultdict(list)
        self.allowed: dict[str, int] = {}
        self.decisions: dict[str, int] = {}
        self.required: dict[str, int] = {}  # package -> when it was first required
        self._ready: list[tuple[int, int, str]] = []  # heap of (versions left, first required, package)
        self.level = 0
        self._edge_incompats: dict[tuple[str, int], list[_Incompat]] = {}

    # ------------------------------------------------------------------ terms

    def candidates(self, key: str) -> Candidates | None:
        return self.catalog.get(self.keys.name(key))

    def _register(self, pkg: str) -> None:
        if pkg in self.universe:
            return
        if pkg in self.virtual:
            versions, count = 0b11, 2
        else:
            candidates = self.candidates(pkg)
            versions = candidates.allowed if candidates is not None else 0
            count = len(candidates.info.ordered) if candidates is not None else 0
        self.absent[pkg] = 1 << count
        self.universe[pkg] = versions | self.absent[pkg]

    def _make(self, terms: dict[str, int] | list[tuple[str, int]], cause: tuple[Any, ...]) -> _Incompat | None:
        """An incompatibility without always-true terms; None if one of its terms can never hold.
        Terms given as pairs may name a package twice (a package depending on itself): they meet."""
        if isinstance(terms, list):
            merged: dict[str, int] = {}
            for pkg, mask in terms:
                merged[pkg] = merged.get(pkg, self.universe[pkg]) & mask
            terms = merged
        kept = {}
        for pkg, mask in terms.items():
            if mask == 0:
                return None
            if mask != self.universe[pkg]:
                kept[pkg] = mask
        return _Incompat(kept, cause)

    def _outside(self, pkg: str, versions: int) -> int:
        """The term "``pkg`` is not installed at any of ``versions``": the negation of a need."""
        return self.universe[pkg] & ~versions

    # ------------------------------------------------------------------ the solution

    def _add(self, incompat: _Incompat) -> None:
        for pkg in incompat.terms:
            self.incompats[pkg].append(incompat)

    def _derive(self, pkg: str, mask: int, cause: _Incompat | None) -> None:
        assignment = _Assignment(pkg, mask, self.level, cause, len(self.assignments))
        self.assignments.append(assignment)
        self.by_pkg[pkg].append(assignment)
        allowed = self.allowed.get(pkg, self.universe[pkg]) & mask
        self.allowed[pkg] = allowed
        if not allowed & self.absent[pkg]:
            self.required.setdefault(pkg, len(self.required))
            self._offer(pkg)

    def _backtrack(self, level: int) -> None:
        touched = set()
        while self.assignments and self.assignments[-1].level > level:
            assignment = self.assignments.pop()
            self.by_pkg[assignment.pkg].pop()
            touched.add(assignment.pkg)
            if assignment.cause is None:
                del self.decisions[assignment.pkg]
        for pkg in touched:
            allowed = self.universe[pkg]
            for assignment in self.by_pkg[pkg]:
                allowed &= assignment.mask
            self.allowed[pkg] = allowed
            self._offer(pkg)
        self.level = level

    def _satisfier(self, pkg: str, term: int) -> _Assignment:
        cumulative = self.universe[pkg]
        for assignment in self.by_pkg[pkg]:
            cumulative &= assignment.mask
            if not cumulative & ~term:
                return assignment
        raise AssertionError(f"term on {pkg} is not satisfied")  # a solver bug, never input

    # ------------------------------------------------------------------ propagation

    def _propagate_one(self, incompat: _Incompat) -> str | bool | None:
        """True: a conflict; a package name: derived something about it; None: nothing."""
        unsatisfied = None
        for pkg, term in incompat.terms.items():
            allowed = self.allowed.get(pkg, self.universe[pkg])
            if not allowed & ~term:
                continue
            if not allowed & term:
                return None
            if unsatisfied is not None:
                return None
            unsatisfied = pkg
        if unsatisfied is None:
            return True
        self._derive(unsatisfied, self.universe[unsatisfied] & ~incompat.terms[unsatisfied], incompat)
        return unsatisfied

    def _propagate(self, start: list[str]) -> None:
        changed = deque(start)
        while changed:
            pkg = changed.popleft()
            incompats = self.incompats[pkg]
            for i in range(len(incompats) - 1, -1, -1):
                result = self._propagate_one(incompats[i])
                if result is True:
                    root_cause = self._resolve_conflict(incompats[i])
                    changed.clear()
                    derived = self._propagate_one(root_cause)
                    if isinstance(derived, str):
                        changed.append(derived)
                    break
                if isinstance(result, str):
                    changed.append(result)

    def _resolve_conflict(self, incompat: _Incompat) -> _Incompat:
        learned = False
        while incompat.terms:
            recent: _Assignment | None = None
            recent_pkg = ""
            difference, previous_level = 0, 0
            for pkg, term in incompat.terms.items():
                satisfier = self._satisfier(pkg, term)
                if recent is None:
                    recent, recent_pkg = satisfier, pkg
                elif recent.index < satisfier.index:
                    previous_level = max(previous_level, recent.level)
                    recent, recent_pkg, difference = satisfier, pkg, 0
                else:
                    previous_level = max(previous_level, satisfier.level)
                if recent_pkg == pkg:
                    # the satisfier may satisfy the term only together with earlier assignments
                    difference = recent.mask & ~term & self.universe[pkg]
                    if difference:
                        earlier = self._satisfier(pkg, self.universe[pkg] & ~difference)
                        previous_level = max(previous_level, earlier.level)
            if recent is None:
                break
            if previous_level < recent.level or recent.cause is None:
                self._backtrack(previous_level)
                if learned:
                    self._add(incompat)
                return incompat
            terms = {pkg: term for pkg, term in incompat.terms.items() if pkg != recent_pkg}
            for pkg, term in recent.cause.terms.items():
                if pkg != recent.pkg:
                    terms[pkg] = terms.get(pkg, self.universe[pkg]) & term
            if difference:
                terms[recent_pkg] = terms.get(recent_pkg, self.universe[recent_pkg]) & ~difference
            made = self._make(terms, ("conflict", incompat, recent.cause))
            if made is None:  # impossible: every term is satisfied by the partial solution
                raise AssertionError("derived a vacuous incompatibility")
            incompat, learned = made, True
        raise _Failure(incompat)

    # ------------------------------------------------------------------ decisions

    @staticmethod
    def _same_edge(candidates: Candidates, dep: str, kind: str, spec: str) -> int:
        """The allowed versions that declare the same edge: one incompatibility covers them all."""
        return candidates.info.edge_mask(dep, kind, spec) & candidates.allowed

    def _fact(self, source: str | None, versions: int, dep: str, spec: str, kind: str) -> Fact:
        """The fact behind an edge incompatibility (built only to explain a failure), told
        with names: an explanation speaks of packages, not of the solver's keys."""
        target = self.candidates(dep)
        labels: tuple[str, ...] = ()
        if source is not None:
            info = self.candidates(source)
            labels = tuple(v.version for i, v in enumerate(info.info.ordered) if versions >> i & 1) if info else ()
            source = self.keys.name(source)
        return Fact(source, labels, self.keys.name(dep), spec, kind,
                    empty=target is not None and not target.mask(spec), missing=target is None)

    def _edge_incompat(self, source: str, versions: int, dep: str, kind: str, spec: str,
                       fact: tuple[str, int, str, str, str]) -> _Incompat | None:
        self._register(dep)
        target = self.candidates(dep)
        wanted = target.mask(spec) if target is not None else 0
        if kind == "peerOptional":
            forbidden = self.universe[dep] & ~wanted & ~self.absent[dep]
            return self._make([(source, versions), (dep, forbidden)], ("edge", fact))
        return self._make([(source, versions), (dep, self._outside(dep, wanted))], ("edge", fact))

    def _dependencies(self, pkg: str, index: int) -> tuple[list[_Incompat], bool]:
        """The incompatibilities ``pkg`` at ``index`` brings, and whether they are new."""
        key = (pkg, index)
        if key in self._edge_incompats:
            return self._edge_incompats[key], False
        made: list[_Incompat | None] = []
        if pkg in self.virtual:
            source, dep, kind, spec, versions = self.virtual[pkg]
            if index == _ENFORCED:
                fact = (source, versions, dep, spec, kind)
                need = "peer" if kind == "peerOptional" and self.keys.wanted(dep) else kind
                made.append(self._edge_incompat(pkg, 1 << _ENFORCED, dep, need, spec, fact))
        else:
            candidates = self.candidates(pkg)
            assert candidates is not None  # only installable packages are ever decided
            for name, kind, declared in candidates.info.ordered[index].edges:
                asked = self.keys.edge(name, declared)
                if asked is None:
                    continue
                versions = self._same_edge(candidates, name, kind, declared)
                dep, spec = asked
                soft_peer = kind == "peerOptional" and self.keys.wanted(dep)  # soft even under peer=error
                if kind == "prod" or (kind in ("peer", "peerOptional") and self.peer_error and not soft_peer):
                    fact = (pkg, versions, dep, spec, kind)
                    made.append(self._edge_incompat(pkg, versions, dep, kind, spec, fact))
                    continue
                virtual = f"?{pkg}>{dep}:{kind}:{spec}"
                self.virtual[virtual] = (pkg, dep, kind, spec, versions)
                self._register(virtual)
                made.append(self._make({pkg: versions, virtual: self.absent[virtual]}, ("soft",)))
        self._edge_incompats[key] = [m for m in made if m is not None]
        return self._edge_incompats[key], True

    def _choose(self, pkg: str) -> None:
        mask = self.allowed[pkg] & ~self.absent[pkg]
        if pkg in self.virtual:
            index = _ENFORCED if mask >> _ENFORCED & 1 else _DROPPED
        else:
            candidates = self.candidates(pkg)
            found = candidates.first(mask) if candidates is not None else None
            if found is None:
                raise AssertionError(f"{pkg} is required but has no candidate")  # propagation prevents this
            index = found
        conflict = False
        incompats, fresh = self._dependencies(pkg, index)
        for incompat in incompats:
            if fresh:
                self._add(incompat)
            # would deciding make the incompatibility hold? (pkg's own term by the decision)
            conflict = conflict or all(
                t >> index & 1 if p == pkg else not self.allowed.get(p, self.universe[p]) & ~t
                for p, t in incompat.terms.items()
            )
        if not conflict:
            self.level += 1
            self._derive(pkg, 1 << index, None)
            self.decisions[pkg] = index

    def _offer(self, pkg: str) -> None:
        """Queue ``pkg`` for a decision if it is required and undecided (entries that go stale
        are skipped when they surface)."""
        allowed = self.allowed[pkg]
        if pkg not in self.decisions and not allowed & self.absent[pkg]:
            heapq.heappush(self._ready, ((allowed & ~self.absent[pkg]).bit_count(), self.required[pkg], pkg))

    def _next(self) -> str | None:
        """The next package to decide: of those required and undecided, the one with the
        fewest versions left (pub's fail-first rule: conflicts surface early, and learning
        prunes the most), first required first among equals."""
        while self._ready:
            count, _, pkg = self._ready[0]
            allowed = self.allowed[pkg]
            if (pkg not in self.decisions and not allowed & self.absent[pkg]
                    and (allowed & ~self.absent[pkg]).bit_count() == count):
                return pkg
            heapq.heappop(self._ready)
        return None

    def solve(self, roots: dict[str, str]) -> dict[str, int]:
        """The chosen version (an index) of every key the roots need. Raises ``_Failure``."""
        start = []
        for name, spec in roots.items():
            key = self.keys.key(name, spec)
            self._register(key)
            target = self.candidates(key)
            wanted = target.mask(spec) if target is not None else 0
            fact = Fact(None, (), name, spec, "prod", empty=target is not None and not wanted, missing=target is None)
            incompat = self._make({key: self._outside(key, wanted)}, ("fact", fact))
            if incompat is not None:
                if not incompat.terms:
                    raise _Failure(incompat)
                self._add(incompat)
                start.append(key)
        self._propagate(start)
        while True:
            pkg = self._next()
            if pkg is None:
                return {p: i for p, i in self.decisions.items() if p not in self.virtual}
            self._choose(pkg)
            self._propagate([pkg])


def _facts(solver: _Solver, incompat: _Incompat) -> list[Fact]:
    """The external facts a failure's derivation rests on."""
    facts: list[Fact] = []
    stack, seen = [incompat], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if current.cause[0] == "conflict":
            stack.extend((current.cause[2], current.cause[1]))
        elif current.cause[0] != "soft":  # the plumbing of soft edges explains nothing
            fact = solver._fact(*current.cause[1]) if current.cause[0] == "edge" else current.cause[1]
            if fact not in facts:
                facts.append(fact)
    return facts


def solve(request: ResolveRequest, catalog: Catalog, keys: Keys | None = None) -> dict[str, int]:
    """One version (an index into the package's versions) per key the request needs, keys
    as ``keys`` says (default: one per name). Raises
    :class:`~eghact_common.errors.Unresolvable` with an explanation when there is none."""
    solver = _Solver(catalog, catalog.policy.peer_error, keys)
    try:
        return solver.solve(dict(request.dependencies))
    except _Failure as failure:
        error = from_facts(_facts(solver, failure.incompat), catalog.excluded())
        error.detail["considered"] = sorted(catalog.considered)
        raise error from None


def resolve_dedupe(request: ResolveRequest, provider: Provider) -> ResolvedGraph:
    """Resolve with one version per name. Raises :class:`~eghact_common.errors.Unresolvable`
    with an explanation when no such installation exists."""
    policy = Policy(request)
    catalog = Catalog(provider, policy, request.strategy.version, request.prefer)
    return _graph(request, catalog, policy, solve(request, catalog))


def _graph(request: ResolveRequest, catalog: Catalog, policy: Policy, chosen: dict[str, int]) -> ResolvedGraph:
    def key(name: str) -> str:
        return f"node_modules/{name}"

    edges = [Edge("", key(name), "prod", spec) for name, spec in request.dependencies.items()]
    warnings: list[dict[str, Any]] = []
    declared: dict[str, dict[str, str]] = {}
    for name, index in chosen.items():
        candidates = catalog.get(name)
        assert candidates is not None
        info = candidates.info.ordered[index]
        declared[name] = {}
        for dep, kind, spec in info.edges:
            target = catalog.get(dep) if dep in chosen else None
            met = target is not None and target.info.mask(spec) >> chosen[dep] & 1
            if met:
                edges.append(Edge(key(name), key(dep), "peer" if kind == "peerOptional" else kind, spec))
                declared[name][dep] = spec
                continue
            if kind == "peerOptional" and dep not in chosen:
                continue
            warnings.append(_unmet(name, info.version, dep, kind, spec, chosen, catalog))
    installed = []
    for name, index in chosen.items():
        candidates = catalog.get(name)
        assert candidates is not None
        installed.append((key(name), candidates.info, candidates.info.ordered[index], declared[name]))
    nodes = policy.nodes(installed, edges)
    for node in nodes.values():
        warnings.extend(policy.node_warnings(node))
    kept = tuple(e for e in edges if e.target in nodes and (e.source == "" or e.source in nodes))
    return ResolvedGraph(roots={name: key(name) for name in request.dependencies}, nodes=nodes, edges=kept,
                         warnings=tuple(warnings), considered=catalog.considered)


def _unmet(name: str, version: str, dep: str, kind: str, spec: str, chosen: dict[str, int],
           catalog: Catalog) -> dict[str, Any]:
    installed = None
    if dep in chosen:
        target = catalog.get(dep)
        installed = target.info.ordered[chosen[dep]].version if target is not None else None
    if spec_kind(spec) == "unsupported":
        code, why = "unsupported_spec", f"{spec!r} is not a registry range; the dependency is ignored"
    elif kind == "optional":
        code, why = "optional_omitted", "optional dependency omitted: " + (
            f"{dep}@{installed} is installed" if installed else f"no installable version of {dep} satisfies {spec}")
    elif installed:
        code, why = "peer_conflict", f"peer dependency {dep} {spec} conflicts with the installed {dep}@{installed}"
    else:
        code, why = "peer_unmet", f"peer dependency {dep} {spec} is not installed (no version fits)"
    return {"code": code, "package": name, "version": version, "dependency": dep, "range": spec, "kind": kind,
            "installed": installed, "message": f"{name}@{version}: {why}"}
