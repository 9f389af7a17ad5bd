"""Event invalidation through real processes: bounded publish visibility, read-your-writes,
restarts (resume, serve from disk), feed gaps, and tombstones reaching every edge."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import aiohttp

from .conftest import Origin, get, publish
from .support import EdgeProcess, metric


def versions(body: bytes) -> set[str]:
    return set(json.loads(body).get("versions", {}))


async def poll_versions(http: aiohttp.ClientSession, url: str, wanted: str, timeout: float = 3.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        status, _, body = await get(http, url)
        if status == 200 and wanted in versions(body):
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"{wanted} not visible at {url} within {timeout}s")


async def origin_fetches(http: aiohttp.ClientSession, origin: Origin) -> float:
    text = (await get(http, f"{origin.url}/-/metrics", Authorization=f"Bearer {origin.admin}"))[2].decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("eghact_origin_requests_total{")
               and ('route="packument"' in line or 'route="tarball"' in line or 'route="version"' in line))


async def test_publish_visible_through_the_edge_within_a_bounded_time(
        origin: Origin, edges: list[EdgeProcess], tmp_path: Path, http: aiohttp.ClientSession) -> None:
    await publish(http, origin.url, origin.admin, "inv-bounded", "1.0.0")
    edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
    edges.append(edge)
    await get(http, f"{edge.url}/inv-bounded")
    assert (await get(http, f"{edge.url}/inv-bounded"))[1]["X-Cache"] == "HIT-MEM"
    await publish(http, origin.url, origin.admin, "inv-bounded", "1.1.0")
    assert await poll_versions(http, f"{edge.url}/inv-bounded", "1.1.0") < 1.0
    text = (await get(http, f"{edge.url}/-/metrics"))[2].decode()
    assert metric(text, "eghact_edge_invalidation_lag_seconds_count") >= 1


async def test_read_your_writes_through_the_edge(origin: Origin, edges: list[EdgeProcess], tmp_path: Path,
                                                 http: aiohttp.ClientSession) -> None:
    edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
    edges.append(edge)
    assert await publish(http, edge.url, origin.admin, "inv-ryw", "1.0.0") == 201
    await get(http, f"{edge.url}/inv-ryw")
    assert await publish(http, edge.url, origin.admin, "inv-ryw", "1.0.1") == 201
    _, _, body = await get(http, f"{edge.url}/inv-ryw")   # no wait: visible once acknowledged
    assert "1.0.1" in versions(body)


async def test_restart_resumes_the_feed_and_serves_from_disk(origin: Origin, edges: list[EdgeProcess],
                                                             tmp_path: Path, http: aiohttp.ClientSession) -> None:
    for name in ("inv-down", "inv-disk"):
        await publish(http, origin.url, origin.admin, name, "1.0.0")
    edge = EdgeProcess(origin.url, tmp_path / "edge")
    await edge.astart()
    edges.append(edge)
    cached = ["/inv-disk", "/inv-disk/-/inv-disk-1.0.0.tgz", "/inv-disk/1.0.0"]
    for path in [*cached, "/inv-down"]:
        assert (await get(http, edge.url + path))[0] == 200
    await edge.astop()
    # While the edge is down: a publish it must see after its restart.
    await publish(http, origin.url, origin.admin, "inv-down", "2.0.0")
    before = await origin_fetches(http, origin)
    await edge.astart()
    for path in cached:
        status, headers, _ = await get(http, edge.url + path)
        assert status == 200 and headers["X-Cache"] in ("HIT-DISK", "HIT-MEM"), (path, headers["X-Cache"])
    assert await origin_fetches(http, origin) == before   # zero upstream requests for cached keys
    _, headers, body = await get(http, f"{edge.url}/inv-down")
    assert "2.0.0" in versions(body) and headers["X-Cache"] == "MISS"


async def test_feed_gap_marks_everything_stale(origin: Origin, edges: list[EdgeProcess], tmp_path: Path,
                                               http: aiohttp.ClientSession) -> None:
    await publish(http, origin.url, origin.admin, "inv-gap", "1.0.0")
    edge = EdgeProcess(origin.url, tmp_path / "edge")
    await edge.astart()
    edges.append(edge)
    await get(http, f"{edge.url}/inv-gap")
    seq = json.loads((tmp_path / "edge" / "feed.seq").read_text())["seq"]
    await edge.astop()
    await publish(http, origin.url, origin.admin, "inv-gap-other", "1.0.0")
    await publish(http, origin.url, origin.admin, "inv-gap-other", "1.0.1")
    # The origin's feed no longer reaches back to the edge's seq (retention pruned it).
    db = sqlite3.connect(origin.process.data_dir / "registry.sqlite3", timeout=30)
    with db:
        db.execute("DELETE FROM changes WHERE seq <= ?", (seq + 1,))
    db.close()
    await edge.astart()
    health = json.loads((await get(http, f"{edge.url}/-/health"))[2])
    assert health["feed"]["gaps"] == 1
    status, headers, _ = await get(http, f"{edge.url}/inv-gap")
    assert status == 200 and headers["X-Cache"] == "REVALIDATED"   # not served as fresh
    assert (await get(http, f"{edge.url}/inv-gap"))[1]["X-Cache"] == "HIT-MEM"


async def test_unpublished_version_gone_from_every_edge(origin: Origin, edges: list[EdgeProcess], tmp_path: Path,
                                                        http: aiohttp.ClientSession) -> None:
    await publish(http, origin.url, origin.admin, "inv-gone", "1.0.0")
    for region in ("eu", "us"):
        edge = await EdgeProcess(origin.url, tmp_path / region, region=region).astart()
        edges.append(edge)
        for path in ("/inv-gone", "/inv-gone/-/inv-gone-1.0.0.tgz"):
            assert (await get(http, edge.url + path))[0] == 200
            assert (await get(http, edge.url + path))[1]["X-Cache"] == "HIT-MEM"
    async with http.delete(f"{origin.url}/inv-gone/-rev/1",
                           headers={"Authorization": f"Bearer {origin.admin}"}) as r:
        assert r.status == 200
    deadline = time.monotonic() + 3
    gone: set[str] = set()
    while time.monotonic() < deadline and len(gone) < 4:
        for edge in edges:
            for path in ("/inv-gone", "/inv-gone/-/inv-gone-1.0.0.tgz"):
                status, _, body = await get(http, edge.url + path)
                if status == 404 or (status == 200 and path == "/inv-gone" and "1.0.0" not in versions(body)):
                    gone.add(edge.url + path)
        await asyncio.sleep(0.02)
    assert len(gone) == 4, gone
