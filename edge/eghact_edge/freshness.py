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

An upstream that says nothing (no ``Cache-Control`` max-age, no ``Expires``, as some npm
registries and proxies do) would otherwise make every request a miss. Two rules fill the
gap. A tarball that was checked against its packument's integrity is immutable by content,
so it is kept as ``immutable`` whatever the headers say. Anything else that is cacheable by
default (RFC 9111 §4.2.2: a 200 to a GET without Authorization, neither ``private`` nor
``no-store``) gets a heuristic lifetime: 10% of the time since ``Last-Modified``, at most
``default_ttl``, or ``default_ttl`` itself when there is no ``Last-Modified`` (what
Varnish's default TTL and nginx's ``proxy_cache_valid`` do).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

# No cache should keep anything longer than this on a header's say-so.
MAX_LIFETIME = 365 * 86_400
# RFC 9111 §4.2.2: "a typical setting of this fraction might be 10%" of the time since
# Last-Modified: what changed long ago is likely to stay as it is a while longer.
HEURISTIC_FRACTION = 0.1


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


def http_date(value: str | None) -> float | None:
    """An HTTP-date (RFC 9110 §5.6.7) as a POSIX time; None when absent or unreadable."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value.strip()).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def explicit_lifetime(directives: Directives, headers: Mapping[str, str], *, now: float) -> float | None:
    """RFC 9111 §4.2.1: ``s-maxage``, ``max-age``, else ``Expires`` minus ``Date``; None when
    the response states no freshness at all (only then may a heuristic apply)."""
    if directives.no_cache:
        return 0.0
    if directives.s_maxage is not None or directives.max_age is not None:
        return directives.lifetime
    if "Expires" not in headers:
        return None
    expires = http_date(headers["Expires"])
    if expires is None:
        return 0.0   # §5.3: an invalid Expires ("0" is common) means already expired
    date = http_date(headers.get("Date"))
    return min(max(0.0, expires - (now if date is None else date)), MAX_LIFETIME)


def heuristic_lifetime(headers: Mapping[str, str], *, now: float, default_ttl: float) -> float:
    """RFC 9111 §4.2.2: a fraction of the time since ``Last-Modified`` (on the upstream's
    clock when it sent ``Date``), never more than ``default_ttl``; ``default_ttl`` itself
    when there is no ``Last-Modified`` to judge by."""
    last_modified = http_date(headers.get("Last-Modified"))
    if last_modified is None:
        return default_ttl
    date = http_date(headers.get("Date"))
    since = (now if date is None else date) - last_modified
    return min(default_ttl, max(0.0, HEURISTIC_FRACTION * since))


def timing_for(directives: Directives, *, stored_at: float, age_header: float, fetch_seconds: float,
               feed_covered: bool, max_ttl: float | None = None, headers: Mapping[str, str] | None = None,
               default_ttl: float = 0.0, immutable: bool = False) -> Timing:
    """``headers``: the response's (``Expires``, ``Date``, ``Last-Modified``).
    ``default_ttl`` > 0 lets a response that states no freshness have a heuristic one; the
    caller passes it only for responses cacheable by default (a 200 to a GET without
    Authorization, neither private nor no-store). ``immutable``: the body is known not to
    change (a tarball checked against its integrity), whatever the headers say."""
    if immutable:
        lifetime = float(MAX_LIFETIME)
    else:
        found = explicit_lifetime(directives, headers or {}, now=stored_at)
        if found is None:
            found = heuristic_lifetime(headers or {}, now=stored_at, default_ttl=default_ttl) \
                if default_ttl > 0 else 0.0
        lifetime = found
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
