"""Cache tiers: memory (bounded in bytes, frequency-aware admission) and disk (diskcache,
survives restarts). Both speak :class:`Tier`; :class:`~eghact_edge.cache.TieredCache`
puts them in order."""

from __future__ import annotations

from typing import Protocol

from ..entry import Entry
from .admission import AlwaysAdmit, TinyLfu
from .disk import DiskTier
from .memory import MemoryTier

__all__ = ["AlwaysAdmit", "DiskTier", "MemoryTier", "Tier", "TinyLfu"]


class Tier(Protocol):
    name: str

    async def get(self, key: str) -> Entry | None:
        """The entry stored under ``key``, or None. Memory: O(1), no await point.
        Disk: one SQLite read and one file read on a worker thread."""

    async def put(self, entry: Entry) -> bool:
        """Store ``entry`` under ``entry.key`` (replacing). False when the tier declined it
        (too big, or the admission policy preferred what it holds). May evict others."""

    async def purge(self, tag: str) -> int:
        """Remove every entry whose surrogate key is ``tag``; returns how many. Memory: O(k)
        through a tag index. Disk: one indexed DELETE."""
