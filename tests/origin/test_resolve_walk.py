"""The walk before a pulled resolution (``resolution/closure.py``): which dependencies it
follows, on an in-memory universe (the servers are in ``test_resolve_pull.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from eghact_origin.resolution.closure import alias_target, walk_pairs
from eghact_origin.resolver import MemoryProvider


@pytest.mark.parametrize(("spec", "target"), [
    ("npm:real@^2.0.0", ("real", "^2.0.0")),
    ("npm:@scope/real@~1.2", ("@scope/real", "~1.2")),
    ("npm:@scope/real", ("@scope/real", "*")),
    ("NPM:real@", ("real", "*")),
    ("npm:", None),
    ("^1.0.0", None),
    ("git+https://example.invalid/x.git", None),
])
def test_alias_targets(spec: str, target: tuple[str, str] | None) -> None:
    assert alias_target(spec) == target


UNIVERSE: dict[str, dict[str, Any]] = {
    "lib": {"dist-tags": {"latest": "1.1.0"}, "versions": {
        "1.0.0": {"dependencies": {"lowest-only": "^1"}},
        "1.1.0": {"dependencies": {"latest-only": "^1"}},
        "1.2.0": {"dependencies": {"highest-only": "^1"}, "optionalDependencies": {"opt": "^1"},
                  "peerDependencies": {"peer": "^1", "maybe": "^1"},
                  "peerDependenciesMeta": {"maybe": {"optional": True}}},
        "2.0.0": {"dependencies": {"out-of-range": "^1"}},
    }},
}


def test_the_walk_follows_the_pick_and_the_highest_in_range_and_stops_where_the_store_does() -> None:
    pairs = [("lib", "^1.0.0"), ("absent", "^1.0.0"), ("lib", "^1.0.0")]
    missing, walked = walk_pairs(MemoryProvider(UNIVERSE), pairs, lowest=False)
    # latest (1.1.0, in range) is npm's pick; 1.2.0 the highest in range: both followed,
    # with every kind of edge; 1.0.0 and 2.0.0 are not
    assert set(missing) == {("absent", "^1.0.0"), ("latest-only", "^1"), ("highest-only", "^1"), ("opt", "^1"),
                            ("peer", "^1"), ("maybe", "^1")}
    assert set(walked) == {("lib", "^1.0.0"), *missing} and len(walked) == len(set(walked))


def test_with_version_lowest_the_walk_follows_the_lowest_and_the_highest() -> None:
    missing, _ = walk_pairs(MemoryProvider(UNIVERSE), [("lib", "^1.0.0")], lowest=True)
    assert {name for name, _ in missing} == {"lowest-only", "highest-only", "opt", "peer", "maybe"}


def test_the_walk_goes_as_deep_as_the_store_exact_versions_tags_and_alias_targets_included() -> None:
    app = {"versions": {"1.0.0": {"dependencies": {"x": "npm:@s/real@^3", "lib": "2.0.0"}}}}
    universe: dict[str, dict[str, Any]] = {**UNIVERSE, "app": app, "out-of-range": {"versions": {"1.0.0": {}}}}
    missing, walked = walk_pairs(MemoryProvider(universe), [("app", "latest")], lowest=False)
    assert missing == [("@s/real", "^3")]
    assert walked == [("app", "latest"), ("@s/real", "^3"), ("lib", "2.0.0"), ("out-of-range", "^1")]
    # what was seen before is not walked again
    missing, walked = walk_pairs(MemoryProvider(universe), [("app", "latest")], lowest=False,
                                 seen=frozenset({("lib", "2.0.0")}))
    assert walked == [("app", "latest"), ("@s/real", "^3")]
