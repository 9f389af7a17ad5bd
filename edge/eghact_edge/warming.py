"""Warming: fetching what will be asked for before it is asked for.

Sources, by priority: keys an event just purged that were hot (refetched at once), new
versions of popular packages announced by the feed, entries about to expire that are hot
(refresh ahead), the origin's global popular list at start, and client prefetch hints.
One bounded priority queue, deduplicated, drained by ``concurrency`` workers that step
aside while client misses are in flight (warming must never slow a client down).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable

from eghact_common import wire
from eghact_common.errors import BadRequest, UpstreamUnavailable
from eghact_common.serving import cancel_and_wait

from . import routes
from .bulk import BatchUnsupported
from .entry import Entry
from .metrics import Reporter
from .popularity import Popularity
from .readthrough import ReadThrough

log = logging.getLogger("eghact.edge")

REFETCH, NEW_VERSION, REFRESH, POPULAR, HINT = 0, 1, 2, 3, 4
_SOURCES = {REFETCH: "refetch", NEW_VERSION: "new-version", REFRESH: "refresh", POPULAR: "popular", HINT: "hint"}
_YIELD_LIMIT = 0.2   # at most this long stepping aside, so warming is never starved
_BUSY = 16           # client misses in flight at which warming steps aside
# Under client load warming shrinks to this many workers rather than stopping: the popular
# keys it fetches are the ones those clients ask for next, so a starved warmer only delays
# the moment the edge stops missing.
_FLOOR = 4


def split_key(key: str) -> tuple[str, bool]:
    """A cache key back into (path, abbreviated)."""
    if key.endswith("#a"):
        return key[:-2], True
    if key.endswith("#f"):
        return key[:-2], False
    return key, False


class Warmer:
    def __init__(self, readthrough: ReadThrough, popularity: Popularity, *, reporter: Reporter,
                 clock: Callable[[], float], concurrency: int = 4, queue_size: int = 10_000,
                 hot_score: float = 2.0):
        self.readthrough = readthrough
        self.popularity = popularity
        self._reporter = reporter
        self._clock = clock
        self._concurrency = max(1, concurrency)
        self._queue: asyncio.PriorityQueue[tuple[int, int, str, bool]] = asyncio.PriorityQueue(queue_size)
        self._queued: set[str] = set()
        self._order = itertools.count()
        self._hot = hot_score
        self._tasks: list[asyncio.Task[None]] = []
        self.done = 0

    def start(self) -> None:
        for i in range(self._concurrency):
            self._tasks.append(asyncio.create_task(self._work(i), name=f"warmer-{i}"))
        self._tasks.append(asyncio.create_task(self._refresh_ahead(), name="refresh-ahead"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def enqueue(self, key: str, priority: int, *, force: bool = False) -> bool:
        """Queue a cache key; False when already queued or the queue is full."""
        if key in self._queued:
            return False
        try:
            self._queue.put_nowait((priority, next(self._order), key, force))
        except asyncio.QueueFull:
            return False
        self._queued.add(key)
        return True

    async def warm_popular(self, popular: list[str], *, batch: int = 250, in_flight: int = 2) -> None:
        """The popular list at start: fetched in upstream batches (``in_flight`` at a time), so
        a fresh edge holds what its clients will ask for within seconds. Without a batch
        endpoint upstream, or for a batch that fails, the keys go through the queue."""
        items = []
        for key in popular:
            path, abbreviated = split_key(key)
            with contextlib.suppress(BadRequest):
                route = routes.parse(path)
                if route.kind is not None and route.cache_key(abbreviated) == key:
                    items.append((route, key, abbreviated))
        chunks: list[tuple[list[tuple[routes.Route, str, bool]], frozenset[str]]] = []
        scheduled: set[str] = set()
        wanted = {key for _, key, _ in items}
        memory = self.readthrough.cache.memory
        for start in range(0, len(items), batch):
            chunk = [item for item in items[start:start + batch] if item[1] not in scheduled]
            scheduled.update(key for _, key, _ in chunk)
            # A tarball is checked against its packument's integrity: when the packument is
            # neither at hand nor popular, the batch fetches it too, only to learn from it.
            lookups = set()
            for route, _, _ in list(chunk):
                if route.kind == routes.TARBALL and route.name:
                    packument = routes.parse("/" + routes.escaped(route.name))
                    key = packument.cache_key(True)
                    if key not in scheduled and packument.cache_key(False) not in scheduled \
                            and memory.peek(key) is None:
                        chunk.append((packument, key, True))
                        scheduled.add(key)
                        if key not in wanted:   # a popular one, due later: stored now instead
                            lookups.add(key)
            chunk.sort(key=lambda item: item[0].kind == routes.TARBALL)
            chunks.append((chunk, frozenset(lookups)))
        unsupported = False

        async def run() -> None:
            nonlocal unsupported
            while chunks:
                chunk, lookups = chunks.pop(0)
                if unsupported:
                    self._enqueue_all(chunk, lookups)
                    continue
                try:
                    stored = await self.readthrough.warm_batch(chunk, integrity_only=lookups)
                except BatchUnsupported:
                    unsupported = True
                    self._enqueue_all(chunk, lookups)
                    continue
                except UpstreamUnavailable as exc:
                    log.info("a warming batch failed (%s); its keys go through the queue", exc)
                    self._enqueue_all(chunk, lookups)
                    continue
                self.done += stored
                self._reporter.warmed(_SOURCES[POPULAR], stored)

        await asyncio.gather(*(run() for _ in range(in_flight)))

    def _enqueue_all(self, items: list[tuple[routes.Route, str, bool]], skip: frozenset[str]) -> None:
        for _, key, _ in items:
            if key not in skip:
                self.enqueue(key, POPULAR)

    def is_hot(self, key: str) -> bool:
        return self.popularity.score(key) >= self._hot

    async def on_events(self, events: list[wire.ChangeEvent], removed: list[Entry]) -> None:
        """Follower hook: refetch what was hot, warm new versions of popular packages."""
        for entry in removed:
            if self.is_hot(entry.key):
                self.enqueue(entry.key, REFETCH, force=True)
        for event in events:
            if event.type != wire.PUBLISH or not event.version:
                continue
            packument = "/" + routes.escaped(event.name)
            if self.is_hot(packument + "#a") or self.is_hot(packument + "#f"):
                self.enqueue(routes.tarball_path(event.name, event.version), NEW_VERSION)

    async def _work(self, index: int) -> None:
        while True:
            priority, _, key, force = await self._queue.get()
            self._queued.discard(key)
            if index >= _FLOOR:
                await self._yield_to_clients()
            path, abbreviated = split_key(key)
            try:
                route = routes.parse(path)
                if route.kind is None or route.cache_key(abbreviated) != key:
                    continue
                if await self.readthrough.warm(route, key, abbreviated, force=force):
                    self.done += 1
                    self._reporter.warmed(_SOURCES[priority])
            except Exception as exc:  # one bad key must not stop warming
                log.debug("warming %s failed: %s", key, exc)

    async def _yield_to_clients(self) -> None:
        waited = 0.0
        while self.readthrough.client_fetches >= _BUSY and waited < _YIELD_LIMIT:
            await asyncio.sleep(0.01)
            waited += 0.01

    async def _refresh_ahead(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.popularity.fold()
            now = self._clock()
            lifetime = self.readthrough.feed.lifetime
            memory = self.readthrough.cache.memory
            for key in self.popularity.top(200):
                entry = memory.peek(key)
                if entry is None or not self.is_hot(key):
                    continue
                left = entry.timing.fresh_until(lifetime) - now
                if 0 < left < max(1.0, 0.2 * entry.timing.lifetime):
                    self.enqueue(key, REFRESH, force=True)
