"""Tiering: an edge behind another edge (a shield) keeps every rule, and an edge in front
of a plain npm registry without a changes feed falls back to time-based freshness."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from .conftest import Origin, get, publish
from .inprocess import PUBLIC_URL, InProcessEdge
from .support import EdgeProcess, FakeRegistry, metric


async def test_child_behind_parent_edge(origin: Origin, edges: list[EdgeProcess], tmp_path: Path,
                                        http: aiohttp.ClientSession) -> None:
    await publish(http, origin.url, origin.admin, "tier-chain", "1.0.0")
    parent = await EdgeProcess(origin.url, tmp_path / "parent", region="shield").astart()
    edges.append(parent)
    child = await EdgeProcess(origin.url, tmp_path / "child", region="leaf",
                              args=("--parent", parent.url)).astart()
    edges.append(child)
    status, headers, body = await get(http, f"{child.url}/tier-chain")
    assert status == 200 and headers["X-Cache"] == "MISS"
    tarball = json.loads(body)["versions"]["1.0.0"]["dist"]["tarball"]
    assert tarball.startswith(child.url + "/")
    assert (await get(http, f"{parent.url}/tier-chain"))[1]["X-Cache"] == "HIT-MEM"   # filled on the way
    status, headers, _ = await get(http, tarball)
    assert status == 200
    # Invalidation reaches the child through the chain, and the child's refill is fresh.
    await publish(http, origin.url, origin.admin, "tier-chain", "1.1.0")
    for _ in range(150):
        _, _, body = await get(http, f"{child.url}/tier-chain")
        if "1.1.0" in json.loads(body)["versions"]:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the publish never reached the child edge")
    child_health = json.loads((await get(http, f"{child.url}/-/health"))[2])
    assert child_health["feed"]["mode"] == "events" and child_health["upstream"]["url"] == parent.url


async def test_plain_registry_without_feed_uses_time_based_freshness(tmp_path: Path) -> None:
    fake = await FakeRegistry(packages={"plain": {"1.0.0": b"plain bytes"}, "@s/n": {"2.0.0": b"scoped"}},
                              cache_control={"packument": "public, max-age=1",
                                             "tarball": "public, max-age=31536000, immutable"}).start()
    edge = InProcessEdge(fake.url, tmp_path / "edge")   # in process, with a manual clock
    try:
        await edge.start()
        assert edge.node.health_summary()["feed"]["mode"] == "time"
        tarball = json.loads((await edge.get("/plain")).body)["versions"]["1.0.0"]["dist"]["tarball"]
        assert tarball == f"{PUBLIC_URL}/plain/-/plain-1.0.0.tgz"
        assert (await edge.get(tarball.removeprefix(PUBLIC_URL))).body == b"plain bytes"
        assert (await edge.get("/plain")).headers["X-Cache"] == "HIT-MEM"
        edge.clock.advance(1.2)
        assert (await edge.get("/plain")).headers["X-Cache"] == "REVALIDATED"  # headers alone decide
        answer = await edge.get("/@s%2fn")
        assert answer.status == 200 and json.loads(answer.body)["name"] == "@s/n"
    finally:
        await edge.close()
        await fake.stop()


async def test_child_edge_warms_in_batches_through_its_parent(origin: Origin, edges: list[EdgeProcess],
                                                              tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """The start-up warm of an edge behind a shield: the popular list and the batch read both
    pass through the parent, and the child's first request is a hit without a single per-key
    fetch (a parent that refused the batch would send the child back to single reads)."""
    await publish(http, origin.url, origin.admin, "tier-warm", "1.0.0")
    auth = {"Authorization": f"Bearer {origin.edge_token}"}
    # Counts are taken only for an edge id the token registered.
    async with http.post(f"{origin.url}/-/v1/edges", json={"id": "scout", "region": "shield",
                                                           "url": "http://127.0.0.1:9"}, headers=auth) as response:
        assert response.status == 200, await response.text()
    async with http.post(f"{origin.url}/-/v1/stats", json={"edge": "scout", "hits": {"/tier-warm#f": 9}},
                         headers=auth) as response:
        assert response.status in (200, 202, 204), await response.text()
    token = ("--token", origin.edge_token)
    parent = await EdgeProcess(origin.url, tmp_path / "parent", region="shield", args=token).astart()
    edges.append(parent)
    child = await EdgeProcess(origin.url, tmp_path / "child", region="leaf",
                              args=("--parent", parent.url, *token)).astart()
    edges.append(child)
    for edge in (parent, child):
        for _ in range(150):
            if json.loads((await get(http, f"{edge.url}/-/health"))[2])["warming"]["done"] >= 1:
                break
            await asyncio.sleep(0.02)
    status, headers, body = await get(http, f"{child.url}/tier-warm")
    assert (status, headers["X-Cache"]) == (200, "HIT-MEM")
    assert json.loads(body)["versions"]["1.0.0"]["dist"]["tarball"].startswith(child.url + "/")
    exposition = (await get(http, f"{child.url}/-/metrics"))[2].decode()
    assert metric(exposition, "eghact_edge_upstream_fetches_total", kind="batch", status="200") >= 1
    assert metric(exposition, "eghact_edge_upstream_fetches_total", kind="packument", status="200") == 0
