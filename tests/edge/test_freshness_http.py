"""Freshness through the read path (RFC 9111, RFC 5861), in process: a real edge node with a
manual clock before a real upstream on 127.0.0.1 (a fake registry with short lifetimes, or a
real origin that goes away, for stale-if-error). Time is moved forward, never slept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import aiohttp

from ..conftest import LiveOrigin, start_origin
from .conftest import publish
from .inprocess import InProcessEdge
from .support import FakeRegistry


async def settled(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Wait (bounded) for background work on real sockets, such as a revalidation, to land."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def refreshed(edge: InProcessEdge, path: str) -> Callable[[], bool]:
    """Whether the entry under ``path`` was stored (or revalidated) at the clock's present."""
    key = edge.node.routes.get(path).cache_key(False)

    def check() -> bool:
        entry = edge.node.memory.peek(key)
        return entry is not None and entry.timing.stored_at == edge.clock.now

    return check


async def test_stale_while_revalidate(tmp_path: Path) -> None:
    fake = await FakeRegistry(packages={"swr": {"1.0.0": b"t"}},
                              cache_control={"packument": "public, max-age=1, stale-while-revalidate=60",
                                             "tarball": "public, max-age=1"}).start()
    edge = InProcessEdge(fake.url, tmp_path / "edge")
    try:
        assert (await edge.get("/swr")).headers["X-Cache"] == "MISS"
        edge.clock.advance(1.2)
        answer = await edge.get("/swr")
        assert answer.status == 200 and answer.headers["X-Cache"] == "STALE"   # served at once, stale
        assert await settled(refreshed(edge, "/swr"))                         # one background revalidation
        assert fake.conditional["/swr"] == 1
        assert (await edge.get("/swr")).headers["X-Cache"] == "HIT-MEM"
        assert fake.requests["/swr"] == 2
        edge.clock.advance(62)   # beyond stale-while-revalidate: revalidated before it is served
        assert (await edge.get("/swr")).headers["X-Cache"] == "REVALIDATED"
        assert fake.requests["/swr"] == 3
    finally:
        await edge.close()
        await fake.stop()


async def test_revalidation_with_304(tmp_path: Path) -> None:
    fake = await FakeRegistry(packages={"cond": {"1.0.0": b"t"}},
                              cache_control={"packument": "public, max-age=1", "tarball": "public, max-age=1"}).start()
    edge = InProcessEdge(fake.url, tmp_path / "edge")
    try:
        first = await edge.get("/cond")
        edge.clock.advance(0.9)
        assert (await edge.get("/cond")).headers["X-Cache"] == "HIT-MEM"
        edge.clock.advance(0.3)
        again = await edge.get("/cond")
        assert again.status == 200 and again.headers["X-Cache"] == "REVALIDATED" and again.body == first.body
        assert fake.not_modified["/cond"] == 1   # a 304: no body crossed the wire
        assert (await edge.get("/cond")).headers["X-Cache"] == "HIT-MEM"
    finally:
        await edge.close()
        await fake.stop()


async def test_stale_if_error_with_the_origin_gone(tmp_path: Path) -> None:
    """A real origin's caching headers (packument, version, tarball, dist-tags) with
    ``--max-ttl 1``; then the origin goes away and every stored answer is served stale."""
    runner, url = await start_origin(tmp_path / "origin")
    edge = InProcessEdge(url, tmp_path / "edge", max_ttl=1.0)
    try:
        async with aiohttp.ClientSession() as http:
            origin = LiveOrigin(url, runner.app, tmp_path / "origin", http)
            admin = origin.token("admin")
            for name in ("sie-a", "sie-b"):
                assert await publish(http, url, admin, name, "1.0.0") == 201
        paths = ["/sie-a", "/sie-b", "/sie-a/-/sie-a-1.0.0.tgz", "/-/package/sie-b/dist-tags", "/sie-a/1.0.0"]
        originals = {}
        for path in paths:
            answer = await edge.get(path)
            assert answer.status == 200, path
            originals[path] = answer.body
        await runner.cleanup()   # the origin is gone: its port refuses connections
        edge.clock.advance(1.3)
        for path in paths:
            answer = await edge.get(path)
            assert answer.status == 200 and answer.body == originals[path], path
            expected = "HIT-MEM" if path.endswith(".tgz") else "STALE"  # an immutable tarball never goes stale
            assert answer.headers["X-Cache"] == expected, (path, answer.headers["X-Cache"])
        never = await edge.get("/never-cached")
        assert never.status == 503 and json.loads(never.body)["error"] == "upstream_unavailable"
        health = edge.node.health_summary()
        assert health["status"] == "degraded" and health["upstream"]["state"] == "down"
    finally:
        await edge.close()
        await runner.cleanup()


async def test_an_upstream_without_cache_headers_is_cached(tmp_path: Path) -> None:
    """Some npm registries and proxies send no Cache-Control, Expires or ETag: the edge still
    answers the second request from its cache (a verified tarball as immutable, a packument
    for --default-ttl), and still never stores what was fetched with credentials."""
    fake = await FakeRegistry(packages={"bare": {"1.0.0": b"bare tarball"}, "secret": {"1.0.0": b"s"}},
                              cache_control={}, etags=False).start()
    edge = InProcessEdge(fake.url, tmp_path / "edge", default_ttl=1.0)
    try:
        tgz = "/bare/-/bare-1.0.0.tgz"
        for path in ("/bare", tgz):
            answer = await edge.get(path)
            assert answer.status == 200 and answer.headers["X-Cache"] == "MISS", path
        for path in ("/bare", tgz):
            answer = await edge.get(path)
            assert answer.status == 200 and answer.headers["X-Cache"] == "HIT-MEM", (path, answer.headers["X-Cache"])
        assert fake.requests["/bare"] == 1 and fake.requests[tgz] == 1
        assert edge.node.health_summary()["freshness"]["default_ttl"] == 1.0

        edge.clock.advance(1.2)   # past --default-ttl: the packument expires, the tarball never does
        answer = await edge.get("/bare")
        assert answer.status == 200 and answer.headers["X-Cache"] == "MISS" and fake.requests["/bare"] == 2
        assert (await edge.get(tgz)).headers["X-Cache"] == "HIT-MEM" and fake.requests[tgz] == 1

        for _ in range(2):   # credentials: passed on each time, and nothing kept for anyone else
            answer = await edge.get("/secret", Authorization="Bearer someone")
            assert answer.status == 200 and answer.headers["X-Cache"] == "MISS"
        assert (await edge.get("/secret")).headers["X-Cache"] == "MISS"
        assert fake.requests["/secret"] == 3
    finally:
        await edge.close()
        await fake.stop()
