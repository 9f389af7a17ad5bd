"""Uplink flags: parsed once, refused with a message naming what is wrong."""

from __future__ import annotations

import pytest

from eghact_common.durations import format_duration, parse_duration
from eghact_origin.uplinks.config import parse_uplinks


def test_durations() -> None:
    assert [parse_duration(t) for t in ("30s", "5m", "2h", "3d", "1w", "90", "1.5s", "250ms")] == [
        30, 300, 7200, 259_200, 604_800, 90, 1.5, 0.25]
    assert format_duration(300) == "5m" and format_duration(90) == "90s"
    for bad in ("", "5 minutes", "-1s", "m", "1y"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_routes_pick_an_uplink_or_keep_a_name_local() -> None:
    assert parse_uplinks([]) is None
    config = parse_uplinks(["http://127.0.0.1:1/", "mirror=http://127.0.0.1:2"],
                           ["@corp/*=local", "@types/*=mirror", "left-*=default"], max_age="2h")
    assert config is not None and config.max_age == 7200
    assert config.route("@corp/x") is None
    assert config.route("@types/node").url == "http://127.0.0.1:2"  # type: ignore[union-attr]
    assert config.route("anything").name == "default"  # type: ignore[union-attr]


@pytest.mark.parametrize(("uplinks", "routes", "says"), [
    ([], ["x=local"], "--route needs"),
    (["ftp://127.0.0.1"], [], "http(s)"),
    (["local=http://127.0.0.1"], [], "not 'local'"),
    (["a=http://127.0.0.1", "a=http://127.0.0.2"], [], "twice"),
    (["http://127.0.0.1"], ["x=nowhere"], "PATTERN=NAME"),
])
def test_bad_flags_are_refused(uplinks: list[str], routes: list[str], says: str) -> None:
    with pytest.raises(ValueError, match=None) as refused:
        parse_uplinks(uplinks, routes)
    assert says in str(refused.value)
