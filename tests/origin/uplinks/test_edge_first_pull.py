"""An edge in front of an origin that pulls through its uplink keeps what it fetched: the pull
the edge's own read caused is a change event the answer already reflects."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ...edge.support import EdgeProcess
from .support import doc, fetch, uplinked


async def test_an_edge_keeps_a_first_pull_its_own_request_caused(tmp_path: Path) -> None:
    # The first read of a name pulls it, and the pull's `uplink` event reaches the edge's feed a
    # moment after the edge stored the answer, which already reflects that event: purging it
    # made every first pull a miss again at the next read (seen as 77 of 366 misses in a second
    # real npm install through an edge).
    async with uplinked(tmp_path) as (upstream, proxy, subject):
        await upstream.publish("first-pull", "1.0.0")
        edge = await EdgeProcess(subject.url, tmp_path / "edge").astart()
        try:
            status, _, headers = await fetch(f"{edge.url}/first-pull")
            assert status == 200 and headers["X-Cache"] == "MISS"
            seq = int(headers["Eghact-Seq"])
            for _ in range(50):  # bounded: until the edge has applied the pull's event
                _, health = await doc(f"{edge.url}/-/health")
                if health["feed"]["seq"] >= seq:
                    break
                await asyncio.sleep(0.1)
            assert health["feed"]["seq"] >= seq
            await asyncio.sleep(0.3)  # the disk tier's queued write and purge land in order
            again = (await fetch(f"{edge.url}/first-pull"))[2]["X-Cache"]
            assert again.startswith("HIT"), again
            # One upstream request for the packument: neither a miss nor a hot refetch after a purge.
            assert await _edge_packument_fetches(edge.url) == 1
            assert proxy.count("/first-pull") == 1
        finally:
            await edge.astop()


async def _edge_packument_fetches(edge_url: str) -> float:
    _, metrics, _ = await fetch(f"{edge_url}/-/metrics")
    return sum(sample.value for family in text_string_to_metric_families(metrics.decode())
               if family.name == "eghact_edge_upstream_fetches" for sample in family.samples
               if sample.name.endswith("_total") and sample.labels.get("kind") == "packument")
