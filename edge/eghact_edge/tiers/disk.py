"""The disk tier: diskcache, bounded in bytes, surviving restarts.

diskcache keeps small values in SQLite and big ones in files, evicts past its size limit,
and is safe across threads and processes (several edge workers share one directory).
Every call blocks, so reads run on the thread pool and writes on one dedicated thread
(SQLite has one writer anyway; a single thread keeps writes from queueing on its lock).
The surrogate key is diskcache's ``tag`` (indexed), so a purge is one DELETE.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import diskcache

from eghact_common.blocking import SerialExecutor, run_blocking

from ..entry import Entry

log = logging.getLogger("eghact.edge")


class DiskTier:
    name = "disk"

    def __init__(self, directory: Path, max_bytes: int):
        directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        # least-recently-stored: LRU would turn every read into a SQLite write.
        self._cache = diskcache.Cache(
            str(directory), size_limit=max_bytes, eviction_policy="least-recently-stored",
            tag_index=True, statistics=False, cull_limit=16,
        )
        self._writer = SerialExecutor("edge-disk-writer")

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

    async def get(self, key: str) -> Entry | None:
        return await run_blocking(self._get_sync, key)

    async def put(self, entry: Entry) -> bool:
        return await self._writer.run(self._put_sync, entry)

    async def purge(self, tag: str) -> int:
        return int(await self._writer.run(self._cache.evict, tag))

    async def remove(self, key: str) -> bool:
        return bool(await self._writer.run(self._cache.delete, key))

    def volume(self) -> int:
        """Bytes on disk (blocking, cheap: one SQL sum)."""
        return int(self._cache.volume())

    def keys_sync(self) -> list[str]:
        return list(self._cache.iterkeys())

    def get_sync(self, key: str) -> Entry | None:
        return self._get_sync(key)

    def close(self) -> None:
        self._writer.shutdown()
        with contextlib.suppress(Exception):
            self._cache.close()
