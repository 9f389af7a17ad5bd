"""HTTP freshness as RFC 9111 (caching) and RFC 5861 (stale-while-revalidate,
stale-if-error) define it, for a shared cache.

An entry's *age* is the ``Age`` it arrived with plus the time it has spent here. It is
fresh while the age is below its lifetime (``s-maxage`` over ``max-age``: we are a shared
cache). Past that, within ``stale-while-revalidate`` it may be served once more while one
background revalidation runs; within ``stale-if-error`` it may be served when the upstream
fails. Two things shorten the lifetime to zero: ``no-cache``, and a feed gap (everything
stored before the gap must be revalidated before it is served as fresh).

One thing lengthens it: while the edge follows the origin's changes feed, content covered
by surrogate keys is purged by events, so it stays fresh until an event says otherwise
(``feed_lifetime``). That is what the origin's short ``max-age`` is for: caches that do
not follow the feed. The moment the feed is not vouching (disconnected, or silent too
long) the plain header lifetime applies again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# No cache should keep anything longer than this on a header's say-so.
MAX_LIFETIME = 365 * 86_400


@dataclass(frozen=True, slots=True)
class Directives:
    """A parsed ``Cache-Control`` response header."""

    max_age: float | None = None
    s_maxage: float | None = None
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0
    public: bool = False
    private: bool = False
    no_store: bool = False
    no_cache: bool = False
    must_revalidate: bool = False
    immutable: bool = False

    @property
    def lifetime(self) -> float:
        if self.no_cache:
            return 0.0
        value = self.s_maxage if self.s_maxage is not None else self.max_age
        return min(float(value or 0.0), MAX_LIFETIME)

    @property
    def storable(self) -> bool:
        """Whether a shared cache may store it (private and no-store never)."""
        return not (self.no_store or self.private)


def parse_cache_control(header: str | None) -> Directives:
    """Parse leniently: unknown directives are ignored, a bad number counts as absent."""
    if not header:
        return Directives()
    values: dict[str, float | None] = {}
    flags: set[str] = set()
    for part in header.split(","):
        name, sep, raw = part.strip().partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if sep:
            try:
                values[name] = max(0.0, float(raw.strip().strip('"')))
            except ValueError:
                values[name] = None
        else:
            flags.add(name)
    # "private" and "no-cache" may carry a field list; a shared cache treats them as whole.
    return Directives(
        max_age=values.get("max-age"),
        s_maxage=values.get("s-maxage"),
        stale_while_revalidate=values.get("stale-while-revalidate") or 0.0,
        stale_if_error=values.get("stale-if-error") or 0.0,
        public="public" in flags,
        private="private" in flags or "private" in values,
        no_store="no-store" in flags,
        no_cache="no-cache" in flags or "no-cache" in values,
        must_revalidate="must-revalidate" in flags or "proxy-revalidate" in flags,
        immutable="immutable" in flags,
    )


def parse_age(header: str | None) -> float:
    """RFC 9111 §5.1: a non-negative integer; anything else counts as 0."""
    if not header:
        return 0.0
    try:
        return max(0.0, float(int(header.strip())))
    except ValueError:
        return 0.0


class State(enum.Enum):
    FRESH = "fresh"
    STALE_REVALIDATE = "swr"      # serve now, revalidate in the background
    MUST_REVALIDATE = "revalidate"  # revalidate first; serve stale only if upstream fails (sie)


@dataclass(frozen=True, slots=True)
class Timing:
    """When an entry stops being fresh, and until when it may be served stale."""

    stored_at: float        # our clock, when the response was received (or revalidated)
    initial_age: float      # Age it arrived with plus the time the fetch took
    lifetime: float
    swr: float
    sie: float
    feed_covered: bool      # has a surrogate key the changes feed purges

    def age(self, now: float) -> float:
        return self.initial_age + max(0.0, now - self.stored_at)

    def fresh_until(self, feed_lifetime: float) -> float:
        """Absolute time on our clock; ``feed_lifetime`` > 0 when the feed vouches."""
        lifetime = self.lifetime
        if self.feed_covered and feed_lifetime > lifetime:
            lifetime = feed_lifetime
        return self.stored_at - self.initial_age + lifetime

    def state(self, now: float, *, feed_lifetime: float, stale_before: float) -> State:
        if self.stored_at < stale_before:
            # Stored before a feed gap: nothing vouches for it, and it must not be served
            # as fresh nor handed out stale without trying the upstream first.
            return State.MUST_REVALIDATE
        until = self.fresh_until(feed_lifetime)
        if now < until:
            return State.FRESH
        if now < until + self.swr:
            return State.STALE_REVALIDATE
        return State.MUST_REVALIDATE

    def usable_on_error(self, now: float, feed_lifetime: float) -> bool:
        """RFC 5861 §4: stale-if-error, counted from the end of freshness."""
        return now < self.fresh_until(feed_lifetime) + max(self.sie, self.swr)


def timing_for(directives: Directives, *, stored_at: float, age_header: float, fetch_seconds: float,
               feed_covered: bool, max_ttl: float | None = None) -> Timing:
    lifetime = directives.lifetime
    if max_ttl is not None and not directives.immutable:
        # Immutable content (tarballs) never goes stale: the cap is for what can change.
        lifetime = min(lifetime, max_ttl)
    return Timing(
        stored_at=stored_at,
        # RFC 9111 §4.2.3, with the response delay added (we cannot know the clock skew).
        initial_age=age_header + max(0.0, fetch_seconds),
        lifetime=lifetime,
        swr=0.0 if directives.must_revalidate else directives.stale_while_revalidate,
        sie=0.0 if directives.must_revalidate else directives.stale_if_error,
        feed_covered=feed_covered,
    )
