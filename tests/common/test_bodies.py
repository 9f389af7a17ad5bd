"""The one parser of client JSON: depth and non-JSON constants are 400s, never a crash."""

from __future__ import annotations

import pytest

from eghact_common.bodies import MAX_JSON_DEPTH, parse_json
from eghact_common.errors import InvalidJson


def nested(depth: int) -> bytes:
    return b'{"a": ' * (depth - 1) + b"[1]" + b"}" * (depth - 1)


def test_depth_up_to_the_limit_parses_and_beyond_it_is_refused() -> None:
    assert parse_json(nested(MAX_JSON_DEPTH)) is not None
    for depth in (MAX_JSON_DEPTH + 1, 1_000, 200_000):
        with pytest.raises(InvalidJson) as caught:
            parse_json(nested(depth))
        assert caught.value.code == "json_too_deep" and caught.value.status == 400


def test_brackets_in_strings_do_not_count_and_mixed_nesting_does() -> None:
    noisy = b'{"a": "' + b"[{" * 200 + b'", "b": "\\\"[[[", "c": [' + b"[]," * 500 + b"[]]}"
    assert parse_json(noisy)["b"] == '"[[['   # an escaped quote does not end the string
    mixed = b'[{"k": ' * 32 + b"1" + b"}]" * 32
    assert parse_json(mixed) is not None   # 64 levels
    with pytest.raises(InvalidJson):
        parse_json(b"[" + mixed + b"]")


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"[NaN]", b'{"a": Infinity}', b"-Infinity"])
def test_what_is_not_json_is_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidJson) as caught:
        parse_json(raw, what="the body")
    assert caught.value.code == "invalid_json" and caught.value.message.startswith("the body is not valid JSON")
