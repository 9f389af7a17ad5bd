"""Uplink test support: a second origin of ours as the upstream, reached through a counting,
breakable proxy (a real aiohttp server on 127.0.0.1), and the origin under test in front of it."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from eghact_origin.uplinks.config import Uplink, UplinkConfig

from ...conftest import start_origin
from ...edge.support import LoopbackServer
from ...support import OriginProcess, cli, escaped, manifest, publish_body, tarball_for

# Host is passed on: the upstream writes its tarball URLs with the host it was asked by (the proxy).
_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length"})


@dataclass
class CountingProxy(LoopbackServer):
    """Forwards every request to ``target`` and counts them per path (``requests``) and per
    kind (``packuments``/``tarballs`` by package name). ``mode``: ``forward``; ``503`` answers
    503; ``hang`` waits ``hang_seconds`` before answering 503; ``drop`` closes the connection
    without an answer (as a refused or reset connection looks to the client)."""

    target: str = ""
    mode: str = "forward"
    hang_seconds: float = 30.0
    requests: Counter[str] = field(default_factory=Counter)
    conditional: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    handler_cancellation = True
    _session: aiohttp.ClientSession | None = None

    def count(self, fragment: str = "") -> int:
        return sum(n for path, n in self.requests.items() if fragment in path)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.raw_path
        self.requests[path] += 1
        if request.headers.get("If-None-Match") or request.headers.get("If-Modified-Since"):
            self.conditional[path] += 1
        if self.mode == "503":
            return web.Response(status=503, text="down for the test")
        if self.mode == "hang":
            await asyncio.sleep(self.hang_seconds)
            return web.Response(status=503, text="too late")
        if self.mode == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=503)
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(request.method, self.target + path, headers=headers,
                                         data=await request.read()) as upstream:
            body = await upstream.read()
            self.statuses[upstream.status] += 1
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            if "Content-Encoding" in upstream.headers:
                out["Content-Encoding"] = upstream.headers["Content-Encoding"]
            return web.Response(status=upstream.status, body=body, headers=out)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        await super().stop()


def admin_token(data_dir: Path) -> str:
    return cli("token", "create", "--data", str(data_dir), "--name", "admin", "--scope", "admin").stdout.split()[-1]


@dataclass
class Upstream:
    """An origin of ours acting as the public registry, with an admin token to publish into it."""

    origin: OriginProcess
    token: str

    async def publish(self, name: str, version: str, **extra: Any) -> bytes:
        doc = manifest(name, version, **extra)
        data = tarball_for(doc)
        await put(self.origin.url, name, publish_body(doc, data), self.token)
        return data


async def put(base: str, name: str, body: dict[str, Any], token: str, query: str = "") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.put(
            f"{base}/{escaped(name)}{query}", data=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as response:
        return response.status, await response.json()


async def fetch(url: str, *, accept: str | None = None, token: str | None = None) -> tuple[int, bytes, Any]:
    headers = {}
    if accept:
        headers["Accept"] = accept
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.read(), response.headers


async def doc(url: str, **kwargs: Any) -> tuple[int, Any]:
    status, body, _ = await fetch(url, **kwargs)
    return status, json.loads(body)


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> bool:
    """Whether ``check`` came true within ``seconds`` (asked every 0.1 s): a bounded wait."""
    for _ in range(max(1, int(seconds * 10))):
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def versions_become(url: str, name: str, expected: list[str], seconds: float = 5.0) -> list[str]:
    """The versions of ``name`` at ``url`` (sorted) once they are ``expected``, or the last seen
    when ``seconds`` passed first (an event on its way to an edge over its feed, say)."""
    seen: list[str] = []

    async def shown() -> bool:
        nonlocal seen
        seen = sorted((await doc(f"{url}/{escaped(name)}"))[1].get("versions", {}))
        return seen == expected

    await until(shown, seconds)
    return seen


@asynccontextmanager
async def uplinked(tmp_path: Path, *args: str) -> AsyncIterator[tuple[Upstream, CountingProxy, OriginProcess]]:
    """An upstream origin, the counting proxy in front of it, and an origin under test with the
    proxy as its uplink (plus ``args``); all stopped after."""
    upstream = OriginProcess(tmp_path / "upstream")
    (tmp_path / "upstream").mkdir()
    token = admin_token(tmp_path / "upstream")
    await asyncio.to_thread(upstream.start)
    proxy = await CountingProxy(target=upstream.url).start()
    subject = OriginProcess(tmp_path / "subject", ("--uplink", proxy.url, *args))
    try:
        await asyncio.to_thread(subject.start)
        try:
            yield Upstream(upstream, token), proxy, subject
        finally:
            await asyncio.to_thread(subject.stop)
    finally:
        await proxy.stop()
        await asyncio.to_thread(upstream.stop)


@dataclass
class Clock:
    """The uplinks' injected time (epoch seconds): moves only when a test moves it."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now


@dataclass
class InProcess:
    """An origin under test served from the test's own loop (its app at hand), its uplink the proxy."""

    url: str
    app: web.Application
    data_dir: Path


@asynccontextmanager
async def uplinked_here(tmp_path: Path, clock: Clock, *, max_age: float = 300.0, refresh_interval: float = 0.2,
                        **settings: Any) -> AsyncIterator[tuple[Upstream, CountingProxy, InProcess]]:
    """:func:`uplinked` with the origin under test in this process, on ``clock``: its pull policy,
    max ages and refresher read the injected time (the refresher still sleeps in real time,
    ``refresh_interval`` at most). ``settings``: OriginSettings fields (``uplink_min_age``...)."""
    upstream = OriginProcess(tmp_path / "upstream")
    (tmp_path / "upstream").mkdir()
    token = admin_token(tmp_path / "upstream")
    await asyncio.to_thread(upstream.start)
    proxy = await CountingProxy(target=upstream.url).start()
    config = UplinkConfig((Uplink("default", proxy.url),), max_age=max_age, refresh_interval=refresh_interval)
    try:
        runner, url = await start_origin(tmp_path / "subject", clock=clock, uplinks=config, **settings)
        try:
            yield Upstream(upstream, token), proxy, InProcess(url, runner.app, tmp_path / "subject")
        finally:
            await runner.cleanup()
    finally:
        await proxy.stop()
        await asyncio.to_thread(upstream.stop)
