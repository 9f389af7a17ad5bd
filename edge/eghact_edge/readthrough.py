"""The read path below the hit fast path: tiers, freshness, coalescing, the upstream.

    look-up (memory, then disk)
      fresh                  -> serve (HIT-MEM / HIT-DISK)
      stale within swr       -> serve (STALE), one background revalidation per key
      stale beyond, or after a feed gap, or older than a child edge's Eghact-Min-Seq
                             -> conditional fetch (If-None-Match): 304 -> REVALIDATED,
                                200 -> MISS, upstream down/5xx -> STALE if stale-if-error allows
    miss                     -> fetch, coalesced for anonymous requests -> MISS

``Eghact-Min-Seq`` (sent by a child edge: "I have applied the feed up to N") is trusted only
as far as the feed goes. While our follower is connected, we wait a moment for it to apply N
(the child heard of N first, through us); once it has, the purges are done and the cache
answers as usual. A seq our upstream never mentioned (``known_seq``) does not exist, so
``Eghact-Min-Seq: 999999999`` cannot make every request go upstream; without a feed (time
mode) seqs mean nothing here and the header is ignored.

What may be stored (RFC 9111 §3, §3.5): a 200 to a cacheable route, not ``private`` nor
``no-store``; when the request carried credentials, only when the response says ``public``
(or ``s-maxage``). A private response goes to the one client that asked, and is never
shared with another waiter: a waiter whose leader got one fetches for itself, and the key
bypasses coalescing for a while, so such content does not serialise requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from multidict import CIMultiDict

from eghact_common.errors import UpstreamUnavailable
from eghact_common.wire import ACCEPT_ABBREVIATED

from . import routes
from .bulk import fetch_batch
from .cache import Seen, TieredCache
from .coalesce import SingleFlight
from .entry import Entry
from .entry_builder import EntryBuilder
from .freshness import State, parse_cache_control
from .metrics import Reporter
from .upstream import UpstreamClient, UpstreamResponse

log = logging.getLogger("eghact.edge")

MIN_SEQ_HEADER = "Eghact-Min-Seq"
_PASS_SECONDS = 10.0
# How long a read with Eghact-Min-Seq beyond our applied seq waits for our own follower: a
# child edge hears of an event through our pass-through a few milliseconds before we apply it.
MIN_SEQ_WAIT = 1.0
_FRESHNESS_HEADERS = ("Cache-Control", "Expires", "Date", "Last-Modified")


class FeedStatus(Protocol):
    @property
    def lifetime(self) -> float:
        """Seconds an event-covered entry stays fresh while the feed vouches; 0 when it does not."""

    @property
    def applied_seq(self) -> int: ...

    @property
    def following(self) -> bool:
        """True while events arrive as they happen."""

    @property
    def known_seq(self) -> int:
        """The highest seq known to exist upstream (at least ``applied_seq``)."""

    def heard(self, seq: int) -> None:
        """The upstream mentioned ``seq``."""

    async def reach(self, seq: int, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for events up to ``seq`` to be applied; whether they were."""


@dataclass(slots=True)
class Reply:
    result: str                              # the X-Cache value
    entry: Entry | None = None
    passthrough: UpstreamResponse | None = None
    private: bool = False


class ReadThrough:
    def __init__(self, cache: TieredCache, upstream: UpstreamClient, builder: EntryBuilder, *,
                 feed: FeedStatus, reporter: Reporter, clock: Callable[[], float],
                 flights: SingleFlight[Reply], behind_edge: bool = False):
        self.cache = cache
        # Behind a parent edge, every fetch says how far our feed got, so a parent that has
        # not applied those events yet revalidates instead of refilling us with old content.
        self._behind_edge = behind_edge
        self.upstream = upstream
        self.builder = builder
        self.feed = feed
        self._reporter = reporter
        self._clock = clock
        self._flights = flights
        self._revalidating: dict[str, asyncio.Task[None]] = {}
        self._pass_until: dict[str, float] = {}
        self.client_fetches = 0   # in flight on behalf of clients; warming yields to them

    async def get(self, route: routes.Route, key: str, *, abbreviated: bool, authorization: str | None = None,
                  min_seq: int | None = None, seen: Seen | None = None) -> Reply:
        """A client's read of ``key``. ``seen``: the request's own memory look-up (counted for
        admission), made by the caller; without it, it is made here. Either way the request
        is counted once and the tiers are only peeked after it."""
        if seen is None:
            seen = self.cache.seen(key)
        if min_seq is not None:
            # Before the tiers are read: what the wait lets our follower purge must not be
            # served (a purge since ``seen`` makes the look-up below peek again).
            min_seq = await self._unapplied(min_seq)
        entry, tier = await self.cache.lookup(key, seen)
        if entry is None:
            self._reporter.tier_miss("memory")
            if self.cache.disk is not None:
                self._reporter.tier_miss("disk")
            return await self._fetch(route, key, abbreviated, authorization, None, min_seq)
        now = self._clock()
        state = entry.timing.state(now, feed_lifetime=self.feed.lifetime, stale_before=self.cache.stale_before)
        if min_seq is not None:
            state = State.MUST_REVALIDATE  # a child edge needs events that exist and we have not applied
        if state is State.FRESH:
            return Reply(tier, entry)
        if state is State.STALE_REVALIDATE:
            self.revalidate_in_background(route, key, abbreviated, entry)
            self._reporter.stale_served("revalidating")
            return Reply("STALE", entry)
        return await self._fetch(route, key, abbreviated, authorization, entry, min_seq)

    async def _unapplied(self, min_seq: int) -> int | None:
        """The part of a client's Eghact-Min-Seq that calls for a revalidation: None when our
        follower has applied it (or applies it within MIN_SEQ_WAIT), when no such seq is known
        to exist, or when there is no feed; else the seq, capped at the highest known one."""
        feed = self.feed
        if min_seq <= feed.applied_seq:
            return None
        if feed.following and await feed.reach(min_seq, MIN_SEQ_WAIT):
            return None
        capped = min(min_seq, feed.known_seq)
        return capped if capped > feed.applied_seq else None

    async def warm(self, route: routes.Route, key: str, abbreviated: bool, *, force: bool = False) -> bool:
        """Fetch ``key`` unless it is cached and fresh (``force``: revalidate anyway). True
        when it went upstream. Counts as background work, never as a client miss."""
        entry, _ = await self.cache.lookup(key)
        if entry is not None and not force:
            state = entry.timing.state(self._clock(), feed_lifetime=self.feed.lifetime,
                                       stale_before=self.cache.stale_before)
            if state is State.FRESH:
                return False
        await self._fetch(route, key, abbreviated, None, entry, None, background=True)
        return True

    def revalidate_in_background(self, route: routes.Route, key: str, abbreviated: bool,
                                 entry: Entry | None) -> None:
        """At most one per key; its failure leaves the stale entry where it is."""
        if key in self._revalidating:
            return

        async def run() -> None:
            try:
                await self._fetch(route, key, abbreviated, None, entry, None, background=True)
            except Exception as exc:  # logged: a background refresh has nobody to answer to
                log.info("background revalidation of %s failed: %s", key, exc)
            finally:
                self._revalidating.pop(key, None)

        self._revalidating[key] = asyncio.create_task(run(), name=f"revalidate {key}")

    async def _fetch(self, route: routes.Route, key: str, abbreviated: bool, authorization: str | None,
                     entry: Entry | None, min_seq: int | None, *, background: bool = False) -> Reply:
        def fetch() -> asyncio.Future[Reply]:
            return asyncio.ensure_future(self._exchange(route, key, abbreviated, authorization, entry, min_seq))

        if not background:
            self.client_fetches += 1
        try:
            if authorization is not None or self._pass_until.get(key, 0.0) > self._clock():
                return await fetch()
            reply, shared = await self._flights.run(key, fetch)
            if shared and reply.private:
                # Never hand one client's private answer to another: fetch for this one.
                return await fetch()
            return reply
        finally:
            if not background:
                self.client_fetches -= 1

    async def _exchange(self, route: routes.Route, key: str, abbreviated: bool, authorization: str | None,
                        entry: Entry | None, min_seq: int | None) -> Reply:
        headers = {"Accept": ACCEPT_ABBREVIATED if abbreviated else "application/json, */*"}
        if authorization is not None:
            headers["Authorization"] = authorization
        if entry is not None and entry.upstream_etag:
            headers["If-None-Match"] = entry.upstream_etag
        if self._behind_edge and self.feed.applied_seq > 0:
            min_seq = max(min_seq or 0, self.feed.applied_seq)
        if min_seq is not None:
            headers[MIN_SEQ_HEADER] = str(min_seq)
        generation = self.cache.generation()
        now = self._clock()
        try:
            response = await self.upstream.fetch(route.upstream_path, headers, kind=route.kind or "other")
        except UpstreamUnavailable:
            if entry is not None and entry.timing.usable_on_error(now, self.feed.lifetime):
                self._reporter.stale_served("error")
                return Reply("STALE", entry)
            raise
        stated = response.headers.get("Eghact-Seq", "")
        seq = int(stated) if stated.isascii() and stated.isdigit() else None
        if seq is not None:
            self.feed.heard(seq)
            if seq > self.feed.applied_seq and self.feed.following and self._shared(response, authorization):
                # The answer reflects an event our follower has not applied yet (a pull through
                # the origin's uplink: this very read caused it). Stored before that event is
                # applied, the answer would be purged by it: wait for it (bounded) and store after.
                # Only for what may be stored: a private answer's seq is in the registry's own
                # numbering, which a follower of the public feed never reaches.
                await self.feed.reach(seq, MIN_SEQ_WAIT)
        return await self._accept(route, key, response, authorization, entry, generation, seq)

    @staticmethod
    def _shared(response: UpstreamResponse, authorization: str | None) -> bool:
        """Whether an answer may be stored for everyone: a 200 to an anonymous request that is
        neither private nor no-store (the rest is decided in :meth:`_accept`)."""
        if response.status != 200 or authorization is not None:
            return False
        directives = parse_cache_control(response.headers.get("Cache-Control"))
        return directives.storable

    async def _accept(self, route: routes.Route, key: str, response: UpstreamResponse, authorization: str | None,
                      entry: Entry | None, generation: int, seq: int | None = None) -> Reply:
        """What an upstream answer means for ``key``, stored when it may be: unless a purge of
        its surrogate key happened since ``generation`` by an event the answer does not
        reflect (its ``seq``, the ``Eghact-Seq`` it stated: the answer may predate that event)."""
        now = self._clock()
        purged = self.cache.purged_since(generation, route.tag, seq)
        if response.status == 304 and entry is not None:
            # RFC 9111 §4.3.4: the 304's own freshness headers win over the stored ones.
            headers = CIMultiDict(entry.headers)
            for name in _FRESHNESS_HEADERS:
                if name in response.headers:
                    headers[name] = response.headers[name]
            directives = parse_cache_control(headers.get("Cache-Control"))
            timing = self.builder.timing(route, directives, headers, age_header=0.0, fetch_seconds=response.seconds,
                                         feed_covered=entry.timing.feed_covered,
                                         by_default=authorization is None and directives.storable)
            refreshed = entry.with_timing(timing)
            if not purged:
                await self.cache.store(refreshed)
            return Reply("REVALIDATED", refreshed)
        if response.status >= 500 and entry is not None and entry.timing.usable_on_error(now, self.feed.lifetime):
            self._reporter.stale_served("error")
            return Reply("STALE", entry)
        if response.status != 200 or route.kind is None:
            return Reply("MISS", passthrough=response, private=True)
        directives = parse_cache_control(response.headers.get("Cache-Control"))
        storable = directives.storable and (authorization is None or directives.public
                                            or directives.s_maxage is not None)
        built = await self.builder.build(route, key, response, directives,
                                         by_default=authorization is None and directives.storable)
        if storable and not purged:
            await self.cache.store(built)
        elif not storable:
            self._pass_until[key] = self._clock() + _PASS_SECONDS
            if len(self._pass_until) > 10_000:
                self._pass_until.clear()
        return Reply("MISS", built, private=not storable)

    async def warm_batch(self, items: list[tuple[routes.Route, str, bool]], *, parallel: int = 32,
                         integrity_only: frozenset[str] = frozenset()) -> int:
        """Fetch ``(route, key, abbreviated)`` items in one upstream batch and store each answer
        as a fetch would; the number stored. Items are stored as their frames arrive, up to
        ``parallel`` at a time (building an entry compresses and checks digests); packuments
        should come before tarballs. Packuments whose keys are in ``integrity_only`` are not
        stored: they are there so the batch's tarballs can be checked.
        Raises BatchUnsupported (the caller falls back to single fetches) or UpstreamUnavailable."""
        generation = self.cache.generation()
        stored = 0
        running: set[asyncio.Task[None]] = set()

        async def accept(index: int, response: UpstreamResponse) -> None:
            nonlocal stored
            route, key, _ = items[index]
            try:
                if key in integrity_only and route.name:
                    await self.builder.integrity.learn_packument(route.name, response.body)
                    return
                reply = await self._accept(route, key, response, None, None, generation)
            except Exception as exc:  # one bad item (a tampered tarball) must not stop the batch
                log.info("warming %s from a batch failed: %s", key, exc)
                return
            stored += reply.entry is not None and not reply.private

        documents_done = False
        try:
            async for index, response in fetch_batch(self.upstream, [(route.upstream_path, abbreviated)
                                                                     for route, _, abbreviated in items]):
                if response.status != 200:
                    continue
                if not documents_done and items[index][0].kind == routes.TARBALL:
                    # Packuments come first in a batch: build them (which feeds the builder's
                    # integrity index) before checking tarballs against it.
                    documents_done = True
                    if running:
                        await asyncio.wait(running)
                        running.clear()
                if len(running) >= parallel:
                    _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                task = asyncio.create_task(accept(index, response))
                running.add(task)
        finally:
            if running:
                await asyncio.wait(running)
        return stored

    async def close(self) -> None:
        for task in list(self._revalidating.values()):
            task.cancel()
        for task in list(self._revalidating.values()):
            with contextlib.suppress(BaseException):
                await task
