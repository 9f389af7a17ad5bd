"""The read path through a real edge process in front of a real origin process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from .conftest import Origin, get, publish
from .support import EdgeProcess, metric

ABBREVIATED = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


async def raw_get(url: str, raw_target: bytes, headers: bytes = b"") -> tuple[int, bytes]:
    """Send exactly these bytes as the request target (npm's %2f, untouched by any client)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET " + raw_target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n")
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, _body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), head


async def test_miss_then_hit_and_urls_rewritten(origin: Origin, edges: list[EdgeProcess], tmp_path: Path,
                                                http: aiohttp.ClientSession) -> None:
    assert await publish(http, origin.url, origin.admin, "rp-plain", "1.0.0") == 201
    edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
    edges.append(edge)
    status, headers, body = await get(http, f"{edge.url}/rp-plain")
    assert status == 200 and headers["X-Cache"] == "MISS"
    status, headers, body = await get(http, f"{edge.url}/rp-plain")
    assert headers["X-Cache"] == "HIT-MEM" and "Age" in headers
    doc = json.loads(body)
    tarball = doc["versions"]["1.0.0"]["dist"]["tarball"]
    assert tarball.startswith(edge.url + "/"), tarball
    status, headers, data = await get(http, tarball)
    assert status == 200 and headers["X-Cache"] == "MISS" and headers["Repr-Digest"].startswith("sha-512=:")
    status, headers, again = await get(http, tarball)
    assert headers["X-Cache"] == "HIT-MEM" and again == data
    # A client validator: 304 from the edge, no body.
    status, h, _ = await get(http, f"{edge.url}/rp-plain")
    status, _h304, body304 = await get(http, f"{edge.url}/rp-plain", **{"If-None-Match": h["ETag"]})
    assert status == 304 and body304 == b""


async def test_vary_accept_and_encoding(origin: Origin, edges: list[EdgeProcess], tmp_path: Path,
                                        http: aiohttp.ClientSession) -> None:
    assert await publish(http, origin.url, origin.admin, "rp-vary", "1.0.0", keywords=["k"] * 50) == 201
    edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
    edges.append(edge)
    _, full_h, full = await get(http, f"{edge.url}/rp-vary")
    _, abbr_h, abbr = await get(http, f"{edge.url}/rp-vary", Accept=ABBREVIATED)
    assert abbr_h["X-Cache"] == "MISS"  # a separate key from the full document
    assert abbr_h["Content-Type"].startswith("application/vnd.npm.install-v1+json")
    assert len(abbr) < len(full) and "Accept" in full_h["Vary"]
    _, again_h, again = await get(http, f"{edge.url}/rp-vary", Accept=ABBREVIATED)
    assert again_h["X-Cache"] == "HIT-MEM" and again == abbr
    async with http.get(f"{edge.url}/rp-vary", headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["Content-Encoding"] == "gzip" and json.loads(await r.read())["name"] == "rp-vary"
    async with http.get(f"{edge.url}/rp-vary", headers={"Accept-Encoding": "zstd, gzip;q=0.5"},
                        auto_decompress=False) as r:
        assert r.headers["Content-Encoding"] == "zstd"
    async with http.get(f"{edge.url}/rp-vary", headers={"Accept-Encoding": "identity"}) as r:
        assert "Content-Encoding" not in r.headers and await r.read() == full


async def test_scoped_spellings_are_one_key_with_npm_bytes(origin: Origin, edges: list[EdgeProcess],
                                                          tmp_path: Path, http: aiohttp.ClientSession) -> None:
    assert await publish(http, origin.url, origin.admin, "@pub/scoped", "1.0.0") == 201
    edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
    edges.append(edge)
    status, head = await raw_get(edge.url, b"/@pub%2fscoped")   # exactly what npm sends
    assert status == 200 and b"X-Cache: MISS" in head
    for target in (b"/@pub%2Fscoped", b"/@pub/scoped"):
        status, head = await raw_get(edge.url, target)
        assert status == 200 and b"X-Cache: HIT-MEM" in head, target
    status, head = await raw_get(edge.url, b"/@pub%2fscoped/-/scoped-1.0.0.tgz")
    assert status == 200
    status, head = await raw_get(edge.url, b"/@pub/scoped/-/scoped-1.0.0.tgz")
    assert status == 200 and b"X-Cache: HIT-MEM" in head
    status, _ = await raw_get(edge.url, b"/@pub%2f")
    assert status == 400


async def test_health_metrics_and_passthrough(origin: Origin, edges: list[EdgeProcess], tmp_path: Path,
                                              http: aiohttp.ClientSession) -> None:
    edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
    edges.append(edge)
    status, _, body = await get(http, f"{edge.url}/-/health")
    health = json.loads(body)
    assert status == 200 and health["role"] == "edge" and health["upstream"]["state"] == "up"
    assert health["feed"]["mode"] == "events"
    status, _, body = await get(http, f"{edge.url}/no-such-package-here")
    assert status == 404 and json.loads(body)["error"] == "not_found"
    status, _, body = await get(http, f"{edge.url}/-/whoami", Authorization=f"Bearer {origin.admin}")
    assert status == 200 and json.loads(body)["username"] == "admin"
    status, _, body = await get(http, f"{edge.url}/-/metrics")
    text = body.decode()
    assert metric(text, "eghact_edge_upstream_fetches_total", kind="feed", status="200") >= 1
    assert "eghact_edge_invalidation_lag_seconds_bucket" in text
    assert "eghact_edge_responses_total" in text
