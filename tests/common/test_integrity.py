"""Integrity helpers against hashlib and known vectors, and ssri's parsing and matching rules."""

from __future__ import annotations

import base64
import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eghact_common.integrity import (
    ALGORITHMS,
    Hasher,
    InvalidIntegrity,
    digests,
    hex_to_sri,
    matches,
    parse_sri,
    sha1_hex,
    sha512_hex,
    sri_sha512,
)

# Known vectors: the digests of the empty string.
EMPTY_SRI = "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
EMPTY_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"


def sri(algo: str, data: bytes) -> str:
    return f"{algo}-{base64.b64encode(hashlib.new(algo, data).digest()).decode()}"


def test_known_vectors() -> None:
    assert sri_sha512(b"") == EMPTY_SRI
    assert sha1_hex(b"") == EMPTY_SHA1
    assert sha512_hex(b"") == hashlib.sha512(b"").hexdigest()
    assert hex_to_sri(hashlib.sha512(b"").hexdigest()) == EMPTY_SRI


@given(st.binary(max_size=2048))
def test_digests_agree_with_hashlib(data: bytes) -> None:
    assert sri_sha512(data) == sri("sha512", data)
    assert sha1_hex(data) == hashlib.sha1(data).hexdigest()
    assert hex_to_sri(sha512_hex(data)) == sri_sha512(data)
    assert parse_sri(sri_sha512(data)) == [("sha512", hashlib.sha512(data).digest())]


@given(st.binary(max_size=4096), st.lists(st.integers(min_value=0, max_value=4096), max_size=6))
def test_hasher_in_pieces_equals_one_shot(data: bytes, cuts: list[int]) -> None:
    hasher = Hasher(extra=("sha256",))
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        hasher.update(memoryview(data)[start:end])
    assert hasher.size == len(data)
    assert hasher.sri == sri_sha512(data)
    assert hasher.sha512_hex == sha512_hex(data)
    assert hasher.sha1_hex == sha1_hex(data)
    assert hasher.digests == {a: hashlib.new(a, data).digest() for a in ("sha1", "sha256", "sha512")}


def test_hasher_refuses_unknown_algorithms() -> None:
    with pytest.raises(ValueError, match="md5"):
        Hasher(extra=("md5",))


def test_parse_several_hashes_with_options_and_odd_whitespace() -> None:
    data = b"plugin"
    text = f"  {sri('sha1', data)}\t{sri('sha512', data)}?foo?bar=1\n{sri('sha256', data)} "
    assert parse_sri(text) == [
        ("sha1", hashlib.sha1(data).digest()),
        ("sha512", hashlib.sha512(data).digest()),
        ("sha256", hashlib.sha256(data).digest()),
    ]


def test_parse_skips_well_formed_unknown_algorithms_and_accepts_missing_padding() -> None:
    data = b"x"
    text = "md5-1B2M2Y8AsgTpgAmY7PhCfg== " + sri("sha384", data).rstrip("=")
    assert parse_sri(text) == [("sha384", hashlib.sha384(data).digest())]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "sha512",  # no digest
        "sha512-",  # empty digest
        "sha512-not*base64",
        "SHA512-" + base64.b64encode(bytes(64)).decode(),  # ssri is case-sensitive
        "sha512-" + base64.b64encode(bytes(32)).decode(),  # wrong length for sha512
        "sha256-" + base64.b64encode(bytes(64)).decode(),
        "md5-1B2M2Y8AsgTpgAmY7PhCfg==",  # nothing we can check
        "garbage " + EMPTY_SRI,  # one bad entry spoils the string
    ],
)
def test_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(InvalidIntegrity) as info:
        parse_sri(text)
    assert isinstance(info.value, ValueError)
    assert info.value.problems


def test_parse_reports_every_bad_entry() -> None:
    with pytest.raises(InvalidIntegrity) as info:
        parse_sri("one two sha1-@@@")
    assert len(info.value.problems) == 3


@pytest.mark.parametrize("value", [None, 42, b"sha512-abc", ["sha512-abc"]])
def test_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidIntegrity):
        parse_sri(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["abc", "zz" * 64, "00" * 32, "00" * 65])
def test_hex_to_sri_rejects_bad_hex(text: str) -> None:
    with pytest.raises(InvalidIntegrity):
        hex_to_sri(text)


def test_matches_uses_the_strongest_algorithm_only() -> None:
    data, other = b"real", b"forged"
    ours = digests(data)
    assert matches(ours, sri_sha512(data))
    assert not matches(ours, sri_sha512(other))
    # A matching weak hash beside a mismatching strong one must not pass (downgrade).
    assert not matches(ours, f"{sri('sha1', data)} {sri('sha512', other)}")
    # The weak one is ignored when the strong one matches.
    assert matches(ours, f"{sri('sha1', other)} {sri('sha512', data)}")
    # Any hash of the strongest algorithm may match.
    assert matches(ours, f"{sri('sha512', other)} {sri('sha512', data)}")
    assert matches(ours, sri("sha256", data))


def test_matches_refuses_to_downgrade_when_a_digest_is_missing() -> None:
    hasher = Hasher()
    hasher.update(b"data")
    with pytest.raises(ValueError, match="sha384"):
        matches(hasher.digests, sri("sha384", b"data"))


def test_matches_rejects_garbage_integrity() -> None:
    with pytest.raises(InvalidIntegrity):
        matches(digests(b""), "sha512-???")


def test_algorithms_are_ordered_weakest_first() -> None:
    sizes = [hashlib.new(a).digest_size for a in ALGORITHMS]
    assert sizes == sorted(sizes)
