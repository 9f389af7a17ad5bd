"""The read path in process (a real EdgeNode before a real upstream on 127.0.0.1, a manual
clock): a request is looked up and counted for admission once, a purge overtakes what a
look-up saw, and a tarball's integrity comes from the builder's one index."""

from __future__ import annotations

from pathlib import Path

from eghact_edge.cache import TieredCache
from eghact_edge.entry import Entry
from eghact_edge.entry_builder import IntegrityIndex
from eghact_edge.freshness import Timing
from eghact_edge.metrics import Reporter
from eghact_edge.tiers import MemoryTier, TinyLfu

from .inprocess import InProcessEdge, ManualClock
from .support import FakeRegistry, sri


async def test_one_miss_gives_an_estimate_of_1(tmp_path: Path) -> None:
    """Before, the front's look-up and the read-through's each counted the request, so a key
    asked for once passed TinyLFU's admission as if asked for twice."""
    fake = await FakeRegistry(packages={"once": {"1.0.0": b"t"}},
                              cache_control={"packument": "public, max-age=60"}).start()
    edge = InProcessEdge(fake.url, tmp_path / "edge")
    try:
        sketch = edge.node.memory.admission
        assert isinstance(sketch, TinyLfu)
        key = edge.node.routes.get("/once").cache_key(False)
        assert (await edge.get("/once")).headers["X-Cache"] == "MISS"
        assert sketch.estimate(key) == 1
        assert (await edge.get("/once")).headers["X-Cache"] == "HIT-MEM"
        assert sketch.estimate(key) == 2
        edge.clock.advance(61)   # stale: past the front's fast path, into the read-through
        assert (await edge.get("/once")).headers["X-Cache"] == "REVALIDATED"
        assert sketch.estimate(key) == 3
        # Credentials skip the fast path; the request still counts once.
        assert (await edge.get("/once", Authorization="Bearer someone")).status == 200
        assert sketch.estimate(key) == 4
        assert fake.requests["/once"] == 2   # the fill and the 304: "public" answers credentialed reads too
    finally:
        await edge.close()
        await fake.stop()


def _entry(key: str, tag: str) -> Entry:
    timing = Timing(stored_at=1000.0, initial_age=0.0, lifetime=60.0, swr=0.0, sie=0.0, feed_covered=True)
    return Entry(key=key, content_type="application/json", bodies={"identity": b"{}"}, etag='"e"',
                 upstream_etag='"u"', headers=(), tag=tag, timing=timing)


async def test_what_a_look_up_saw_is_not_served_after_a_purge_of_it() -> None:
    """The front's look-up and the read-through's use of it are an event-loop turn apart: an
    event purging the key in between must win (DESIGN §6, invariant 2)."""
    memory = MemoryTier(1 << 20)
    cache = TieredCache(memory, None, reporter=Reporter(), clock=ManualClock())
    memory.store(_entry("/a", "pkg:a"))
    memory.store(_entry("/b", "pkg:b"))
    seen_a, seen_b = cache.seen("/a"), cache.seen("/b")
    assert seen_a.entry is not None and seen_b.entry is not None
    cache.purge_memory(["pkg:a"])
    assert await cache.lookup("/a", seen_a) == (None, "")
    assert await cache.lookup("/b", seen_b) == (seen_b.entry, "HIT-MEM")   # another tag's purge: still good
    # A look-up that found nothing peeks again: a fill that landed since is a hit.
    missed = cache.seen("/c")
    memory.store(_entry("/c", "pkg:c"))
    found, tier = await cache.lookup("/c", missed)
    assert found is not None and tier == "HIT-MEM"
    newer = _entry("/b", "pkg:b")
    memory.store(newer)
    assert (await cache.lookup("/b", seen_b))[0] is seen_b.entry   # no purge: what was seen stands
    cache.mark_all_stale(2000.0)   # a feed gap: no earlier look-up is trusted, memory is read again
    assert (await cache.lookup("/b", seen_b))[0] is newer


async def test_a_tarball_is_checked_against_the_one_integrity_index(tmp_path: Path) -> None:
    data = b"tarball bytes"
    fake = await FakeRegistry(packages={"ix": {"1.0.0": data}, "far": {"2.0.0": b"far"}}).start()
    edge = InProcessEdge(fake.url, tmp_path / "edge")
    try:
        assert (await edge.get("/ix")).status == 200
        tarball = await edge.get("/ix/-/ix-1.0.0.tgz")
        assert (tarball.status, tarball.body) == (200, data)
        assert fake.requests["/ix"] == 1   # the packument's one parse fed the index
        # A new index (as after the old one dropped the name) learns from the packument in
        # memory first, and asks the upstream only for what memory does not hold.
        index = IntegrityIndex(edge.node.memory, edge.node.upstream)
        assert await index.expected("ix", "ix-1.0.0.tgz") == sri(data)
        assert fake.requests["/ix"] == 1
        assert await index.expected("far", "far-2.0.0.tgz") == sri(b"far")
        assert fake.requests["/far"] == 1
        assert await index.expected("far", "far-9.9.9.tgz") is None
        assert await IntegrityIndex().expected("ix", "ix-1.0.0.tgz") is None   # nothing to read: nothing known
        fake.tamper.add("far")
        refused = await edge.get("/far/-/far-2.0.0.tgz")
        assert refused.status == 502 and b"upstream_integrity_mismatch" in refused.body
        assert edge.node.memory.peek(edge.node.routes.get("/far/-/far-2.0.0.tgz").cache_key(False)) is None
    finally:
        await edge.close()
        await fake.stop()
