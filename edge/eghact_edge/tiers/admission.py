"""Admission policies for the memory tier: who gets in when something must go out.

Plain LRU admits everything, so one pass over rarely used keys (a crawler, a CI fleet
installing an odd lock file) flushes the hot set. :class:`TinyLfu` (Einziger, Friedman &
Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", 2017) keeps an approximate
frequency of every key seen recently — a count-min sketch of 4-bit-capped counters behind
a doorkeeper set that absorbs the one-hit wonders — and admits a newcomer only when it was
asked for more often than the entries it would push out. Counters are halved every
``sample`` records, so the estimate follows a shifting popularity. ``benchmarks/edge.py``
measures the choice against LRU and Belady's optimum on Zipf traces.

Two departures from the paper, both for entries of very different sizes (a 2 KiB packument
beside a 20 MiB tarball), each measured with ``benchmarks/edge.py --only ratio`` (10,000
plugins, memory at 10% of the corpus, 200k requests; before -> after, Belady's optimum):
the sketch is sized by bytes for small entries (``for_bytes``: ~2 KiB a counter, not 8:
too few counters made every key look alike), and a newcomer must be asked for more often
than all the entries it would push out *together* (one big body displacing many small ones
costs all their hits). Zipf 0.8: 0.527 -> 0.567 (0.666); Zipf 1.0: 0.736 -> 0.764 (0.819);
with the memory tier's second chance for a victim that outweighed a newcomer, 0.579 and 0.769.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

_DEPTH = 4
_CAP = 15
_SEEDS = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F)


class AlwaysAdmit:
    """Plain LRU: every newcomer gets in."""

    def record(self, key: Hashable) -> None:
        return None

    def admit(self, candidate: Hashable, victims: Iterable[Hashable]) -> bool:
        return True


class TinyLfu:
    """Frequency sketch plus doorkeeper; ``width`` ~ the number of entries the tier holds."""

    @classmethod
    def for_bytes(cls, max_bytes: int) -> TinyLfu:
        """For a tier of ``max_bytes``: a counter per 2 KiB (four rows of them: 4 MiB of
        counters for 256 MiB of entries), so there are more counters than entries."""
        return cls(max(1024, max_bytes // 2048))

    def __init__(self, width: int = 1 << 14, *, sample_factor: int = 10):
        size = 1
        while size < max(64, width):
            size <<= 1
        self._mask = size - 1
        self._rows = [[0] * size for _ in range(_DEPTH)]
        self._door: set[int] = set()
        self._sample = size * sample_factor
        self._records = 0

    def _indexes(self, h: int) -> list[int]:
        mask = self._mask
        return [((h ^ seed) * 0x2545F491) >> 7 & mask for seed in _SEEDS]

    def record(self, key: Hashable) -> None:
        """Count one request for ``key``. Cost: one hash and four list updates (unrolled:
        this runs on every hit)."""
        h = hash(key)
        self._records += 1
        if self._records >= self._sample:
            self._age()
        if h not in self._door:
            self._door.add(h)
            return
        mask = self._mask
        r0, r1, r2, r3 = self._rows
        i = ((h ^ 0x9E3779B1) * 0x2545F491) >> 7 & mask
        if r0[i] < _CAP:
            r0[i] += 1
        i = ((h ^ 0x85EBCA77) * 0x2545F491) >> 7 & mask
        if r1[i] < _CAP:
            r1[i] += 1
        i = ((h ^ 0xC2B2AE3D) * 0x2545F491) >> 7 & mask
        if r2[i] < _CAP:
            r2[i] += 1
        i = ((h ^ 0x27D4EB2F) * 0x2545F491) >> 7 & mask
        if r3[i] < _CAP:
            r3[i] += 1

    def estimate(self, key: Hashable) -> int:
        h = hash(key)
        base = min(row[index] for row, index in zip(self._rows, self._indexes(h), strict=True))
        return base + (1 if h in self._door else 0)

    def admit(self, candidate: Hashable, victims: Iterable[Hashable]) -> bool:
        """Admit when the newcomer is strictly more popular than the victims together: a
        tie keeps what is already there (it has proven itself in the cache)."""
        wanted = self.estimate(candidate)
        together = 0
        for victim in victims:
            together += self.estimate(victim)
            if together >= wanted:
                return False
        return True

    def _age(self) -> None:
        # Halving keeps relative order and lets yesterday's favourites fade.
        self._records //= 2
        self._door.clear()
        for row in self._rows:
            for i, value in enumerate(row):
                if value:
                    row[i] = value >> 1
