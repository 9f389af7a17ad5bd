"""Safety: integrity before caching, rate limits, size limits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from .conftest import get
from .support import EdgeProcess, FakeRegistry


async def test_tampered_tarball_is_neither_cached_nor_served(tmp_path: Path, edges: list[EdgeProcess],
                                                            http: aiohttp.ClientSession) -> None:
    fake = await FakeRegistry(packages={"evil": {"1.0.0": b"good bytes"}, "fine": {"1.0.0": b"fine bytes"}},
                              tamper={"evil"}).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge").astart()
        edges.append(edge)
        for _ in range(2):
            status, _, body = await get(http, f"{edge.url}/evil/-/evil-1.0.0.tgz")
            assert status == 502
            error = json.loads(body)
            assert error["error"] == "upstream_integrity_mismatch" and "message" in error
        assert fake.requests["/evil/-/evil-1.0.0.tgz"] == 2   # not cached: asked again
        status, _headers, body = await get(http, f"{edge.url}/fine/-/fine-1.0.0.tgz")
        assert status == 200 and body == b"fine bytes"
        assert (await get(http, f"{edge.url}/fine/-/fine-1.0.0.tgz"))[1]["X-Cache"] == "HIT-MEM"
        text = (await get(http, f"{edge.url}/-/metrics"))[2].decode()
        assert "eghact_edge_integrity_failures_total 2.0" in text
    finally:
        await fake.stop()


async def test_tampered_tarball_with_matching_headers_is_still_refused(tmp_path: Path, edges: list[EdgeProcess],
                                                                      http: aiohttp.ClientSession) -> None:
    # The upstream's own integrity header matches what it sends; the packument says otherwise.
    fake = await FakeRegistry(packages={"liar": {"1.0.0": b"real"}}, tamper={"liar"}).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge").astart()
        edges.append(edge)
        status, _, _ = await get(http, f"{edge.url}/liar/-/liar-1.0.0.tgz")
        assert status == 502
    finally:
        await fake.stop()


async def test_rate_limit_and_size_limits(tmp_path: Path, edges: list[EdgeProcess],
                                          http: aiohttp.ClientSession) -> None:
    fake = await FakeRegistry(packages={"p": {"1.0.0": b"x"}}).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge",
                                 args=("--rate", "5", "--burst", "5", "--max-request-bytes", "1000")).astart()
        edges.append(edge)
        results = await asyncio.gather(*(get(http, f"{edge.url}/p") for _ in range(12)))
        limited = [r for r in results if r[0] == 429]
        assert limited and all(int(r[1]["Retry-After"]) >= 1 for r in limited)
        assert json.loads(limited[0][2])["error"] == "rate_limited"
        await asyncio.sleep(1.2)
        async with http.put(f"{edge.url}/p", data=b"x" * 5000) as r:
            assert r.status == 413 and (await r.json())["error"] == "payload_too_large"
        await asyncio.sleep(0.5)
        async with http.get(f"{edge.url}/p", headers={"X-Big": "y" * 20_000}) as r:
            assert r.status in (400, 431)
    finally:
        await fake.stop()
