"""The tiers: memory's synchronous API and the Tier contract of what lies behind it (disk),
byte bounds, admission by measurement, and a disk tier that survives a restart."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from eghact_edge.cache import TieredCache
from eghact_edge.entry import Entry
from eghact_edge.freshness import Timing
from eghact_edge.metrics import Reporter
from eghact_edge.tiers import AlwaysAdmit, DiskTier, MemoryTier, Tier, TinyLfu


def entry(key: str, size: int = 100, tag: str | None = None) -> Entry:
    timing = Timing(stored_at=1000.0, initial_age=0.0, lifetime=60.0, swr=0.0, sie=0.0, feed_covered=True)
    return Entry(key=key, content_type="application/json", bodies={"identity": b"x" * size}, etag='"e"',
                 upstream_etag='"u"', headers=(("Cache-Control", "public, max-age=60"),), tag=tag, timing=timing)


@pytest.fixture
async def disk(tmp_path: Path) -> AsyncIterator[DiskTier]:
    tier = DiskTier(tmp_path / "disk", 1 << 24)
    yield tier
    await tier.close()


async def test_the_tier_behind_memory_keeps_the_tier_contract(disk: DiskTier) -> None:
    tier: Tier = disk   # what TieredCache sees of it
    assert await tier.get("/a") is None
    tier.put_later(entry("/a", tag="pkg:a"))
    tier.put_later(entry("/a2", tag="pkg:a"))
    tier.put_later(entry("/b", tag="pkg:b"))
    tier.put_later(entry("/c", size=10, tag="t1"))
    tier.put_later(entry("/c", size=20, tag="t2"))   # replaces, with its tag
    assert await tier.purge("pkg:a") == 2            # applied after the stores queued before it
    assert await tier.get("/a") is None and await tier.get("/a2") is None
    got = await tier.get("/b")
    assert got is not None and got.bodies["identity"] == b"x" * 100 and got.tag == "pkg:b"
    assert await tier.purge("pkg:none") == 0
    assert await tier.purge("t1") == 0
    got = await tier.get("/c")
    assert got is not None and len(got.bodies["identity"]) == 20
    assert await tier.remove("/c") and not await tier.remove("/c")
    assert await tier.get("/c") is None


def test_memory_looks_up_peeks_stores_and_purges() -> None:
    memory = MemoryTier(1 << 20)
    assert memory.lookup("/a") is None and memory.peek("/a") is None
    assert memory.store(entry("/a", tag="pkg:a")) and memory.store(entry("/a2", tag="pkg:a"))
    assert memory.store(entry("/b", tag="pkg:b"))
    got = memory.lookup("/a")
    assert got is not None and got.bodies["identity"] == b"x" * 100 and got.tag == "pkg:a"
    assert memory.peek("/a") is got
    assert [e.key for e in memory.purge_tag("pkg:a")] in (["/a", "/a2"], ["/a2", "/a"])
    assert memory.peek("/a") is None and memory.peek("/a2") is None and memory.peek("/b") is not None
    assert memory.purge_tag("pkg:none") == []
    memory.store(entry("/c", size=10, tag="t1"))
    memory.store(entry("/c", size=20, tag="t2"))     # replaces, and is purged by its new tag only
    assert memory.purge_tag("t1") == [] and len(memory.purge_tag("t2")) == 1


def test_only_a_look_up_counts_for_admission_and_recency() -> None:
    sketch = TinyLfu(1024)
    memory = MemoryTier(3 * (100 + 512), admission=sketch)
    for key in ("/a", "/b", "/c"):
        memory.store(entry(key))
    memory.peek("/a")
    assert sketch.estimate("/a") == 0
    memory.lookup("/a")
    assert sketch.estimate("/a") == 1
    # /a was looked up, /b only peeked: /b is the least recently used, the victim a newcomer
    # asked for more often than it would replace.
    memory.peek("/b")
    for _ in range(3):
        memory.lookup("/new")
    assert memory.store(entry("/new"))
    assert memory.peek("/b") is None and memory.peek("/a") is not None


def test_memory_is_bounded_in_bytes() -> None:
    evicted: list[Entry] = []
    memory = MemoryTier(10_000, admission=AlwaysAdmit(), on_evict=evicted.append)
    for i in range(100):
        memory.store(entry(f"/k{i}", size=500))
    assert memory.bytes <= 10_000
    assert len(memory) == 10_000 // (500 + 512)
    assert evicted
    assert not memory.store(entry("/huge", size=20_000))


def test_entry_round_trips_through_bytes() -> None:
    original = entry("/a", tag="pkg:a")
    original.bodies["gzip"] = b"gz"
    copy = Entry.from_bytes(original.to_bytes())
    assert copy.bodies == original.bodies and copy.timing == original.timing and copy.headers == original.headers
    with pytest.raises(ValueError):
        Entry.from_bytes(b"nope" + original.to_bytes()[4:])


async def test_disk_survives_a_restart(tmp_path: Path) -> None:
    disk = DiskTier(tmp_path / "d", 1 << 24)
    await disk.put(entry("/a", tag="pkg:a"))
    await disk.close()
    again = DiskTier(tmp_path / "d", 1 << 24)
    try:
        got = await again.get("/a")
        assert got is not None and got.tag == "pkg:a"
        assert await again.purge("pkg:a") == 1
    finally:
        await again.close()


def zipf_trace(n_keys: int, length: int, alpha: float, seed: int) -> list[int]:
    rng = random.Random(seed)
    weights = [1 / (rank ** alpha) for rank in range(1, n_keys + 1)]
    keys = list(range(n_keys))
    rng.shuffle(keys)
    return rng.choices(keys, weights=weights, k=length)


def hit_ratio(memory: MemoryTier, trace: list[int], size: int = 500) -> float:
    hits = 0
    for k in trace:
        key = f"/k{k}"
        if memory.lookup(key) is not None:
            hits += 1
        else:
            memory.store(entry(key, size=size))
    return hits / len(trace)


def test_tinylfu_beats_lru_on_a_zipf_trace() -> None:
    # 10% of the corpus fits; the benchmark measures the same against Belady's optimum.
    trace = zipf_trace(5000, 60_000, 0.8, seed=3)
    capacity = 500 * (500 + 512)
    lru = hit_ratio(MemoryTier(capacity, admission=AlwaysAdmit()), trace)
    lfu = hit_ratio(MemoryTier(capacity, admission=TinyLfu(500)), trace)
    assert lfu >= lru + 0.03, (lru, lfu)


def test_a_newcomer_must_outweigh_everything_it_would_push_out() -> None:
    memory = MemoryTier(4 * (100 + 512), admission=TinyLfu(1024))
    for key in ("/a", "/b", "/c", "/d"):
        memory.store(entry(key))
        memory.lookup(key)
        memory.lookup(key)   # each asked for twice
    for _ in range(3):
        memory.lookup("/big")
    # /big needs the room of two entries: asked for 3 times, against 2 + 2.
    assert not memory.store(entry("/big", size=100 + 612))
    for _ in range(2):
        memory.lookup("/big")
    assert memory.store(entry("/big", size=100 + 612))   # 5 > 4
    # The refusal gave the oldest (/a) a second chance: /b and /c made the room.
    assert [memory.peek(key) is not None for key in ("/a", "/b", "/c", "/d")] == [True, False, False, True]


async def test_disk_writes_keep_their_order_and_evictions_are_counted(tmp_path: Path) -> None:
    evicted: list[int] = []
    disk = DiskTier(tmp_path / "d", 400_000, on_evict=evicted.append)
    try:
        # Queued together (one batch): the purge is applied after the store it follows.
        await asyncio.gather(disk.put(entry("/a", tag="pkg:a")), disk.purge("pkg:a"), disk.put(entry("/b")))
        assert await disk.get("/a") is None and await disk.get("/b") is not None
        # Past the byte limit the oldest stores go, and every one is counted.
        await asyncio.gather(*(disk.put(entry(f"/big{i}", size=40_000)) for i in range(30)))
        assert sum(evicted) > 0
        kept = [i for i in range(30) if await disk.get(f"/big{i}") is not None]
        assert await asyncio.to_thread(disk.volume) <= 400_000 * 1.1
        assert len(kept) + sum(evicted) == 31 and kept == list(range(30 - len(kept), 30))
    finally:
        await disk.close()


async def test_held_stores_wait_for_release_but_a_waited_write_flushes_them_in_order(tmp_path: Path) -> None:
    disk = DiskTier(tmp_path / "d", 1 << 24)
    try:
        disk.hold()
        disk.put_later(entry("/held", tag="pkg:held"))
        disk.put_later(entry("/kept"))
        await asyncio.sleep(0.05)
        assert await disk.get("/held") is None          # held back
        assert await disk.purge("pkg:held") == 1        # flushed first, then purged
        assert await disk.get("/held") is None and await disk.get("/kept") is not None
        disk.put_later(entry("/late"))
        disk.release()
        for _ in range(100):
            if await disk.get("/late") is not None:
                break
            await asyncio.sleep(0.01)
        assert await disk.get("/late") is not None
        disk.hold()
        disk.put_later(entry("/at-close"))
    finally:
        await disk.close()
    again = DiskTier(tmp_path / "d", 1 << 24)
    try:
        assert await again.get("/at-close") is not None   # close applies what was held
    finally:
        await again.close()


async def test_a_purge_counts_against_an_answer_only_if_the_answer_predates_its_event() -> None:
    # An answer stating the seq it reflects is stored after a purge by an event at or before
    # that seq (it holds that change already: a pull the read itself caused), never after a
    # later event's purge or a purge of no event (a write's own).
    cache = TieredCache(MemoryTier(1 << 20), None, reporter=Reporter(), clock=lambda: 0.0)
    before = cache.generation()
    await cache.purge(["pkg:a"], {"pkg:a": 7})
    assert not cache.purged_since(before, "pkg:a", 7) and not cache.purged_since(before, "pkg:a", 9)
    assert cache.purged_since(before, "pkg:a", 6) and cache.purged_since(before, "pkg:a")
    assert not cache.purged_since(cache.generation(), "pkg:a", 1)  # nothing purged since then
    await cache.purge(["pkg:a"])
    assert cache.purged_since(before, "pkg:a", 1_000_000)
