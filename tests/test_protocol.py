"""The wire protocol's version across the nodes (``eghact_common.protocol``): a real origin
states it in ``/-/health`` and ``/-/v1/feed``; an edge, ``eghact-mirror export`` and
``eghact-origin resolve`` refuse an upstream that states one they cannot read (here a real
aiohttp server on 127.0.0.1 playing an origin of a future major version), and an edge still
follows one that states a newer minor version."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from .edge.support import EdgeProcess, LoopbackServer
from .mirror.helpers import mirror, refused
from .support import OriginProcess, cli, get


@dataclass
class StatedOrigin(LoopbackServer):
    """Answers what a follower, an exporter and the resolve client ask first, stating
    ``protocol``; counts the paths asked for."""

    protocol: str
    requests: Counter[str] = field(default_factory=Counter)
    url: str = ""

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.requests[request.path_qs] += 1
        if request.path == "/-/health":
            return web.json_response({"status": "ok", "role": "origin", "protocol": self.protocol,
                                      "registry_id": "future", "read_only": False, "seq": 0})
        if request.path == "/-/v1/feed":
            return web.json_response({"registry_id": "future", "first_seq": 1, "last_seq": 0,
                                      "protocol": self.protocol})
        if request.path == "/-/v1/changes" and request.query.get("feed") == "sse":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            return response   # an empty stream: the follower reconnects after a while
        if request.path == "/-/v1/changes":
            return web.json_response({"results": [], "last_seq": 0})
        return web.json_response({"error": "not_found", "message": request.path, "detail": {}}, status=404)



@pytest.fixture
async def future() -> AsyncIterator[StatedOrigin]:
    origin = await StatedOrigin("2.0").start()
    yield origin
    await origin.stop()


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[OriginProcess]:
    process = OriginProcess(tmp_path / "origin").start()
    yield process
    process.stop()


def test_the_origin_states_its_protocol(origin: OriginProcess) -> None:
    for path in ("/-/health", "/-/v1/feed"):
        assert json.loads(get(origin.url + path))["protocol"] == "1.0", path


async def _edge_health(future: StatedOrigin, data: Path) -> dict[str, object]:
    edge = await EdgeProcess(future.url, data, args=("--no-warm",)).astart()
    try:
        return json.loads(await asyncio.to_thread(get, f"{edge.url}/-/health"))
    finally:
        await edge.astop()


async def test_an_edge_follows_no_feed_it_cannot_read(future: StatedOrigin, tmp_path: Path) -> None:
    health = await _edge_health(future, tmp_path / "edge")
    assert health["status"] == "incompatible"
    feed = health["feed"]
    assert isinstance(feed, dict) and feed["mode"] == "incompatible" and not feed["vouching"]
    assert "speaks protocol 2.0" in feed["incompatible"] and future.url in feed["incompatible"]
    # It read the extent and went no further: no stream of events it would misread.
    assert not [path for path in future.requests if "feed=sse" in path]


async def test_an_edge_follows_a_newer_minor_version(tmp_path: Path) -> None:
    newer = await StatedOrigin("1.3").start()
    try:
        health = await _edge_health(newer, tmp_path / "edge")
    finally:
        await newer.stop()
    feed = health["feed"]
    assert isinstance(feed, dict) and feed["mode"] == "events" and "incompatible" not in feed


async def test_mirror_export_refuses_before_reading_anything(future: StatedOrigin, tmp_path: Path) -> None:
    key, bundle = tmp_path / "mirror.key", tmp_path / "full.bundle"
    await asyncio.to_thread(mirror, "keygen", "-o", str(key))
    result = await asyncio.to_thread(mirror, "export", "--origin", future.url, "--key", str(key), "-o", str(bundle),
                                     check=False)
    assert refused(result) == (6, "incompatible"), result.stderr
    assert "speaks protocol 2.0" in result.stderr
    assert not bundle.exists()
    assert set(future.requests) == {"/-/health"}


async def test_resolve_refuses_before_asking(future: StatedOrigin, tmp_path: Path) -> None:
    lockfile = tmp_path / "eghact-lock.json"
    result = await asyncio.to_thread(cli, "resolve", "some-plugin@^1", "--registry", future.url, "-o", str(lockfile),
                                     check=False)
    assert result.returncode == 5, result.stderr
    assert "speaks protocol 2.0" in result.stderr
    assert not lockfile.exists() and "/-/v1/resolve" not in future.requests
