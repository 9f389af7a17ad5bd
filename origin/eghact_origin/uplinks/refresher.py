"""The background refresher: pulled packages are kept fresh whether or not anyone reads them here.

Why a refresher: an edge keeps a feed-covered packument fresh until an event purges it, so with
edges in front the origin sees almost no reads of a pulled package, and a refresh made only on a
read (``UplinkService.ensure``) would never come. So each cycle:

1. **Reveals.** Pulled packages whose ``reveal_at`` (the moment the first version the cooldown
   hides becomes visible, kept with the package's state) has come get the pull policy applied
   again to their stored upstream document: no upstream request, one feed event when the view
   changes. The loop sleeps no longer than until the next reveal, so a version appears at its
   time (within the store's read and one write), not at the next refresh.
2. **Revalidations.** For each uplink that is not down (cooling off after failures: asked no
   more meanwhile), its pulled packages last fetched more than ``max_age`` ago, oldest first, at
   most ``refresh_batch`` of them, are revalidated with a conditional request (the service's
   ``refresh``: a 304 re-applies the policy, a new document is one feed event, a failure leaves
   the stored copy served and the package due), ``refresh_concurrency`` at a time. A full batch
   starts the next cycle at once; otherwise the next one comes ``refresh_every`` later.

Capacity: the refresher is bound by upstream round trips (``refresh_concurrency`` in flight) or,
on a near upstream, by the origin's CPU. Measured with ``benchmarks/uplink_refresh.py`` (2,000
pulled packages, every revalidation a 304, against a second origin of ours on 127.0.0.1, both
processes on one 2-core machine shared with other work): 425 packages/s one at a time, 412 to
705/s four at a time (three runs), 550/s eight at a time (CPU-bound: more in flight does not
help). So at the default ``--uplink-max-age 5m`` one origin keeps at least 120,000 pulled
packages fresh from a near upstream.
From a remote registry the round trip decides: four in flight at 100 ms make 40 a second, about
12,000 packages per 5 minutes; an origin holding more pulled packages than rate x max age should
be given a longer max age (each refresh is then later, none is lost). Falling behind shows:
oldest first, ``eghact_origin_uplink_refresher_behind_seconds`` and ``/-/health``'s
``uplinks.refresh.behind_seconds`` say how far past its max age the oldest due package is.
Reads still revalidate a package found past its max age, so falling behind never serves a copy
older than one read would have.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from eghact_common.errors import EghactError

from ..metrics import Reporter
from ..storage import MetadataStore
from .config import UplinkConfig

log = logging.getLogger("eghact.origin.uplinks")


class Refreshable(Protocol):
    """What the refresher asks of the uplink service."""

    def available(self) -> list[str]:
        """The uplinks that may be asked now (not down, cooling off after failures)."""

    async def refresh(self, name: str) -> bool:
        """Revalidate a pulled package now (False: it may not leave any more); raises when the uplink failed."""

    async def reveal(self, name: str) -> None:
        """Apply the pull policy again to a pulled package's stored document."""


class Refresher:
    def __init__(self, service: Refreshable, store: MetadataStore, config: UplinkConfig, *,
                 reporter: Reporter | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self._service = service
        self._store = store
        self._config = config
        self._reporter = reporter or Reporter()
        self._clock = clock
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.cycles = 0
        self.behind = 0.0
        self.last_cycle_at: float | None = None

    def start(self) -> None:
        """Run cycles on the current loop until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="uplink-refresher")

    async def stop(self) -> None:
        """End the loop, cancelling a cycle in progress (a refresh it started is the service's flight:
        the service cancels those). Safe to call when never started."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def report(self) -> dict[str, Any]:
        """For ``/-/health``: cycles run, how far behind, when the last cycle began."""
        return {"cycles": self.cycles, "behind_seconds": round(self.behind, 3), "last_cycle_at": self.last_cycle_at}

    async def _run(self) -> None:
        while True:
            try:
                wait = await self.cycle()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store error must not end the refreshing for good
                log.exception("uplink refresher cycle failed")
                wait = self._config.refresh_every
            await self._sleep(wait)

    async def cycle(self) -> float:
        """One cycle (reveals, then revalidations); returns the seconds to wait before the next."""
        config, now = self._config, self._clock()
        every = config.refresh_every
        self.last_cycle_at = now
        reveals = await self._store.uplink_reveals(now + every, config.refresh_batch)
        come = [name for name, at in reveals if at <= now]
        revealed, failed = await self._each(come, self._reveal)
        due: list[tuple[str, float]] = []
        oldest: list[float] = []
        full = len(come) == config.refresh_batch
        available = set(self._service.available())
        for uplink in config.uplinks:
            # A down uplink is not asked, but what waits on it counts in how far behind we are.
            limit = config.refresh_batch if uplink.name in available else 1
            batch = await self._store.uplink_due(uplink.name, now - config.max_age, limit)
            oldest.extend(fetched for _, fetched in batch[:1])
            if uplink.name in available:
                full = full or len(batch) == config.refresh_batch
                due.extend(batch)
        self.behind = max((now - config.max_age - fetched for fetched in oldest), default=0.0)
        refreshed, failures = await self._each([name for name, _ in due], self._service.refresh)
        failed += failures
        self.cycles += 1
        self._reporter.uplink_refresher(refreshed, revealed, failed, self.behind)
        if full:
            return 0.0
        upcoming = [at - now for _, at in reveals if at > now]
        return max(0.0, min([every, *upcoming]))

    async def _reveal(self, name: str) -> bool:
        await self._service.reveal(name)
        return True

    async def _each(self, names: list[str], work: Callable[[str], Awaitable[bool]]) -> tuple[int, int]:
        """``work`` on each name, ``refresh_concurrency`` at once: (done, failed)."""
        limit = asyncio.Semaphore(self._config.refresh_concurrency)

        async def one(name: str) -> bool | None:
            async with limit:
                try:
                    return await work(name)
                except EghactError as error:
                    log.info("uplink refresher: %s: %s", name, error.message)
                    return None

        results = await asyncio.gather(*(one(name) for name in names))
        return sum(1 for r in results if r), sum(1 for r in results if r is None)
