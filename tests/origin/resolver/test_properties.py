"""Properties of both solvers on random small universes (hypothesis).

* every graph keeps the invariants (each edge met, each edge pointing at the copy Node's
  resolution finds, everything reachable; dedupe: one version per name); npm's layout
  (isolate, plugins) keeps every root and has a copy for every hard dependency;
* dedupe's answer meets every hard constraint, and each ``Unresolvable`` it raises is real:
  a brute-force enumeration of every assignment (absent, or one version, per package) finds
  none that meets the hard constraints. Universes stay tiny (<= 5 packages, <= 4 versions);
* plugins (some names made plugins at random) keeps the invariants with one copy per plugin,
  and refuses only what one version per name cannot solve either (it asks less).
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eghact_common import semver
from eghact_common.errors import Unresolvable
from eghact_origin.resolver import (
    MemoryProvider,
    ResolvedGraph,
    ResolveRequest,
    resolve_dedupe,
    resolve_isolate,
    resolve_plugins,
)

from .helpers import check_invariants

NAMES = ("a", "b", "c", "d", "e")
VERSIONS = ("1.0.0", "1.1.0", "2.0.0", "2.1.0")
RANGES = ("^1.0.0", "^2.0.0", "~1.1.0", "*", ">=1.1.0", "1.0.0", "^1.1.0 || ^2.1.0", "^3.0.0", "<2.0.0")
MAPS = {"prod": "dependencies", "optional": "optionalDependencies", "peer": "peerDependencies",
        "peerOptional": "peerDependencies"}
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw: st.DrawFn, kinds: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    names = NAMES[: draw(st.integers(1, len(NAMES)))]
    targets = (*names, "ghost")  # now and then a package the registry lacks
    # flat integer draws keep generation cheap and shrinking meaningful
    edge = st.tuples(st.integers(0, len(targets) - 1), st.integers(0, len(kinds) - 1),
                     st.integers(0, len(RANGES) - 1))
    universe: dict[str, Any] = {}
    for name in names:
        versions = draw(st.sets(st.integers(0, len(VERSIONS) - 1), min_size=1, max_size=len(VERSIONS)))
        bodies = {}
        for version in sorted(versions):
            body: dict[str, Any] = {}
            for target, kind_at, spec_at in draw(st.lists(edge, max_size=3)):
                kind, dep = kinds[kind_at], targets[target]
                body.setdefault(MAPS[kind], {})[dep] = RANGES[spec_at]
                if kind == "peerOptional":
                    body.setdefault("peerDependenciesMeta", {})[dep] = {"optional": True}
            bodies[VERSIONS[version]] = body
        universe[name] = {"versions": bodies}
    root_edges = draw(st.lists(st.tuples(st.integers(0, len(names) - 1), st.integers(0, len(RANGES) - 1)),
                               min_size=1, max_size=3))
    return universe, {targets[t]: RANGES[r] for t, r in root_edges}


def _met(version: str | None, spec: str) -> bool:
    return version is not None and semver.satisfies(version, spec, loose=True)


def _hard_ok(universe: dict[str, Any], roots: dict[str, str], pins: dict[str, str], peer_error: bool) -> bool:
    """Whether ``pins`` (name -> version, absent names not installed) meets the hard constraints."""
    if not all(_met(pins.get(name), spec) for name, spec in roots.items()):
        return False
    for name, version in pins.items():
        body = universe[name]["versions"][version]
        optional_peers = set(body.get("peerDependenciesMeta", {}))
        hard = dict(body.get("dependencies", {}))
        if peer_error:
            for dep, spec in body.get("peerDependencies", {}).items():
                if dep not in optional_peers:
                    hard.setdefault(dep, spec)
                elif (dep in pins and dep not in body.get("dependencies", {})
                      and dep not in body.get("optionalDependencies", {}) and not _met(pins[dep], spec)):
                    return False
        for dep in body.get("optionalDependencies", {}):
            hard.pop(dep, None)  # an optional dependency replaces a required one of the same name
        if not all(_met(pins.get(dep), spec) for dep, spec in hard.items()):
            return False
    return True


def _solvable(universe: dict[str, Any], roots: dict[str, str], peer_error: bool) -> bool:
    if any(name not in universe for name in roots):
        return False
    names = sorted(universe)
    # a root must be installed at a version in its range: only those are worth enumerating
    choices = [[v for v in universe[name]["versions"] if _met(v, roots[name])] if name in roots
               else [None, *universe[name]["versions"]] for name in names]
    for combo in itertools.product(*choices):
        pins = {name: version for name, version in zip(names, combo, strict=True) if version is not None}
        if _hard_ok(universe, roots, pins, peer_error):
            return True
    return False


def _lost(graph: ResolvedGraph) -> list[dict[str, Any]]:
    """Hard dependencies that npm's layout left with no copy at all: only overridden peer
    conflicts may leave a dependency unmet, and then a copy is there (``installed``)."""
    return [w for w in graph.warnings if w["code"] == "unmet_dependency" and w["installed"] is None]


def _request(roots: dict[str, str], duplicate: str, peer: str = "warn") -> ResolveRequest:
    return ResolveRequest.from_body({"dependencies": roots, "strategy": {"duplicate": duplicate},
                                     "policy": {"peer": peer}})


@SETTINGS
@given(problems(("prod", "prod", "prod", "optional")))
def test_dedupe_is_sound_and_complete(problem: tuple[dict[str, Any], dict[str, str]]) -> None:
    universe, roots = problem
    try:
        graph = resolve_dedupe(_request(roots, "dedupe"), MemoryProvider(universe))
    except Unresolvable:
        assert not _solvable(universe, roots, peer_error=False), "reported a conflict that has a solution"
        return
    check_invariants(graph, dedupe=True)
    pins = {node.name: node.version for node in graph.nodes.values()}
    assert _hard_ok(universe, roots, pins, peer_error=False)


@SETTINGS
@given(problems(("prod", "prod", "optional", "peer", "peerOptional")))
def test_dedupe_with_strict_peers_is_sound_and_complete(problem: tuple[dict[str, Any], dict[str, str]]) -> None:
    universe, roots = problem
    try:
        graph = resolve_dedupe(_request(roots, "dedupe", "error"), MemoryProvider(universe))
    except Unresolvable:
        assert not _solvable(universe, roots, peer_error=True), "reported a conflict that has a solution"
        return
    check_invariants(graph, dedupe=True)
    pins = {node.name: node.version for node in graph.nodes.values()}
    assert _hard_ok(universe, roots, pins, peer_error=True)


@SETTINGS
@given(problems(("prod", "prod", "optional", "peer", "peerOptional")))
def test_dedupe_with_soft_peers_keeps_invariants(problem: tuple[dict[str, Any], dict[str, str]]) -> None:
    universe, roots = problem
    try:
        graph = resolve_dedupe(_request(roots, "dedupe"), MemoryProvider(universe))
    except Unresolvable:
        # peers and optional dependencies never make a request fail under peer=warn
        assert not _solvable(universe, roots, peer_error=False)
        return
    check_invariants(graph, dedupe=True)
    again = resolve_dedupe(_request(roots, "dedupe"), MemoryProvider(universe))
    assert {k: n.version for k, n in again.nodes.items()} == {k: n.version for k, n in graph.nodes.items()}


@SETTINGS
@given(problems(("prod", "prod", "optional", "peer", "peerOptional")))
def test_isolate_keeps_invariants(problem: tuple[dict[str, Any], dict[str, str]]) -> None:
    universe, roots = problem
    try:
        graph = resolve_isolate(_request(roots, "isolate"), MemoryProvider(universe))
    except Unresolvable as error:
        assert error.detail["conflict"] is not None
        return
    check_invariants(graph, dedupe=False)
    assert set(graph.roots) == set(roots)
    assert not _lost(graph)


@st.composite
def plugin_problems(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str]]:
    universe, roots = draw(problems(("prod", "prod", "optional", "peer", "peerOptional")))
    for name in draw(st.sets(st.sampled_from(sorted(universe)))):
        for body in universe[name]["versions"].values():
            body["eghact"] = {"version": "^2.0.0", "type": "component"}
    return universe, roots


@SETTINGS
@given(plugin_problems())
def test_plugins_hold_each_plugin_to_one_copy(problem: tuple[dict[str, Any], dict[str, str]]) -> None:
    universe, roots = problem
    provider = MemoryProvider(universe)
    try:
        graph = resolve_plugins(_request(roots, "plugins"), provider)
    except Unresolvable as error:
        assert error.detail["conflict"] is not None
        assert not _solvable(universe, roots, peer_error=False), "refused what one version per name solves"
        return
    check_invariants(graph, dedupe=False, plugins=True, provider=provider)
    assert set(graph.roots) == set(roots)
    assert not _lost(graph)
