"""The capability vocabulary and the patterns a resolver's policy uses to allow or deny."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eghact_common.capabilities import (
    Capability,
    InvalidCapability,
    capability_matches,
    capability_overlaps,
    parse_capability,
)


@pytest.mark.parametrize(
    ("text", "kind", "argument"),
    [
        ("filesystem:read", "filesystem:read", None),
        ("filesystem:write", "filesystem:write", None),
        ("process:spawn", "process:spawn", None),
        ("dom:read", "dom:read", None),
        ("dom:write", "dom:write", None),
        ("gpu:compute", "gpu:compute", None),
        ("network:fetch", "network:fetch", None),
        ("network:fetch:api.example.com", "network:fetch", "api.example.com"),
        ("network:fetch:*.api.com", "network:fetch", "*.api.com"),
        ("network:fetch:API.Example.COM", "network:fetch", "api.example.com"),
        ("network:fetch:localhost", "network:fetch", "localhost"),
        ("network:fetch:127.0.0.1", "network:fetch", "127.0.0.1"),
        ("network:fetch:xn--bcher-kva.example", "network:fetch", "xn--bcher-kva.example"),
        ("api:storage", "api", "storage"),
        ("api:editor.commands", "api", "editor.commands"),
        ("api:ui-kit.v2", "api", "ui-kit.v2"),
    ],
)
def test_parse(text: str, kind: str, argument: str | None) -> None:
    capability = parse_capability(text)
    assert (capability.kind, capability.argument) == (kind, argument)
    assert parse_capability(str(capability)) == capability
    assert str(capability) == text.lower()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("gpu:mine", "unknown capability 'gpu:mine'"),
        ("filesystem", "unknown capability"),
        ("filesystem:delete", "unknown capability"),
        ("dom:read:body", "unknown capability"),
        ("DOM:read", "unknown capability"),
        ("", "unknown capability"),
        ("network:fetch:", "not a host name"),
        ("network:fetch:*", "use network:fetch for every host"),
        ("network:fetch:*.com", "at least two labels"),
        ("network:fetch:*.*.api.com", "only one leading '*.'"),
        ("network:fetch:api.*.com", "only one leading '*.'"),
        ("network:fetch:*api.com", "only one leading '*.'"),
        ("network:fetch:api.example.com:8443", "not a host name"),
        ("network:fetch:https://api.example.com", "not a host name"),
        ("network:fetch:-bad.example.com", "not a host name"),
        ("network:fetch:bad-.example.com", "not a host name"),
        ("network:fetch:a..b", "not a host name"),
        ("network:fetch:" + "a" * 64 + ".com", "not a host name"),
        ("network:fetch:" + ".".join(["abcdefgh"] * 29), "at most 253"),
        ("network:fetch:bücher.de", "not a host name"),
        ("api:", "API name"),
        ("api:Storage", "API name"),
        ("api:1storage", "API name"),
        ("api:editor..commands", "API name"),
        ("api:editor.", "API name"),
        ("api:*", "API name"),
    ],
)
def test_invalid(text: str, says: str) -> None:
    with pytest.raises(InvalidCapability) as caught:
        parse_capability(text)
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_non_string() -> None:
    with pytest.raises(InvalidCapability, match="must be a string"):
        parse_capability(7)  # type: ignore[arg-type]


def test_values_are_immutable_ordered_and_valid_by_construction() -> None:
    capability = parse_capability("dom:read")
    with pytest.raises(dataclasses.FrozenInstanceError):
        capability.kind = "dom:write"  # type: ignore[misc]
    assert sorted([parse_capability("dom:write"), parse_capability("api:b"), parse_capability("dom:read")]) == [
        Capability("api", "b"),
        Capability("dom:read"),
        Capability("dom:write"),
    ]
    assert {parse_capability("network:fetch:A.com"), parse_capability("network:fetch:a.com")} == {
        Capability("network:fetch", "a.com")
    }
    with pytest.raises(InvalidCapability):
        Capability("gpu:mine")
    with pytest.raises(InvalidCapability):
        Capability("dom:read", "x")
    with pytest.raises(InvalidCapability):
        Capability("api")


@pytest.mark.parametrize(
    ("capability", "pattern", "matches"),
    [
        ("dom:read", "dom:read", True),
        ("dom:read", "dom:write", False),
        ("dom:read", "dom:*", True),
        ("dom:read", "*", True),
        ("filesystem:write", "filesystem:*", True),
        ("process:spawn", "filesystem:*", False),
        # network:fetch covers every host
        ("network:fetch", "network:fetch", True),
        ("network:fetch:api.example.com", "network:fetch", True),
        ("network:fetch:*.api.com", "network:fetch", True),
        ("network:fetch:cdn.evil.com", "network:*", True),
        ("network:fetch:cdn.evil.com", "network:fetch:*", True),
        ("network:fetch", "network:fetch:*", True),
        # a host pattern covers what lies under it
        ("network:fetch:cdn.evil.com", "network:fetch:*.evil.com", True),
        ("network:fetch:a.b.evil.com", "network:fetch:*.evil.com", True),
        ("network:fetch:*.x.evil.com", "network:fetch:*.evil.com", True),
        ("network:fetch:*.evil.com", "network:fetch:*.evil.com", True),
        ("network:fetch:evil.com", "network:fetch:*.evil.com", False),
        ("network:fetch:notevil.com", "network:fetch:*.evil.com", False),
        ("network:fetch:evil.com.attacker.net", "network:fetch:*.evil.com", False),
        ("network:fetch:*.evil.com", "network:fetch:cdn.evil.com", False),
        ("network:fetch:API.example.com", "network:fetch:api.example.com", True),
        # the unrestricted capability reaches more than any one host pattern
        ("network:fetch", "network:fetch:*.evil.com", False),
        ("network:fetch", "network:fetch:api.example.com", False),
        ("api:storage", "api:*", True),
        ("api:editor.commands", "api:*", True),
        ("api:editor.commands", "api:editor.*", True),
        ("api:editor", "api:editor.*", False),
        ("api:editorial.x", "api:editor.*", False),
        ("api:storage", "api:storage", True),
        ("api:storage", "api:storage2", False),
        ("dom:read", "api:*", False),
        ("gpu:compute", "network:*", False),
    ],
)
def test_matches(capability: str, pattern: str, matches: bool) -> None:
    assert capability_matches(capability, pattern) is matches
    assert capability_matches(parse_capability(capability), pattern) is matches
    if not pattern.endswith("*") or pattern.startswith("network:fetch:*."):
        assert capability_matches(parse_capability(capability), parse_capability(pattern)) is matches


@pytest.mark.parametrize(
    ("capability", "pattern", "overlaps"),
    [
        # for deny-lists: an unrestricted fetch can reach the denied hosts
        ("network:fetch", "network:fetch:*.evil.com", True),
        ("network:fetch", "network:fetch:evil.com", True),
        ("network:fetch:*.com.example", "network:fetch:x.com.example", True),
        ("network:fetch:cdn.evil.com", "network:fetch:*.evil.com", True),
        ("network:fetch:good.com", "network:fetch:*.evil.com", False),
        ("network:fetch:*.good.com", "network:fetch:*.evil.com", False),
        ("api:storage", "api:*", True),
        ("dom:read", "dom:write", False),
    ],
)
def test_overlaps(capability: str, pattern: str, overlaps: bool) -> None:
    assert capability_overlaps(capability, pattern) is overlaps
    if capability_matches(capability, pattern):
        assert overlaps


@pytest.mark.parametrize(
    "pattern", ["filesystm:*", "dom:read:*", "api:Editor.*", "network:fetch:evil.*", "gpu:mine", "**", "api:*.x"]
)
def test_a_malformed_pattern_is_an_error(pattern: str) -> None:
    with pytest.raises(InvalidCapability):
        capability_matches("dom:read", pattern)
    with pytest.raises(InvalidCapability):
        capability_overlaps("dom:read", pattern)


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
_hosts = st.lists(_label, min_size=1, max_size=4).map(".".join)
_host_patterns = _hosts | st.lists(_label, min_size=2, max_size=4).map(lambda labels: "*." + ".".join(labels))
fetches = st.none().map(lambda _: Capability("network:fetch")) | _host_patterns.map(
    lambda host: Capability("network:fetch", host)
)


@given(fetches, fetches, fetches)
def test_covering_is_a_preorder(a: Capability, b: Capability, c: Capability) -> None:
    assert capability_matches(a, a)
    if capability_matches(a, b) and capability_matches(b, c):
        assert capability_matches(a, c)
    if capability_matches(a, b) and capability_matches(b, a):
        assert a == b
    assert capability_overlaps(a, b) == capability_overlaps(b, a)
    assert capability_matches(a, "network:fetch")
