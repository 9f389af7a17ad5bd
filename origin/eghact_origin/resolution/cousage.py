"""Co-usage statistics: which lazy roots are resolved together, for the load plan's
``prefetch`` hints ("after chunk A, B is likely next").

Bounded by construction. Issue 11: a counter per *pair* of root names, fed by every resolve
request and never pruned, grew the origin from 0.6 to 2.2 GB on one anonymous request naming
8,000 made-up roots (and again at every start, relearnt from the stored requests). Now:

- only resolutions that produced a lockfile teach anything, so every name is a package that
  exists, and a request of made-up names costs nothing here;
- each root keeps its ``top`` most co-used names in the ``co_usage`` table (at most ``top``
  rows per package) and nothing in memory beyond the queue of writes not yet made;
- weights use forward decay (:mod:`.decay`): one use adds a unit shared among the other roots
  of that resolution, so one resolution of 200 roots says little about any pair; a name whose
  weight has decayed below ``FLOOR`` of one unit is deleted;
- uses are queued and written by one background task, many per transaction, off the event
  loop (the merge is O(roots x (roots + top)) per use, at most 256 x 272); the queue holds at
  most ``max_pending`` uses and drops the rest: hints are advice, not records.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..decay import ForwardDecay

log = logging.getLogger("eghact.cousage")

FLOOR = 1 / 1024   # of one unit: below it a co-used name is forgotten
_READ_CHUNK = 500  # names per IN (...): SQLite's default variable limit is 32,766, be modest


class Store(Protocol):
    async def read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any: ...

    async def write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any: ...


class CoUsage:
    def __init__(self, store: Store, *, top: int = 16, half_life: float = 7 * 86_400.0,
                 clock: Callable[[], float] = time.time, max_pending: int = 256):
        if top < 1:
            raise ValueError("co-usage keeps at least one name per root")
        self._store = store
        self._top = top
        self._decay = ForwardDecay("co_usage_epoch", "co_usage", "score", half_life)
        self._clock = clock
        self._max_pending = max_pending
        self._pending: list[tuple[str, ...]] = []
        self._writer: asyncio.Task[None] | None = None
        self.dropped = 0

    async def hints(self, lazy: Sequence[str]) -> dict[str, list[str]]:
        """For each name of ``lazy``, the other names of ``lazy`` most used with it, most
        likely first (names without any are left out). One indexed read per 500 names."""
        wanted = set(lazy)
        if len(wanted) < 2:
            return {}
        names = sorted(wanted)

        def run(conn: sqlite3.Connection) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for start in range(0, len(names), _READ_CHUNK):
                chunk = names[start:start + _READ_CHUNK]
                rows = conn.execute(
                    f"SELECT name, other FROM co_usage WHERE name IN ({','.join('?' * len(chunk))}) "
                    "ORDER BY name, score DESC, other", chunk)
                for name, other in rows:
                    if other in wanted:
                        found.setdefault(name, []).append(other)
            return found

        result: dict[str, list[str]] = await self._store.read(run)
        return result

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
                await self._store.write(functools.partial(self._apply, batch=batch, now=self._clock()))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing co-usage of %d resolutions", len(batch))

    def _apply(self, conn: sqlite3.Connection, batch: list[tuple[str, ...]], now: float) -> None:
        unit = self._decay.weight(conn, now)
        added: dict[str, dict[str, float]] = {}
        for names in batch:
            share = unit / (len(names) - 1)
            for name in names:
                mine = added.setdefault(name, {})
                for other in names:
                    if other != name:
                        mine[other] = mine.get(other, 0.0) + share
        for name, increments in added.items():
            stored = dict(conn.execute("SELECT other, score FROM co_usage WHERE name=?", (name,)).fetchall())
            merged = dict(stored)
            for other, score in increments.items():
                merged[other] = merged.get(other, 0.0) + score
            keep = heapq.nsmallest(self._top, merged.items(), key=lambda item: (-item[1], item[0]))
            kept = {other for other, _ in keep}
            conn.executemany("DELETE FROM co_usage WHERE name=? AND other=?",
                             [(name, other) for other in stored if other not in kept])
            conn.executemany(
                "INSERT INTO co_usage (name, other, score) VALUES (?, ?, ?) "
                "ON CONFLICT(name, other) DO UPDATE SET score=excluded.score",
                [(name, other, score) for other, score in keep if stored.get(other) != score])
        conn.execute("DELETE FROM co_usage WHERE score < ?", (FLOOR * unit,))
