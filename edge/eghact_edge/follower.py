"""The invalidation follower: the origin's changes feed, applied to both tiers.

On start it reads its position from ``feed.seq``, asks the upstream for the feed's extent
(``GET /-/v1/feed``: registry id, first and last retained seq) and decides whether it can
resume. It cannot when the origin is another registry (a different id), when the origin's
feed ends before our seq (a reset or restore), or when the feed no longer reaches back to
our seq (pruned). That is a *gap*: every entry stored so far is marked stale (revalidated
before it is served as fresh), and following restarts from the origin's last seq.

Then it catches up with the paged feed (before the edge serves, bounded in time) and
follows the SSE stream with ``Last-Event-ID``, reconnecting with backoff after a drop: a
resumed stream replays what was missed, so no event is lost. Each event's surrogate keys
are purged in memory at once and on disk before the seq is counted as applied; the seq
file is written behind, and only with applied seqs.

An upstream without a feed (any npm registry) leaves the follower in time mode: freshness
then comes from headers alone. So does an upstream whose feed extent states a wire protocol
this edge does not read (``eghact_common.protocol``): its events could be misread, purging the
wrong keys or none, so the follower refuses it (mode ``incompatible``, logged, in /-/health).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from eghact_common import protocol, wire
from eghact_common.errors import UpstreamUnavailable
from eghact_common.serving import cancel_and_wait

from .cache import TieredCache
from .entry import Entry
from .metrics import Reporter
from .state import FollowerState, StateFile
from .upstream import FEED, UpstreamClient

log = logging.getLogger("eghact.edge")

EVENTS, TIME, STARTING, INCOMPATIBLE = "events", "time", "starting", "incompatible"
PAGE = 1000

OnEvents = Callable[[list[wire.ChangeEvent], list[Entry]], Awaitable[None]]


class Follower:
    def __init__(self, upstream: UpstreamClient, cache: TieredCache, state_file: StateFile, *,
                 reporter: Reporter, clock: Callable[[], float], feed_lifetime: float = 86_400.0,
                 vouch_window: float = 45.0, on_events: OnEvents | None = None, persist: bool = True):
        self.upstream = upstream
        self.cache = cache
        self.state_file = state_file
        self.state = FollowerState()
        self.mode = STARTING
        self.connected = False
        self._reporter = reporter
        self._clock = clock
        self._feed_lifetime = feed_lifetime
        self._vouch_window = vouch_window
        self._on_events = on_events
        self._persist = persist
        self._last_message = 0.0
        self._lock = asyncio.Lock()
        self._dirty = asyncio.Event()
        # Set (and replaced) each time the applied seq moves: what waits for a seq wakes up.
        self._advanced = asyncio.Event()
        self._heard = 0   # the highest seq the upstream said exists (feed extent, pages, documents)
        self._tasks: list[asyncio.Task[None]] = []
        self.gaps = 0
        self.incompatible: str | None = None   # why the upstream's feed is refused, if it is

    # -- FeedStatus ----------------------------------------------------------------

    @property
    def lifetime(self) -> float:
        if self.mode == EVENTS and self.connected and self._clock() - self._last_message < self._vouch_window:
            return self._feed_lifetime
        return 0.0

    @property
    def applied_seq(self) -> int:
        return self.state.seq

    @property
    def following(self) -> bool:
        """True while events arrive as they happen (the stream is connected)."""
        return self.mode == EVENTS and self.connected

    @property
    def known_seq(self) -> int:
        """The highest seq known to exist upstream: applied, or heard of and not yet applied."""
        return max(self.state.seq, self._heard)

    def heard(self, seq: int) -> None:
        """The upstream mentioned ``seq`` (an ``Eghact-Seq`` header): it exists. Without a feed
        we cannot apply seqs, so none is worth waiting or revalidating for."""
        if self.mode not in (TIME, INCOMPATIBLE):
            self._heard = max(self._heard, seq)

    async def reach(self, seq: int, timeout: float) -> bool:
        """Wait, at most ``timeout`` seconds, until events up to ``seq`` are applied (purged)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.state.seq < seq:
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._advanced.wait()
        return True

    def _advance(self) -> None:
        advanced, self._advanced = self._advanced, asyncio.Event()
        advanced.set()

    def health(self) -> dict[str, Any]:
        health = {"mode": self.mode, "connected": self.connected, "seq": self.state.seq,
                  "vouching": self.lifetime > 0, "gaps": self.gaps, "stale_before": self.cache.stale_before or None}
        if self.incompatible is not None:
            health["incompatible"] = self.incompatible
        return health

    # -- start and stop ----------------------------------------------------------------

    async def start(self, *, catch_up_timeout: float = 5.0, disk_empty: bool = True) -> None:
        self.state = self.state_file.load()
        self.cache.stale_before = max(self.cache.stale_before, self.state.stale_before)
        try:
            extent = await self._extent()
            if extent is None:
                self.mode = TIME
                log.info("upstream %s has no changes feed: time-based freshness only", self.upstream.base_url)
                return
            if self._refuses(extent):
                return
            await self._check_gap(extent, disk_empty=disk_empty)
            self.mode = EVENTS
            async with asyncio.timeout(catch_up_timeout):
                await self.catch_up()
        except (UpstreamUnavailable, TimeoutError) as exc:
            # Upstream down at start: serve what we have by its headers, keep trying.
            log.warning("feed not reachable at start (%s); following in the background", exc)
            self.mode = EVENTS if self.mode == STARTING else self.mode
        if self.mode == EVENTS:
            self._tasks.append(asyncio.create_task(self._follow(), name="feed-follower"))
            if self._persist:
                self._tasks.append(asyncio.create_task(self._saver(), name="feed-seq-saver"))

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        if self._persist and self.state.known:
            await self.state_file.save(self.state)

    # -- gap detection -------------------------------------------------------------

    async def _extent(self) -> dict[str, Any] | None:
        response = await self.upstream.fetch("/-/v1/changes?since=0&limit=1", {}, kind="feed", pool=FEED)
        if response.status in (404, 405, 400):
            return None
        if response.status != 200:
            raise UpstreamUnavailable(f"changes feed answered {response.status}")
        extent = await self.upstream.get_json("/-/v1/feed", kind="feed", pool=FEED)
        if extent.status == 200 and isinstance(extent.document, dict):
            return extent.document
        return {}  # a feed without an extent endpoint: resume blindly

    def _refuses(self, extent: dict[str, Any]) -> bool:
        """Whether the feed's stated protocol is one this edge cannot read; if so, stop vouching."""
        reason = protocol.incompatibility(extent.get("protocol"))
        if reason is None:
            return False
        self.incompatible = f"upstream {self.upstream.base_url}: {reason}"
        self.mode, self.connected = INCOMPATIBLE, False
        self._reporter.feed_state(False, self.state.seq)
        log.error("not following the changes feed: %s; freshness comes from headers alone", self.incompatible)
        return True

    async def _check_gap(self, extent: dict[str, Any], *, disk_empty: bool) -> None:
        state = self.state
        last = int(extent.get("last_seq", state.seq) or 0)
        self.heard(last)
        first = int(extent.get("first_seq", 1) or 1)
        registry_id = extent.get("registry_id")
        if not state.known and disk_empty:
            # A fresh edge holds nothing to invalidate: start at the head of the feed.
            state.seq, state.registry_id, state.known = last, registry_id, True
            await self.state_file.save(state)
            return
        reason = None
        if state.seq < 0 or not state.known:
            reason = "no readable position for a non-empty cache"
        elif registry_id and state.registry_id and registry_id != state.registry_id:
            reason = f"upstream is registry {registry_id}, we followed {state.registry_id}"
        elif extent and state.seq > last:
            reason = f"our seq {state.seq} is beyond the feed's end {last} (origin reset?)"
        elif extent and state.seq < first - 1:
            reason = f"the feed starts at {first}; we need {state.seq + 1}"
        if reason is not None:
            self.mark_gap(reason, last)
        state.registry_id = registry_id or state.registry_id
        state.known = True
        await self.state_file.save(state)

    def mark_gap(self, reason: str, resume_at: int) -> None:
        now = self._clock()
        log.warning("feed gap: %s; everything cached is now stale", reason)
        self.cache.mark_all_stale(now)
        self.state.stale_before = now
        self.state.seq = resume_at
        self._heard = resume_at   # seqs heard of before the gap may belong to another history
        self.gaps += 1
        self._reporter.feed_gap()

    # -- applying events -----------------------------------------------------------

    async def apply(self, events: list[wire.ChangeEvent]) -> None:
        fresh = [e for e in events if e.seq > self.state.seq]
        if not fresh:
            return
        async with self._lock:
            seqs: dict[str, int] = {}
            for event in fresh:  # in seq order: each tag ends with its last event's seq
                seqs.update(dict.fromkeys(event.keys, event.seq))
            count, removed = await self.cache.purge(list(seqs), seqs)
            now = self._clock()
            for event in fresh:
                self._reporter.invalidated(count if event is fresh[-1] else 0, _lag(event, now))
            self.state.seq = max(self.state.seq, fresh[-1].seq)
            self._reporter.feed_state(self.connected, self.state.seq)
            self._dirty.set()
            self._advance()
        if self._on_events is not None:
            await self._on_events(fresh, removed)

    async def catch_up(self) -> int:
        """Read the paged feed from our seq to its end; returns how many events applied."""
        applied = 0
        while True:
            since = self.state.seq
            page = await self.upstream.get_json(f"/-/v1/changes?since={since}&limit={PAGE}", kind="feed", pool=FEED)
            if page.status != 200:
                raise UpstreamUnavailable(f"changes feed answered {page.status}")
            body = page.document
            if not isinstance(body, dict):
                raise UpstreamUnavailable("the changes feed's page is not a JSON object")
            events = [wire.ChangeEvent.from_json(e) for e in body.get("results", [])]
            await self.apply(events)
            applied += len(events)
            last = int(body.get("last_seq", since))
            if last > self.state.seq:
                # Events we may not see (private ones) still move our position.
                self.state.seq = last
                self._dirty.set()
                self._advance()
            if self.state.seq <= since:
                return applied

    async def _follow(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._stream()
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reconnect; the stream resumes where we were
                log.info("feed stream dropped: %s", exc)
            self.connected = False
            self._reporter.feed_state(False, self.state.seq)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            with contextlib.suppress(Exception):
                extent = await self._extent()
                if extent:
                    if self._refuses(extent):  # the origin was replaced by one we cannot read
                        return
                    await self._check_gap(extent, disk_empty=False)

    async def _stream(self) -> None:
        # No total time limit on a stream; the origin's heartbeat keeps it observably alive.
        async with self.upstream.sse(f"/-/v1/changes?feed=sse&since={self.state.seq}",
                                     last_event_id=str(self.state.seq), idle=self._vouch_window) as stream:
            if stream.status != 200:
                raise UpstreamUnavailable(f"SSE feed answered {stream.status}")
            self.connected = True
            self._last_message = self._clock()
            self._reporter.feed_state(True, self.state.seq)
            async for data in stream.events():
                self._last_message = self._clock()
                if data is not None:
                    await self.apply([wire.ChangeEvent.from_json(json.loads(data))])

    async def _saver(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.state_file.save(self.state)
            except OSError as exc:
                log.warning("could not save the feed position: %s", exc)
            await asyncio.sleep(0.05)  # at most 20 writes a second, whatever the event rate


def _lag(event: wire.ChangeEvent, now: float) -> float | None:
    try:
        return now - datetime.fromisoformat(event.time).timestamp()
    except ValueError:
        return None
