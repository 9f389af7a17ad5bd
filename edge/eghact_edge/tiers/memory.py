"""The memory tier: a cachetools LRU bounded in bytes, behind an admission policy.

Recency decides who goes out (cachetools' ``LRUCache``, weighed by ``Entry.size``);
the admission policy decides whether a newcomer is worth what it would push out
(see :mod:`.admission`). A tag index (surrogate key -> cache keys) makes purges cost
what they remove, not the size of the tier.

Its API is synchronous, and it is not a :class:`~eghact_edge.tiers.Tier`: the front answers
a fresh memory hit without an await point (``EdgeHandler.read``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, Protocol

import cachetools

from ..entry import Entry
from .admission import TinyLfu


class Admission(Protocol):
    def record(self, key: Hashable) -> None:
        """Note one request for ``key`` (hit or miss). Called on the hit path: O(1)."""

    def admit(self, candidate: Hashable, victims: Iterable[Hashable]) -> bool:
        """Whether ``candidate`` should replace ``victims`` (the LRU keys it would evict)."""


class _ByteLru(cachetools.LRUCache):
    """cachetools' LRU, telling its owner what it evicts and letting it peek at the order."""

    def __init__(self, maxsize: int, on_evict: Callable[[Any, Any], None]):
        super().__init__(maxsize, getsizeof=lambda entry: entry.size)
        self._on_evict = on_evict

    def popitem(self) -> tuple[Any, Any]:
        key, value = super().popitem()
        self._on_evict(key, value)
        return key, value

    def oldest(self) -> Iterator[Any]:
        """Keys from least to most recently used (cachetools keeps them in an OrderedDict)."""
        return iter(self._LRUCache__order)  # type: ignore[attr-defined]


class MemoryTier:
    name = "memory"

    def __init__(self, max_bytes: int, *, admission: Admission | None = None,
                 on_evict: Callable[[Entry], None] | None = None):
        self.max_bytes = max_bytes
        self._lru = _ByteLru(max_bytes, self._evicted)
        self._admission: Admission = admission if admission is not None else TinyLfu.for_bytes(max_bytes)
        self._tags: dict[str, set[str]] = {}
        self._on_evict = on_evict

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def bytes(self) -> int:
        return int(self._lru.currsize)

    @property
    def admission(self) -> Admission:
        return self._admission

    def lookup(self, key: str) -> Entry | None:
        """The look-up of a client request, once per request (``EdgeHandler.read`` makes it):
        counts the request for admission and refreshes recency. O(1)."""
        self._admission.record(key)
        return self._lru.get(key)

    def peek(self, key: str) -> Entry | None:
        """Without counting or touching recency: every look after a request's one
        :meth:`lookup` (the read-through, warming, integrity checks). O(1)."""
        return self._lru_peek(key) if key in self._lru else None

    def store(self, entry: Entry) -> bool:
        """Keep ``entry`` (replacing its key's) unless it is bigger than the tier or the
        admission policy prefers what it would evict; whether it was kept."""
        size = entry.size
        if size > self.max_bytes:
            return False
        key = entry.key
        old = self._lru_peek(key) if key in self._lru else None
        if old is None:
            need = int(self._lru.currsize) + size - self.max_bytes
            if need > 0:
                victims = self._victims(need)
                if not self._admission.admit(key, victims):
                    # The oldest entry just outweighed a newcomer: a second chance at the
                    # recent end, so that the next newcomer is weighed against the next
                    # oldest rather than every one losing to this popular entry (what the
                    # protected segment of W-TinyLFU's main cache does). Zipf 0.8 in
                    # benchmarks/edge.py: 0.567 -> 0.579 hits, Belady 0.666.
                    self._lru[victims[0]]   # cachetools: a read refreshes recency
                    return False
        else:
            self._untag(old)
        self._lru[key] = entry
        if entry.tag:
            self._tags.setdefault(entry.tag, set()).add(key)
        return True

    def remove(self, key: str) -> Entry | None:
        entry = self._lru.pop(key, None)
        if entry is not None:
            self._untag(entry)
        return entry

    def purge_tag(self, tag: str) -> list[Entry]:
        """Remove every entry whose surrogate key is ``tag``: O(removed), through the tag index."""
        removed = []
        for key in list(self._tags.get(tag, ())):
            entry = self.remove(key)
            if entry is not None:
                removed.append(entry)
        self._tags.pop(tag, None)
        return removed

    def entries(self) -> list[Entry]:
        return list(self._lru.values())

    def clear(self) -> None:
        self._lru.clear()
        self._tags.clear()

    # -- internals -----------------------------------------------------------------

    def _victims(self, need: float) -> list[str]:
        # float: cachetools sizes are numbers (its maxsize may be inf); ours are byte counts.
        victims: list[str] = []
        freed = 0.0
        for key in self._lru.oldest():
            victims.append(key)
            freed += int(self._lru.getsizeof(self._lru_peek(key)))
            if freed >= need:
                break
        return victims

    def _lru_peek(self, key: str) -> Entry:
        return cachetools.Cache.__getitem__(self._lru, key)

    def _untag(self, entry: Entry) -> None:
        if entry.tag:
            keys = self._tags.get(entry.tag)
            if keys is not None:
                keys.discard(entry.key)
                if not keys:
                    del self._tags[entry.tag]

    def _evicted(self, key: str, entry: Entry) -> None:
        self._untag(entry)
        if self._on_evict is not None:
            self._on_evict(entry)
