"""Cache tiers: memory (bounded in bytes, frequency-aware admission) and disk (diskcache,
survives restarts); :class:`~eghact_edge.cache.TieredCache` puts them in order.

The two are not one interface. Memory is synchronous, because the front answers a fresh
memory hit without an await point: :class:`MemoryTier` has ``lookup`` (a client request's one
look, counted for admission), ``peek``, ``store`` and ``purge_tag``. What lies behind memory
is slower, asynchronous and written behind the reader's back; :class:`Tier` is that slot,
the seam a shared tier (one cache for a region's edges) would plug into. :class:`DiskTier`
is the one there today.
"""

from __future__ import annotations

from typing import Protocol

from ..entry import Entry
from .admission import AlwaysAdmit, TinyLfu
from .disk import DiskTier
from .memory import MemoryTier

__all__ = ["AlwaysAdmit", "DiskTier", "MemoryTier", "Tier", "TinyLfu"]


class Tier(Protocol):
    """The tier behind memory, as :class:`~eghact_edge.cache.TieredCache` uses it."""

    name: str

    async def get(self, key: str) -> Entry | None:
        """The entry stored under ``key``, or None (an unreadable one is dropped, a miss).
        Disk: one SQLite read and one file read on a worker thread."""

    def put_later(self, entry: Entry) -> None:
        """Queue a store of ``entry`` under ``entry.key`` (replacing) without waiting: applied
        in order with every other write (a purge queued later still removes it) and before
        the tier closes. The tier may decline it (too big) and may evict others."""

    async def purge(self, tag: str) -> int:
        """Remove every entry whose surrogate key is ``tag``, after the writes queued before;
        how many went. Disk: one indexed DELETE, batched with other queued writes."""

    async def remove(self, key: str) -> bool:
        """Remove the entry under ``key``, after the writes queued before; whether there was one."""
