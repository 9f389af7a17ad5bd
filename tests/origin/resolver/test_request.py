"""The resolve request: validation (every problem at once), defaults, canonical form and hash."""

from __future__ import annotations

import pytest

from eghact_common.errors import BadRequest
from eghact_origin.resolver import ResolveRequest


def test_defaults() -> None:
    request = ResolveRequest.from_body({"dependencies": {"chart": "^2"}})
    assert request.strategy.version == "highest"
    assert request.strategy.duplicate == "plugins"
    assert request.strategy.security == "audit"
    assert request.policy.peer == "warn"
    assert request.policy.capabilities.allow is None
    assert request.policy.licenses is None
    assert request.framework is None
    assert request.canonical() == {
        "dependencies": {"chart": ">=2.0.0 <3.0.0-0"},
        "eager": [],
        "framework": None,
        "policy": {"capabilities": {"allow": None, "deny": []}, "licenses": None, "peer": "warn"},
        "strategy": {"duplicate": "plugins", "security": "audit", "version": "highest"},
    }


def test_every_problem_is_reported_at_once() -> None:
    body = {
        "dependencies": {"Bad Name": "^1", "git-dep": "git+https://example.com/x.git", "alias": "npm:other@^1",
                         "fine": 7},
        "eager": ["nowhere"],
        "strategy": {"version": "newest", "duplicate": "dedupe"},
        "policy": {"capabilities": {"deny": ["gpu:mine"], "allow": ["api:*"]},
                   "licenses": {"allow": ["NOT-A-LICENCE"]}, "peer": "sometimes"},
        "framework": "soon",
        "extra": True,
    }
    with pytest.raises(BadRequest) as raised:
        ResolveRequest.from_body(body)
    error = raised.value
    assert error.code == "invalid_request" and error.status == 400
    problems = error.detail["problems"]
    expected = ["Bad Name", "git+https", "aliases are not supported", "dependencies.fine", "eager: 'nowhere'",
                "strategy.version", "gpu:mine", "NOT-A-LICENCE", "policy.peer", "framework", "extra"]
    for fragment in expected:
        assert any(fragment in problem for problem in problems), (fragment, problems)
    assert all(p in error.message for p in problems)


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_a_body_must_be_an_object(body: object) -> None:
    with pytest.raises(BadRequest) as raised:
        ResolveRequest.from_body(body)
    assert raised.value.detail["problems"]


def test_dependencies_are_required() -> None:
    with pytest.raises(BadRequest) as raised:
        ResolveRequest.from_body({"strategy": {"version": "lowest"}})
    assert any(p.startswith("dependencies") for p in raised.value.detail["problems"])


def test_equal_requests_written_differently_hash_alike() -> None:
    terse = ResolveRequest.from_body({"dependencies": {"b": "^1.2", "a": ">= 1.0.0", "c": "v2.0.0"},
                                      "eager": ["b", "a", "b"],
                                      "policy": {"capabilities": {"deny": ["network:fetch:API.Example.com"]},
                                                 "licenses": {"allow": ["mit", "Apache-2.0"]}}})
    verbose = ResolveRequest.from_body({
        "framework": None,
        "strategy": {"security": "audit", "duplicate": "plugins", "version": "highest"},
        "policy": {"peer": "warn", "licenses": {"allow": ["Apache-2.0", "MIT"]},
                   "capabilities": {"allow": None, "deny": ["network:fetch:api.example.com"]}},
        "eager": ["a", "b"],
        "dependencies": {"c": "2.0.0", "a": ">=1.0.0", "b": ">=1.2.0 <2.0.0-0"},
    })
    assert terse.canonical() == verbose.canonical()
    assert terse.hash == verbose.hash
    assert len(terse.hash) == 64 and int(terse.hash, 16) >= 0


@pytest.mark.parametrize("change", [
    {"dependencies": {"a": "^1.0.1"}},
    {"strategy": {"duplicate": "isolate"}},
    {"strategy": {"duplicate": "dedupe-all"}},
    {"strategy": {"security": "strict"}},
    {"policy": {"peer": "error"}},
    {"framework": "3.0.0"},
    {"eager": ["a"]},
])
def test_different_requests_hash_differently(change: dict[str, object]) -> None:
    base = {"dependencies": {"a": "^1.0.0"}}
    assert ResolveRequest.from_body(base).hash != ResolveRequest.from_body({**base, **change}).hash


def test_dedupe_is_read_and_hashed_as_dedupe_all() -> None:
    # the strict strategy's name before plugins became the default: its old meaning, one hash
    old = ResolveRequest.from_body({"dependencies": {"a": "^1"}, "strategy": {"duplicate": "dedupe"}})
    new = ResolveRequest.from_body({"dependencies": {"a": "^1"}, "strategy": {"duplicate": "dedupe-all"}})
    assert old.strategy.duplicate == "dedupe-all"
    assert old.canonical()["strategy"]["duplicate"] == "dedupe-all"
    assert old.hash == new.hash


def test_an_unknown_duplicate_strategy_names_the_three() -> None:
    with pytest.raises(BadRequest) as raised:
        ResolveRequest.from_body({"dependencies": {"a": "^1"}, "strategy": {"duplicate": "nest"}})
    assert all(name in raised.value.message for name in ("plugins", "dedupe-all", "isolate"))


def test_dist_tags_are_accepted_and_kept() -> None:
    request = ResolveRequest.from_body({"dependencies": {"a": "next", "b": "latest"}})
    assert request.canonical()["dependencies"] == {"a": "next", "b": "latest"}


def test_with_strategy_keeps_the_rest() -> None:
    request = ResolveRequest.from_body({"dependencies": {"a": "^1"}, "strategy": {"version": "prompt"},
                                        "policy": {"peer": "error"}})
    changed = request.with_strategy(version="highest")
    assert changed.strategy.version == "highest"
    assert changed.policy.peer == "error"
    assert changed.dependencies == request.dependencies


def test_prefer_is_hashed_only_when_it_names_something() -> None:
    plain = ResolveRequest.from_body({"dependencies": {"a": "^1"}})
    assert "prefer" not in plain.canonical()
    assert ResolveRequest.from_body({"dependencies": {"a": "^1"}, "prefer": {}}).hash == plain.hash
    preferring = ResolveRequest.from_body({"dependencies": {"a": "^1"}, "prefer": {"a": ["1.2.0", "v1.0.0"]}})
    assert preferring.canonical()["prefer"] == {"a": ["1.0.0", "1.2.0"]}
    assert preferring.hash != plain.hash


def test_prefer_names_versions_only() -> None:
    with pytest.raises(BadRequest) as raised:
        ResolveRequest.from_body({"dependencies": {"a": "^1"}, "prefer": {"a": ["^1.0.0"], "Bad Name": ["1.0.0"]}})
    problems = raised.value.detail["problems"]
    assert any("'^1.0.0' is not a version" in p for p in problems)
    assert any("prefer['Bad Name']: invalid package name" in p for p in problems)
