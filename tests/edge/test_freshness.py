"""Freshness per RFC 9111 / RFC 5861, with an injected clock: nothing here sleeps."""

from __future__ import annotations

from email.utils import formatdate

from eghact_edge.freshness import MAX_LIFETIME, State, parse_age, parse_cache_control, timing_for


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


def _silent(cc: str = "", *, default_ttl: float = 300.0, max_ttl: float | None = None, immutable: bool = False,
            **headers: float | str) -> float:
    """The lifetime of a response stored at t=100000 with ``headers`` (numbers are HTTP dates)."""
    named = {k.replace("_", "-").title(): formatdate(v, usegmt=True) if isinstance(v, float) else v
             for k, v in headers.items()}
    return timing_for(parse_cache_control(cc), stored_at=100_000.0, age_header=0.0, fetch_seconds=0.0,
                      feed_covered=False, max_ttl=max_ttl, headers=named, default_ttl=default_ttl,
                      immutable=immutable).lifetime


def test_a_response_without_freshness_gets_the_heuristic_lifetime() -> None:
    assert _silent() == 300                                          # no Last-Modified: default_ttl
    assert _silent(last_modified=99_000.0) == 100                    # 10% of 1000 s since Last-Modified
    assert _silent(last_modified=1_000.0) == 300                     # ... at most default_ttl
    assert _silent(last_modified=99_000.0, date=99_500.0) == 50      # on the upstream's clock (Date)
    assert _silent(last_modified=99_000.0, max_ttl=20) == 20
    assert _silent(default_ttl=0) == 0                               # turned off (or not cacheable by default)
    assert _silent(last_modified="garbage") == 300


def test_explicit_freshness_leaves_no_room_for_the_heuristic() -> None:
    assert _silent("max-age=0") == 0 and _silent("no-cache") == 0 and _silent("public, max-age=7") == 7
    assert _silent(expires=100_060.0) == 60                          # Expires - now (no Date)
    assert _silent(expires=100_060.0, date=100_040.0) == 20          # Expires - Date
    assert _silent(expires="0") == 0                                 # invalid: already expired (§5.3)
    assert _silent("max-age=5", expires=200_000.0) == 5              # max-age wins over Expires


def test_a_verified_tarball_is_immutable_whatever_the_headers_say() -> None:
    for cc in ("", "max-age=0", "no-cache", "public, max-age=1"):
        assert _silent(cc, immutable=True, max_ttl=1, default_ttl=0) == MAX_LIFETIME
