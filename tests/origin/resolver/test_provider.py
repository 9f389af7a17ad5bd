"""Packuments in, PackageInfo out; the memory provider; laziness and caching."""

from __future__ import annotations

from collections import Counter

import pytest

from eghact_common.errors import NotFound
from eghact_origin.resolver import (
    MemoryProvider,
    ResolveRequest,
    package_info_from_packument,
    resolve_dedupe,
    resolve_isolate,
    resolve_plugins,
)

from .helpers import universe

ABBREVIATED = {
    "name": "@acme/chart",
    "dist-tags": {"latest": "2.1.0", "next": "3.0.0-beta.1"},
    "modified": "2024-01-01T00:00:00.000Z",
    "versions": {
        "2.1.0": {
            "name": "@acme/chart", "version": "2.1.0", "license": "MIT OR Apache-2.0",
            "dependencies": {"core": "^3.0.0", "both": "^1.0.0"},
            "optionalDependencies": {"both": "^1.1.0", "webgl": "^1.0.0"},
            "peerDependencies": {"eghact-runtime": "^2.0.0", "devtools": "*", "core": "^3.0.0"},
            "peerDependenciesMeta": {"devtools": {"optional": True}},
            "eghact": {"version": "^2.0.0", "type": "component",
                       "capabilities": {"required": ["dom:read"], "optional": ["network:fetch"]}},
            "dist": {"integrity": "sha512-abc", "shasum": "00", "tarball": "https://r.example/@acme/chart/-/chart-2.1.0.tgz",
                     "fileCount": 3, "unpackedSize": 12345},
        },
        "2.0.0": {"name": "@acme/chart", "version": "2.0.0", "deprecated": "use 2.1.0",
                  "dist": {"integrity": "sha512-def", "tarball": "https://r.example/chart-2.0.0.tgz"}},
        "3.0.0-beta.1": {"name": "@acme/chart", "version": "3.0.0-beta.1", "deprecated": ""},
        "not-a-version": {"name": "@acme/chart"},
    },
}
ADVISORY = {"id": "GHSA-1", "vulnerable_versions": "<2.1.0", "severity": "high", "title": "XSS", "url": "u",
            "cvss": 7.5}


def test_an_abbreviated_packument_is_read() -> None:
    info = package_info_from_packument(ABBREVIATED, [ADVISORY])
    assert info.name == "@acme/chart"
    assert [v.version for v in info.ordered] == ["2.0.0", "2.1.0", "3.0.0-beta.1"]
    assert info.advisories == ({"id": "GHSA-1", "vulnerable_versions": "<2.1.0", "severity": "high",
                                "title": "XSS", "url": "u"},)
    top = info.versions["2.1.0"]
    assert top.type == "component" and top.framework == "^2.0.0"
    assert top.capabilities_required == ("dom:read",) and top.capabilities_optional == ("network:fetch",)
    assert top.license == "MIT OR Apache-2.0"
    assert top.tarball.endswith("chart-2.1.0.tgz") and top.integrity == "sha512-abc" and top.size == 12345
    assert top.peer_optional == frozenset({"devtools"})
    # npm's precedence and order: peers, optional peers, dependencies, optionalDependencies; a
    # later map replaces an earlier entry of the same name, which moves to the end
    assert top.edges == (("eghact-runtime", "peer", "^2.0.0"), ("devtools", "peerOptional", "*"),
                         ("core", "prod", "^3.0.0"), ("both", "optional", "^1.1.0"),
                         ("webgl", "optional", "^1.0.0"))
    old = info.versions["2.0.0"]
    assert old.type == "library" and old.framework is None and old.deprecated == "use 2.1.0"
    assert info.versions["3.0.0-beta.1"].deprecated is None  # npm: an empty message un-deprecates


def test_masks_follow_npm() -> None:
    info = package_info_from_packument(ABBREVIATED, [])
    assert info.mask("^2.0.0") == 0b011
    assert info.mask("*") == 0b011  # latest is a release; the prerelease stays out
    assert info.mask("next") == 0b100
    assert info.mask("2.0.0") == 0b001
    assert info.mask(">=3.0.0-beta.0") == 0b100
    assert info.mask("git+https://x") == 0
    bleeding = package_info_from_packument({**ABBREVIATED, "dist-tags": {"latest": "3.0.0-beta.1"}}, [])
    assert bleeding.mask("*") == 0b111 and bleeding.mask("") == 0b111 and bleeding.mask("x") == 0b011


def test_memory_provider_counts_and_caches() -> None:
    provider = MemoryProvider({"a": {"versions": {"1.0.0": {}, "1.1.0-rc.1": {}}}})
    first = provider.package("a")
    assert provider.package("a") is first
    assert provider.loads == Counter({"a": 2})
    assert first.dist_tags == {"latest": "1.0.0"}
    assert first.versions["1.0.0"].tarball and first.versions["1.0.0"].integrity
    with pytest.raises(NotFound):
        provider.package("nope")


@pytest.mark.parametrize("solve", [resolve_dedupe, resolve_isolate, resolve_plugins])
def test_only_reachable_manifests_are_loaded(solve) -> None:  # type: ignore[no-untyped-def]
    provider = MemoryProvider(universe("basic"))
    graph = solve(ResolveRequest.from_body({"dependencies": {"left": "^1", "right": "^1"}}), provider)
    assert provider.loads == Counter({"left": 1, "right": 1, "shared": 1})
    assert graph.considered == frozenset({"left", "right", "shared"})
    assert "far-away" not in provider.loads and "never-loaded" not in provider.loads


@pytest.mark.parametrize("solve", [resolve_dedupe, resolve_isolate, resolve_plugins])
def test_parsed_packages_are_shared_across_resolutions(solve) -> None:  # type: ignore[no-untyped-def]
    provider = MemoryProvider(universe("basic"))
    request = ResolveRequest.from_body({"dependencies": {"app-kit": "^1"}})
    first = solve(request, provider)
    info = provider.package("ui")
    second = solve(request, provider)
    assert provider.package("ui") is info
    assert {k: n.version for k, n in first.nodes.items()} == {k: n.version for k, n in second.nodes.items()}


def test_a_missing_package_is_considered_too() -> None:
    provider = MemoryProvider(universe("soft"))
    graph = resolve_dedupe(ResolveRequest.from_body({"dependencies": {"gallery": "^1"}}), provider)
    assert {"ghost-addon", "missing-native"} <= graph.considered


def test_peer_meta_is_read_as_arborist_reads_it() -> None:
    # `peerDependenciesMeta[name]?.optional`, truthy, only for names in peerDependencies: a meta
    # entry for another name (debug's supports-color) declares no edge at all.
    doc = {"name": "p", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {
        "name": "p", "version": "1.0.0", "peerDependencies": {"a": "^1", "b": "^1"},
        "peerDependenciesMeta": {"a": {"optional": "true"}, "b": {"optional": 0}, "c": {"optional": True}}}}}
    top = package_info_from_packument(doc, []).versions["1.0.0"]
    assert top.peer_optional == frozenset({"a", "c"})
    assert top.edges == (("b", "peer", "^1"), ("a", "peerOptional", "^1"))
