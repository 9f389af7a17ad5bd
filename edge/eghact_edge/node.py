"""``EdgeNode``: builds the edge's parts from :class:`EdgeSettings` and starts and stops
them in order. Nothing here reads configuration or global state; the clock is injected.

    memory tier -> disk tier      (TieredCache)
    upstream client               (the parent edge if any, else the origin or registry)
    follower                      (feed -> purges, seq on disk, gap -> stale)
    read-through + single flight  (freshness, revalidation, stale-if-error)
    warmer, hints, fleet client   (popularity, prefetch, stats and registration)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from eghact_common.blocking import run_blocking
from eghact_common.serving import cancel_and_wait

from . import routes
from .cache import TieredCache
from .coalesce import SingleFlight
from .entry_builder import EntryBuilder, IntegrityIndex
from .fleet_client import FleetClient
from .follower import Follower
from .freshness import HEURISTIC_FRACTION
from .hints import Hints
from .metrics import PrometheusReporter, Reporter
from .popularity import Popularity
from .proxy import Proxy
from .ratelimit import RateLimiter
from .readthrough import ReadThrough, Reply
from .settings import EdgeSettings
from .state import StateFile
from .streams import StreamBudget
from .tiers import AlwaysAdmit, DiskTier, MemoryTier, TinyLfu
from .upstream import HttpUpstream
from .warming import Warmer

log = logging.getLogger("eghact.edge")


class EdgeNode:
    def __init__(self, settings: EdgeSettings, *, reporter: Reporter | None = None,
                 clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock
        self.reporter = reporter or PrometheusReporter()
        self.public_url = (settings.public_url or "").rstrip("/")
        admission = AlwaysAdmit() if settings.admission == "lru" else TinyLfu.for_bytes(settings.memory_bytes)
        self.memory = MemoryTier(settings.memory_bytes, admission=admission,
                                 on_evict=lambda _entry: self.reporter.evicted("memory"))
        data = settings.data_dir
        data.mkdir(parents=True, exist_ok=True)
        self.disk = DiskTier(data / "cache", settings.disk_bytes,
                             on_evict=lambda count: self.reporter.evicted("disk", count)) \
            if settings.disk_bytes > 0 else None
        self.cache = TieredCache(self.memory, self.disk, reporter=self.reporter, clock=clock)
        self.upstream = HttpUpstream(settings.upstream_url, timeout=settings.upstream_timeout,
                                     max_body=settings.max_upstream_body, reporter=self.reporter,
                                     token=settings.token, user_agent=f"eghact-edge/{settings.region}",
                                     streams=settings.stream_budget)
        self.popularity = Popularity(clock=clock)
        state_name = "feed.seq" if settings.worker_index == 0 else f"feed.{settings.worker_index}.seq"
        self.follower = Follower(self.upstream, self.cache, StateFile(data / state_name), reporter=self.reporter,
                                 clock=clock, feed_lifetime=settings.feed_lifetime,
                                 on_events=self._on_events)
        self.builder = EntryBuilder(self.public_url or "http://unset", reporter=self.reporter, clock=clock,
                                    max_ttl=settings.max_ttl, default_ttl=settings.default_ttl,
                                    integrity=IntegrityIndex(self.memory, self.upstream))
        self.flights: SingleFlight[Reply] = SingleFlight(max_waiters=settings.coalesce_waiters,
                                                         timeout=settings.coalesce_timeout, reporter=self.reporter)
        self.readthrough = ReadThrough(self.cache, self.upstream, self.builder, feed=self.follower,
                                       reporter=self.reporter, clock=clock, flights=self.flights,
                                       behind_edge=settings.parent is not None)
        self.warmer = Warmer(self.readthrough, self.popularity, reporter=self.reporter, clock=clock,
                             concurrency=settings.warm_concurrency)
        self.hints = Hints(self.warmer)
        self.limiter = RateLimiter(settings.rate, settings.burst)
        self.routes = routes.RouteCache()
        self.streams = StreamBudget(total=settings.stream_budget, per_client=settings.stream_per_client)
        self.proxy = Proxy(self.upstream, max_body=settings.max_request_bytes, timeout=settings.upstream_timeout,
                           after_write=self._after_write, budget=self.streams, max_longpoll=settings.max_longpoll,
                           public_url=lambda: self.public_url)
        self.fleet = FleetClient(self.upstream, self.popularity, edge_id=settings.identity, region=settings.region,
                                 public_url=lambda: self.public_url, health=self.health_summary,
                                 stats_interval=settings.stats_interval,
                                 heartbeat_interval=settings.heartbeat_interval)
        self._tasks: list[asyncio.Task[None]] = []
        self.started_at = clock()

    def set_public_url(self, url: str) -> None:
        """Known only once the socket is bound when --port 0 and no --public-url."""
        self.public_url = url.rstrip("/")
        self.builder.public_url = self.public_url

    async def start(self) -> None:
        disk_empty = self.disk is None or not await run_blocking(lambda: bool(self.disk and self.disk.keys_sync()))
        await self.follower.start(disk_empty=disk_empty)
        hot = await run_blocking(self.popularity.load_sync, self.settings.data_dir / "popularity.json")
        await self._load_from_disk(hot)
        self.warmer.start()
        self.fleet.start()
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        if self.settings.warm:
            self._tasks.append(asyncio.create_task(self._warm_popular(), name="warm-popular"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        await self.warmer.stop()
        await self.fleet.stop()
        await self.follower.stop()
        await self.readthrough.close()
        await self.flights.close()
        with contextlib.suppress(OSError):
            await run_blocking(self.popularity.save_sync, self.settings.data_dir / "popularity.json")
        await self.upstream.close()
        if self.disk is not None:
            await self.disk.close()

    # -- start-up warming ---------------------------------------------------------------

    async def _load_from_disk(self, hot: list[str]) -> None:
        """The disk tier first: what was hot here before the restart goes back into memory."""
        if self.disk is None:
            return
        budget = self.memory.max_bytes * 3 // 4
        for key in hot:
            if self.memory.bytes >= budget:
                break
            entry = await self.disk.get(key)
            if entry is not None:
                self.memory.store(entry)

    async def _warm_popular(self) -> None:
        """Then the origin's global popular list, hottest first."""
        popular = await self.fleet.popular(self.settings.warm_top)
        if self.disk is not None:
            self.disk.hold()   # memory first; the disk copies follow once the warm is done
        try:
            await self.warmer.warm_popular([key for key in popular if self.memory.peek(key) is None])
        finally:
            if self.disk is not None:
                self.disk.release()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(5.0)
            self.reporter.tier_bytes("memory", self.memory.bytes, len(self.memory))
            if self.disk is not None:
                with contextlib.suppress(Exception):
                    self.reporter.tier_bytes("disk", await run_blocking(self.disk.volume), 0)
            with contextlib.suppress(OSError):
                await run_blocking(self.popularity.save_sync, self.settings.data_dir / "popularity.json")

    # -- hooks ------------------------------------------------------------------------

    async def _on_events(self, events: Any, removed: Any) -> None:
        await self.warmer.on_events(events, removed)

    async def _after_write(self, tags: list[str]) -> None:
        """Read-your-writes: purge what the write touched, then apply the feed up to now."""
        await self.cache.purge(tags)
        if self.follower.mode == "events":
            try:
                async with asyncio.timeout(5.0):
                    await self.follower.catch_up()
            except Exception as exc:  # the purge above already covers the common case
                log.info("catch-up after a write failed: %s", exc)

    def health_summary(self) -> dict[str, Any]:
        upstream = self.upstream.health()
        feed = self.follower.health()
        degraded = upstream["state"] != "up" or (feed["mode"] == "events" and not feed["connected"])
        status = "incompatible" if feed["mode"] == "incompatible" else "degraded" if degraded else "ok"
        return {
            "status": status, "role": "edge", "id": self.settings.identity,
            "region": self.settings.region, "url": self.public_url, "upstream": upstream, "feed": feed,
            "tiers": {"memory": {"bytes": self.memory.bytes, "entries": len(self.memory),
                                 "max_bytes": self.memory.max_bytes},
                      "disk": {"max_bytes": self.settings.disk_bytes if self.disk else 0}},
            "freshness": {"default_ttl": self.settings.default_ttl, "heuristic_fraction": HEURISTIC_FRACTION,
                          "max_ttl": self.settings.max_ttl, "feed_lifetime": self.settings.feed_lifetime,
                          "verified_tarballs": "immutable"},
            "warming": {"queued": self.warmer.pending, "done": self.warmer.done},
            "streams": {"open": self.streams.open, "budget": self.streams.total},
            "uptime": round(self.clock() - self.started_at, 1),
        }
