"""Co-usage statistics: which lazy roots are resolved together, for the load plan's
``prefetch`` hints ("after chunk A, B is likely next").

Bounded by construction. Issue 11: a counter per *pair* of root names, fed by every resolve
request and never pruned, grew the origin from 0.6 to 2.2 GB on one anonymous request naming
8,000 made-up roots (and again at every start, relearnt from the stored requests). Now:

- only resolutions that produced a lockfile teach anything, so every name is a package that
  exists, and a request of made-up names costs nothing here;
- each root keeps its ``top`` most co-used names in the ``co_usage`` table (at most ``top``
  rows per package) and nothing in memory beyond the queue of writes not yet made;
- weights use forward decay (``storage/sqlite/decay.py``): one use adds a unit shared among the other roots
  of that resolution, so one resolution of 200 roots says little about any pair; a name whose
  weight has decayed below ``FLOOR`` of one unit is deleted;
- uses are queued and written by one background task, many per transaction, off the event
  loop (the merge is O(roots x (roots + top)) per use, at most 256 x 272); the queue holds at
  most ``max_pending`` uses and drops the rest: hints are advice, not records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from ..storage import MetadataStore

log = logging.getLogger("eghact.cousage")

FLOOR = 1 / 1024   # of one unit: below it a co-used name is forgotten


class CoUsage:
    def __init__(self, store: MetadataStore, *, top: int = 16, half_life: float = 7 * 86_400.0,
                 clock: Callable[[], float] = time.time, max_pending: int = 256):
        if top < 1:
            raise ValueError("co-usage keeps at least one name per root")
        self._store = store
        self._top = top
        self._half_life = half_life
        self._clock = clock
        self._max_pending = max_pending
        self._pending: list[tuple[str, ...]] = []
        self._writer: asyncio.Task[None] | None = None
        self.dropped = 0

    async def hints(self, lazy: Sequence[str]) -> dict[str, list[str]]:
        """For each name of ``lazy``, the other names of ``lazy`` most used with it, most
        likely first (names without any are left out). One store read."""
        wanted = set(lazy)
        if len(wanted) < 2:
            return {}
        stored = await self._store.co_usage_top(sorted(wanted))
        found = {name: [other for other in others if other in wanted] for name, others in stored.items()}
        return {name: others for name, others in found.items() if others}

    def learn(self, lazy: Sequence[str]) -> None:
        """Count one use of ``lazy`` (the lazy roots of a resolution that produced a
        lockfile); written in the background. Call on the event loop."""
        names = tuple(sorted(set(lazy)))
        if len(names) < 2:
            return
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            return
        self._pending.append(names)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending(), name="co-usage")

    async def flush(self) -> None:
        """Wait until every use counted so far is written (tests, shutdown)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):  # logged by the writer
                await asyncio.shield(self._writer)
        if self._pending:
            await self._write_pending()

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._store.co_usage_add(_increments(batch), now=self._clock(), half_life=self._half_life,
                                               top=self._top, floor=FLOOR)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing co-usage of %d resolutions", len(batch))


def _increments(batch: list[tuple[str, ...]]) -> dict[str, dict[str, float]]:
    """Per name, what each other name of the batch's resolutions adds, in units of one use:
    a use is shared among the other roots of its resolution."""
    added: dict[str, dict[str, float]] = {}
    for names in batch:
        share = 1.0 / (len(names) - 1)
        for name in names:
            mine = added.setdefault(name, {})
            for other in names:
                if other != name:
                    mine[other] = mine.get(other, 0.0) + share
    return added
