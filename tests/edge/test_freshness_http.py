"""Freshness against real processes: stale-while-revalidate and 304 revalidation (fake
upstream with short lifetimes), stale-if-error with the origin process killed."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp

from .conftest import get, make_origin, publish
from .support import EdgeProcess, FakeRegistry


async def wait_for(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_stale_while_revalidate(tmp_path: Path, edges: list[EdgeProcess], http: aiohttp.ClientSession) -> None:
    fake = await FakeRegistry(packages={"swr": {"1.0.0": b"t"}},
                              cache_control={"packument": "public, max-age=1, stale-while-revalidate=60",
                                             "tarball": "public, max-age=1"}).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge").astart()
        edges.append(edge)
        assert (await get(http, f"{edge.url}/swr"))[1]["X-Cache"] == "MISS"
        await asyncio.sleep(1.2)
        status, headers, _ = await get(http, f"{edge.url}/swr")
        assert status == 200 and headers["X-Cache"] == "STALE"   # served at once, stale
        async def revalidated() -> bool:
            return fake.conditional["/swr"] >= 1
        assert await wait_for(revalidated)                        # one background revalidation
        await asyncio.sleep(0.1)
        assert (await get(http, f"{edge.url}/swr"))[1]["X-Cache"] == "HIT-MEM"
        assert fake.requests["/swr"] == 2
    finally:
        await fake.stop()


async def test_revalidation_with_304(tmp_path: Path, edges: list[EdgeProcess], http: aiohttp.ClientSession) -> None:
    fake = await FakeRegistry(packages={"cond": {"1.0.0": b"t"}},
                              cache_control={"packument": "public, max-age=1", "tarball": "public, max-age=1"}).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge").astart()
        edges.append(edge)
        _, _, first = await get(http, f"{edge.url}/cond")
        await asyncio.sleep(1.2)
        status, headers, body = await get(http, f"{edge.url}/cond")
        assert status == 200 and headers["X-Cache"] == "REVALIDATED" and body == first
        assert fake.not_modified["/cond"] == 1   # a 304: no body crossed the wire
        assert (await get(http, f"{edge.url}/cond"))[1]["X-Cache"] == "HIT-MEM"
    finally:
        await fake.stop()


async def test_stale_if_error_with_the_origin_killed(tmp_path: Path, edges: list[EdgeProcess],
                                                     http: aiohttp.ClientSession) -> None:
    origin = make_origin(tmp_path)
    try:
        for name in ("sie-a", "sie-b"):
            assert await publish(http, origin.url, origin.admin, name, "1.0.0") == 201
        edge = await EdgeProcess(origin.url, tmp_path / "edge", args=("--max-ttl", "1")).astart()
        edges.append(edge)
        paths = ["/sie-a", "/sie-b", "/sie-a/-/sie-a-1.0.0.tgz", "/-/package/sie-b/dist-tags", "/sie-a/1.0.0"]
        originals = {}
        for path in paths:
            status, _, body = await get(http, edge.url + path)
            assert status == 200, path
            originals[path] = body
    finally:
        origin.process.stop(signal.SIGKILL)
    await asyncio.sleep(1.3)
    for path in paths:
        status, headers, body = await get(http, edge.url + path)
        assert status == 200 and body == originals[path], path
        expected = "HIT-MEM" if path.endswith(".tgz") else "STALE"  # an immutable tarball never goes stale
        assert headers["X-Cache"] == expected, (path, headers["X-Cache"])
    status, _, body = await get(http, f"{edge.url}/never-cached")
    assert status == 503 and json.loads(body)["error"] == "upstream_unavailable"
    health = json.loads((await get(http, f"{edge.url}/-/health"))[2])
    assert health["status"] == "degraded" and health["upstream"]["state"] == "down"


async def test_an_upstream_without_cache_headers_is_cached(tmp_path: Path, edges: list[EdgeProcess],
                                                           http: aiohttp.ClientSession) -> None:
    """Some npm registries and proxies send no Cache-Control, Expires or ETag: the edge still
    answers the second request from its cache (a verified tarball as immutable, a packument
    for --default-ttl), and still never stores what was fetched with credentials."""
    fake = await FakeRegistry(packages={"bare": {"1.0.0": b"bare tarball"}, "secret": {"1.0.0": b"s"}},
                              cache_control={}, etags=False).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge", args=("--default-ttl", "1", "--no-warm")).astart()
        edges.append(edge)
        tgz = "/bare/-/bare-1.0.0.tgz"
        for path in ("/bare", tgz):
            status, headers, _ = await get(http, edge.url + path)
            assert status == 200 and headers["X-Cache"] == "MISS", path
        for path in ("/bare", tgz):
            status, headers, _ = await get(http, edge.url + path)
            assert status == 200 and headers["X-Cache"] == "HIT-MEM", (path, headers["X-Cache"])
        assert fake.requests["/bare"] == 1 and fake.requests[tgz] == 1
        health = json.loads((await get(http, f"{edge.url}/-/health"))[2])
        assert health["freshness"]["default_ttl"] == 1.0

        await asyncio.sleep(1.2)   # past --default-ttl: the packument expires, the tarball never does
        status, headers, _ = await get(http, f"{edge.url}/bare")
        assert status == 200 and headers["X-Cache"] == "MISS" and fake.requests["/bare"] == 2
        assert (await get(http, edge.url + tgz))[1]["X-Cache"] == "HIT-MEM" and fake.requests[tgz] == 1

        for _ in range(2):   # credentials: passed on each time, and nothing kept for anyone else
            status, headers, _ = await get(http, f"{edge.url}/secret", Authorization="Bearer someone")
            assert status == 200 and headers["X-Cache"] == "MISS"
        assert (await get(http, f"{edge.url}/secret"))[1]["X-Cache"] == "MISS"
        assert fake.requests["/secret"] == 3
    finally:
        await fake.stop()
