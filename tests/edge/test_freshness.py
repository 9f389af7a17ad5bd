"""Freshness per RFC 9111 / RFC 5861, with an injected clock: nothing here sleeps."""

from __future__ import annotations

from eghact_edge.freshness import State, parse_age, parse_cache_control, timing_for


def test_parse_cache_control() -> None:
    d = parse_cache_control("public, max-age=60, s-maxage=120, stale-while-revalidate=300, stale-if-error=86400")
    assert (d.max_age, d.s_maxage, d.stale_while_revalidate, d.stale_if_error) == (60, 120, 300, 86400)
    assert d.lifetime == 120 and d.public and d.storable
    assert not parse_cache_control("private, max-age=60").storable
    assert not parse_cache_control("no-store").storable
    assert parse_cache_control("no-cache, max-age=60").lifetime == 0
    assert parse_cache_control("max-age=bogus").lifetime == 0
    assert parse_cache_control(None).lifetime == 0
    assert parse_age("12") == 12 and parse_age("-3") == 0 and parse_age("x") == 0


def _timing(cc: str, *, at: float = 1000.0, age: float = 0.0, covered: bool = False, max_ttl: float | None = None):
    return timing_for(parse_cache_control(cc), stored_at=at, age_header=age, fetch_seconds=0.0,
                      feed_covered=covered, max_ttl=max_ttl)


def test_fresh_then_swr_then_revalidate() -> None:
    t = _timing("max-age=60, stale-while-revalidate=30, stale-if-error=600")
    assert t.state(1059, feed_lifetime=0, stale_before=0) is State.FRESH
    assert t.state(1061, feed_lifetime=0, stale_before=0) is State.STALE_REVALIDATE
    assert t.state(1091, feed_lifetime=0, stale_before=0) is State.MUST_REVALIDATE
    assert t.usable_on_error(1600, 0) and not t.usable_on_error(1700, 0)


def test_age_header_counts() -> None:
    t = _timing("max-age=60", age=50)
    assert t.age(1005) == 55
    assert t.state(1009, feed_lifetime=0, stale_before=0) is State.FRESH
    assert t.state(1011, feed_lifetime=0, stale_before=0) is State.MUST_REVALIDATE


def test_feed_extends_only_covered_entries() -> None:
    covered = _timing("max-age=0", covered=True)
    plain = _timing("max-age=0")
    assert covered.state(5000, feed_lifetime=86400, stale_before=0) is State.FRESH
    assert covered.state(5000, feed_lifetime=0, stale_before=0) is State.MUST_REVALIDATE
    assert plain.state(1001, feed_lifetime=86400, stale_before=0) is State.MUST_REVALIDATE


def test_a_gap_makes_everything_older_revalidate_first() -> None:
    t = _timing("max-age=3600, stale-while-revalidate=3600", covered=True)
    assert t.state(1010, feed_lifetime=86400, stale_before=1005) is State.MUST_REVALIDATE
    after = _timing("max-age=3600", at=1006, covered=True)
    assert after.state(1010, feed_lifetime=86400, stale_before=1005) is State.FRESH


def test_must_revalidate_forbids_stale_and_max_ttl_caps() -> None:
    t = _timing("max-age=10, must-revalidate, stale-while-revalidate=60, stale-if-error=60")
    assert t.swr == 0 and t.sie == 0
    assert _timing("max-age=600", max_ttl=1).lifetime == 1
