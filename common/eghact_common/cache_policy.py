"""Caching rules per content class, as data (DESIGN §3).

The origin states freshness in standard headers so any HTTP cache (our edges, nginx,
Varnish, a commercial CDN) can honour it; the edge reads the same table for its own
defaults. Event invalidation is what keeps packuments correct at the edges, so their
max-age is short only for caches that do not follow the feed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CachePolicy:
    max_age: int
    stale_while_revalidate: int = 0
    stale_if_error: int = 0
    immutable: bool = False
    store: bool = True

    def header(self, *, private: bool = False) -> str:
        if not self.store:
            return "no-store"
        if private:
            # Never shared between principals; the client may keep it briefly.
            return f"private, max-age={self.max_age}" if self.max_age else "private, no-cache"
        parts = ["public", f"max-age={self.max_age}"]
        if self.immutable:
            parts.append("immutable")
        if self.stale_while_revalidate:
            parts.append(f"stale-while-revalidate={self.stale_while_revalidate}")
        if self.stale_if_error:
            parts.append(f"stale-if-error={self.stale_if_error}")
        return ", ".join(parts)


POLICIES: dict[str, CachePolicy] = {
    "packument": CachePolicy(max_age=60, stale_while_revalidate=300, stale_if_error=86_400),
    "version": CachePolicy(max_age=60, stale_while_revalidate=300, stale_if_error=86_400),
    # Tiny and mutable, and npm re-reads it right after changing it (`dist-tag add` then `ls`):
    # clients revalidate every time (a 304 is cheap); edges stay correct by events.
    "dist-tags": CachePolicy(max_age=0, stale_if_error=86_400),
    "tarball": CachePolicy(max_age=31_536_000, immutable=True),
    "search": CachePolicy(max_age=30, stale_while_revalidate=60, stale_if_error=3_600),
    "resolution": CachePolicy(max_age=300, stale_while_revalidate=600, stale_if_error=86_400),
    "popular": CachePolicy(max_age=60, stale_while_revalidate=300, stale_if_error=86_400),
    "feed": CachePolicy(max_age=0, store=False),
    "dynamic": CachePolicy(max_age=0, store=False),
}


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: If-None-Match uses the weak comparison; ``*`` matches anything."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == bare for candidate in if_none_match.split(","))
