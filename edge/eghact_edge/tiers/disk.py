"""The disk tier: diskcache, bounded in bytes, surviving restarts.

diskcache keeps small values in SQLite and big ones in files, evicts past its size limit,
and is safe across threads and processes (several edge workers share one directory).
Every call blocks, so reads run on the thread pool and writes on one dedicated thread
(SQLite has one writer anyway; a single thread keeps writes from queueing on its lock).
The surrogate key is diskcache's ``tag`` (indexed), so a purge is one DELETE.

Writes (stores, purges, removals) queue in arrival order and are applied in batches, one
SQLite transaction per batch: a commit per entry was a quarter of an edge's CPU while
warming. Order matters (a purge must not be overtaken by an older store), hence one
queue for all three. Eviction is ours too (diskcache's automatic culling is off): the
tier culls after each batch and counts what it evicted, for /-/metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache

from eghact_common.blocking import SerialExecutor, run_blocking

from ..entry import Entry

log = logging.getLogger("eghact.edge")

_BATCH = 256
_PUT, _PURGE, _REMOVE = "put", "purge", "remove"


class DiskTier:
    name = "disk"

    def __init__(self, directory: Path, max_bytes: int, *, on_evict: Callable[[int], None] | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        # least-recently-stored: LRU would turn every read into a SQLite write.
        self._cache = diskcache.Cache(
            str(directory), size_limit=max_bytes, eviction_policy="least-recently-stored",
            tag_index=True, statistics=False, cull_limit=0,
        )
        self._writer = SerialExecutor("edge-disk-writer")
        self._on_evict = on_evict
        self._queue: list[tuple[str, Any, asyncio.Future[Any] | None]] = []
        self._draining: asyncio.Task[None] | None = None
        self._held = 0

    def _get_sync(self, key: str) -> Entry | None:
        data = self._cache.get(key)
        if data is None:
            return None
        try:
            return Entry.from_bytes(data)
        except (ValueError, KeyError, TypeError):
            # An entry of another layout or a torn write: drop it rather than serve it.
            log.warning("dropping unreadable disk entry %r", key)
            self._cache.delete(key)
            return None

    def _put_sync(self, entry: Entry) -> bool:
        if entry.size > self.max_bytes // 8:
            return False  # one giant body must not flush the tier
        return bool(self._cache.set(entry.key, entry.to_bytes(), tag=entry.tag))

    def _apply_sync(self, ops: list[tuple[str, Any]]) -> list[Any]:
        """One transaction for a batch of writes, in order; then evict down to the limit."""
        results: list[Any] = []
        with self._cache.transact():
            for op, arg in ops:
                if op == _PUT:
                    results.append(self._put_sync(arg))
                elif op == _PURGE:
                    results.append(int(self._cache.evict(arg)))
                else:
                    results.append(bool(self._cache.delete(arg)))
        evicted = int(self._cache.cull())
        if evicted and self._on_evict is not None:
            self._on_evict(evicted)
        return results

    async def _write(self, op: str, arg: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(op, arg, future)
        return await future

    def _enqueue(self, op: str, arg: Any, future: asyncio.Future[Any] | None) -> None:
        self._queue.append((op, arg, future))
        if self._draining is None and (future is not None or not self._held):
            self._draining = asyncio.create_task(self._drain(), name="disk-writes")

    def hold(self) -> None:
        """Keep queued stores back (a start-up warm: they would compete with it for the
        GIL). A write someone waits for still flushes the whole queue, in order."""
        self._held += 1

    def release(self) -> None:
        self._held -= 1
        if not self._held and self._queue and self._draining is None:
            self._draining = asyncio.create_task(self._drain(), name="disk-writes")

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:_BATCH], self._queue[_BATCH:]
                try:
                    results = await self._writer.run(self._apply_sync, [(op, arg) for op, arg, _ in batch])
                except Exception as exc:
                    log.warning("disk tier writes failed: %s", exc)
                    for _, _, future in batch:
                        if future is not None and not future.done():
                            future.set_exception(exc)
                    continue
                for (_, _, future), result in zip(batch, results, strict=True):
                    if future is not None and not future.done():
                        future.set_result(result)
        finally:
            self._draining = None

    async def get(self, key: str) -> Entry | None:
        return await run_blocking(self._get_sync, key)

    async def put(self, entry: Entry) -> bool:
        return bool(await self._write(_PUT, entry))

    def put_later(self, entry: Entry) -> None:
        """Queue a store without waiting for it: it is applied in order with every other
        write (a later purge still removes it), and before :meth:`close` returns."""
        self._enqueue(_PUT, entry, None)

    async def purge(self, tag: str) -> int:
        return int(await self._write(_PURGE, tag))

    async def remove(self, key: str) -> bool:
        return bool(await self._write(_REMOVE, key))

    def volume(self) -> int:
        """Bytes on disk (blocking, cheap: one SQL sum)."""
        return int(self._cache.volume())

    def keys_sync(self) -> list[str]:
        return list(self._cache.iterkeys())

    def get_sync(self, key: str) -> Entry | None:
        return self._get_sync(key)

    async def close(self) -> None:
        """Apply the writes still queued, then close."""
        self._held = 0
        if self._queue and self._draining is None:
            self._draining = asyncio.create_task(self._drain(), name="disk-writes")
        while self._draining is not None:
            await asyncio.shield(self._draining)
        self._writer.shutdown()
        with contextlib.suppress(Exception):
            self._cache.close()
