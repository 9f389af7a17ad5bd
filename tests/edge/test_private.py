"""Private content never reaches another principal through any tier (DESIGN §6.3).

The rule: a response marked private (or no-store) is never stored in a shared tier, and a
request with credentials is answered from the shared cache only with a public response."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from .conftest import Origin, get, publish
from .support import EdgeProcess


async def test_private_package_never_served_to_anonymous(origin: Origin, edges: list[EdgeProcess], tmp_path: Path,
                                                         http: aiohttp.ClientSession) -> None:
    assert await publish(http, origin.url, origin.admin, "@acme/secret", "1.0.0") == 201
    edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
    edges.append(edge)
    auth = {"Authorization": f"Bearer {origin.reader}"}
    paths = ["/@acme%2fsecret", "/@acme/secret/1.0.0", "/@acme/secret/-/secret-1.0.0.tgz"]
    for _ in range(2):
        for path in paths:
            status, headers, body = await get(http, edge.url + path, **auth)
            assert status == 200, path
            assert headers["X-Cache"] == "MISS", path         # never stored, so never a hit
            assert "private" in headers["Cache-Control"]
    for path in [*paths, "/@acme/secret"]:
        status, headers, body = await get(http, edge.url + path)
        assert status == 401, (path, status)
        assert b"secret-1.0.0" not in body
        assert json.loads(body)["error"] == "auth_required"
    # Another principal without read access gets nothing either.
    status, _, _ = await get(http, edge.url + paths[0], Authorization=f"Bearer {origin.edge_token}")
    assert status == 403


async def test_public_content_is_shared_with_authenticated_clients(origin: Origin, edges: list[EdgeProcess],
                                                                   tmp_path: Path,
                                                                   http: aiohttp.ClientSession) -> None:
    assert await publish(http, origin.url, origin.admin, "pub-shared", "1.0.0") == 201
    edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
    edges.append(edge)
    status, headers, _ = await get(http, f"{edge.url}/pub-shared", Authorization=f"Bearer {origin.reader}")
    assert status == 200 and headers["X-Cache"] == "MISS" and "public" in headers["Cache-Control"]
    assert (await get(http, f"{edge.url}/pub-shared"))[1]["X-Cache"] == "HIT-MEM"
    status, headers, _ = await get(http, f"{edge.url}/pub-shared", Authorization=f"Bearer {origin.reader}")
    assert headers["X-Cache"] in ("HIT-MEM", "HIT-DISK")


async def test_a_private_read_does_not_wait_for_a_seq_the_public_feed_never_reaches(
        origin: Origin, edges: list[EdgeProcess], tmp_path: Path, http: aiohttp.ClientSession) -> None:
    # A private answer states its seq in the registry's numbering, ahead of the public feed the
    # edge follows; the edge waits for the events of what it will store, never for these.
    assert await publish(http, origin.url, origin.admin, "@acme/quick", "1.0.0") == 201
    edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
    edges.append(edge)
    auth = {"Authorization": f"Bearer {origin.reader}"}
    status, headers, _ = await get(http, f"{edge.url}/@acme%2fquick", **auth)  # the edge's first connection
    assert status == 200 and "private" in headers["Cache-Control"]
    _, _, health = await get(http, f"{edge.url}/-/health")
    assert int(headers["Eghact-Seq"]) > json.loads(health)["feed"]["seq"]
    started = asyncio.get_running_loop().time()
    for _ in range(3):
        assert (await get(http, f"{edge.url}/@acme%2fquick", **auth))[0] == 200
    assert asyncio.get_running_loop().time() - started < 1.0  # each read waited 1 s before
