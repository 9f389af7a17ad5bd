"""Memory then disk, as one cache: look-ups promote, stores fill both, purges clear both.

A request is counted for admission once, by its one :meth:`MemoryTier.lookup
<eghact_edge.tiers.MemoryTier.lookup>` (``EdgeHandler.read`` makes it, and hands what it found
on as a :class:`Seen`); every look after that is a peek. Counting twice let a key asked for
once pass TinyLFU's admission as if asked for twice.

Two pieces of state make invalidation safe against races:

* ``stale_before``: after a feed gap nothing stored earlier may be served as fresh
  (see :mod:`.freshness`); it is persisted by the follower with its seq.
* purge *generations*: a fetch that was already on its way when an event purged its
  surrogate key may carry the old content. :meth:`generation` is read before a fetch and
  :meth:`purged_since` after it; a purged key's response is served to whoever asked but
  not stored. An answer that states the seq it reflects (``Eghact-Seq``) is not purged by an
  event it already reflects: the purge's seq is remembered per tag beside its generation.
  Without that, an origin pulling a name through its uplink (the read causes the change
  event) had every first pull purged at the edge that asked for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .entry import Entry
from .metrics import Reporter
from .tiers import MemoryTier, Tier

# Purge generations are remembered per tag up to this many tags; beyond that the table is
# dropped and every fetch in flight counts as purged (safe, and rare).
_MAX_REMEMBERED_TAGS = 100_000
# The seq of a purge no event caused (a write's own purge): no answer can be shown to reflect it.
_UNKNOWN = 1 << 62

HIT_MEM, HIT_DISK = "HIT-MEM", "HIT-DISK"


@dataclass(frozen=True, slots=True)
class Seen:
    """What a request's one memory look-up found, and the purge generation it was made at."""

    entry: Entry | None
    generation: int


class TieredCache:
    def __init__(self, memory: MemoryTier, disk: Tier | None, *, reporter: Reporter,
                 clock: Callable[[], float]):
        self.memory = memory
        self.disk = disk
        self._reporter = reporter
        self._clock = clock
        self.stale_before = 0.0
        self._generation = 0
        self._floor = 0          # every fetch started before this counts as purged
        self._purged: dict[str, int] = {}
        # The seq of the last event that purged each tag (_UNKNOWN for purges of no event).
        self._purged_seq: dict[str, int] = {}

    def seen(self, key: str) -> Seen:
        """A client request's one look in memory: counted for admission, recency refreshed."""
        return Seen(self.memory.lookup(key), self._generation)

    async def lookup(self, key: str, seen: Seen | None = None) -> tuple[Entry | None, str]:
        """Memory, then disk (a disk hit is promoted); the entry and where it was found
        ("" for a miss). Counts nothing: ``seen`` is the request's own look, used as it is
        unless a purge of its tag (or a feed gap) happened since; without it memory is peeked."""
        if seen is not None and seen.entry is not None and not self.purged_since(seen.generation, seen.entry.tag):
            return seen.entry, HIT_MEM
        entry = self.memory.peek(key)
        if entry is not None:
            return entry, HIT_MEM
        entry = await self._disk_get(key)
        if entry is not None:
            self.memory.store(entry)
            return entry, HIT_DISK
        return None, ""

    async def _disk_get(self, key: str) -> Entry | None:
        """A disk read that a purge overtook is a miss: promoting it would resurrect it."""
        if self.disk is None:
            return None
        generation = self.generation()
        entry = await self.disk.get(key)
        if entry is not None and self.purged_since(generation, entry.tag):
            return None
        return entry

    async def store(self, entry: Entry) -> None:
        """In memory now; on disk soon, without making the caller wait: writes keep their
        order (a purge queued later still removes it), and the worst a look-up racing the
        write can do is fetch once more."""
        self.memory.store(entry)
        if self.disk is not None:
            self.disk.put_later(entry)

    async def remove(self, key: str) -> None:
        self.memory.remove(key)
        if self.disk is not None:
            await self.disk.remove(key)

    # -- invalidation ---------------------------------------------------------------

    def generation(self) -> int:
        return self._generation

    def purged_since(self, generation: int, tag: str | None, seq: int | None = None) -> bool:
        """Whether ``tag`` was purged (or a gap made everything stale) since ``generation``;
        not when ``seq``, the seq an answer reflects, is at or past the last purge's event:
        that answer already holds the change that purge announced."""
        if generation < self._floor:
            return True
        if tag is None or self._purged.get(tag, -1) <= generation:
            return False
        return seq is None or self._purged_seq.get(tag, _UNKNOWN) > seq

    async def purge(self, tags: Iterable[str], seqs: Mapping[str, int] | None = None) -> tuple[int, list[Entry]]:
        """Remove every entry carrying any of ``tags`` from both tiers: how many went, and
        the entries that were in memory (the hot ones, worth refetching). ``seqs``: the seq
        of the event that purges each tag, when an event does (see :meth:`purged_since`).

        Disk first, then memory: a look-up in between is still answered from memory (the
        old content, for the few milliseconds an invalidation takes), while the other
        order would let a memory miss promote the not-yet-purged disk copy back."""
        tags = list(tags)
        count = 0
        if self.disk is not None:
            disk = self.disk   # queued together, so they land in one disk transaction
            count = sum(await asyncio.gather(*(disk.purge(tag) for tag in tags)))
        removed = self.purge_memory(tags, seqs)
        return count + len(removed), removed

    def purge_memory(self, tags: Iterable[str], seqs: Mapping[str, int] | None = None) -> list[Entry]:
        removed = []
        for tag in tags:
            self._note_purge(tag, (seqs or {}).get(tag, _UNKNOWN))
            removed.extend(self.memory.purge_tag(tag))
        return removed

    def mark_all_stale(self, when: float) -> None:
        """After a feed gap: everything stored before ``when`` must be revalidated."""
        self.stale_before = max(self.stale_before, when)
        self._generation += 1
        self._floor = self._generation

    def _note_purge(self, tag: str, seq: int) -> None:
        self._generation += 1
        if len(self._purged) >= _MAX_REMEMBERED_TAGS:
            self._purged.clear()
            self._purged_seq.clear()
            self._floor = self._generation
        self._purged[tag] = self._generation
        self._purged_seq[tag] = seq
