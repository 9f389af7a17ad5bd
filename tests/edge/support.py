"""Edge test support: edges as real child processes, and a fake npm registry served by a
real aiohttp server on 127.0.0.1 that counts what it is asked (no mocks)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

from aiohttp import web

from ..support import spawn_server, stop_child


@dataclass
class EdgeProcess:
    """``eghact-edge serve`` as a child process. Start it with ``await edge.astart()`` from
    async tests, so a fake upstream on the test's loop can answer while it starts."""

    upstream: str
    data_dir: Path
    region: str = "test"
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[str] | None = None
    url: str = ""
    port: int = 0

    def start(self, timeout: float = 20.0) -> EdgeProcess:
        self.proc, self.url = spawn_server(
            ["eghact_edge.cli", "serve", "--upstream", self.upstream, "--data", str(self.data_dir), "--region",
             self.region, "--port", str(self.port), "--stats-interval", "0.5", *self.args], "edge", timeout)
        self.port = int(self.url.rsplit(":", 1)[-1])
        return self

    async def astart(self, timeout: float = 20.0) -> EdgeProcess:
        return await asyncio.to_thread(self.start, timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return stop_child(self.proc, sig, timeout)

    async def astop(self, sig: int = signal.SIGTERM) -> int:
        return await asyncio.to_thread(self.stop, sig)


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


class LoopbackServer:
    """A bare aiohttp server on 127.0.0.1 (port 0) that answers with ``handle``; its ``url``
    once started. ``handler_cancellation``: a client that hangs up ends its handler."""

    url: str = ""
    handler_cancellation: ClassVar[bool] = False
    _runner: web.ServerRunner | None = None

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raise NotImplementedError

    async def start(self) -> Self:
        server = web.Server(self.handle, handler_cancellation=self.handler_cancellation)
        self._runner = web.ServerRunner(server, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class FakeRegistry(LoopbackServer):
    """A plain npm-compatible registry (no changes feed) with knobs for every test.

    ``packages`` maps name -> {version: tarball bytes}. ``cache_control`` per kind (a kind
    left out gets no Cache-Control at all), ``etags`` (False: no validators either, as a
    registry that sends no cache headers), ``delay`` seconds before answering, ``tamper``:
    names whose tarballs are served with other bytes than their integrity says. Counts
    requests per path and conditional hits.
    """

    packages: dict[str, dict[str, bytes]] = field(default_factory=dict)
    cache_control: dict[str, str] = field(default_factory=lambda: {
        "packument": "public, max-age=300", "tarball": "public, max-age=31536000, immutable"})
    etags: bool = True
    delay: float = 0.0
    tamper: set[str] = field(default_factory=set)
    status: int = 200
    integrity_headers: bool = False
    requests: Counter[str] = field(default_factory=Counter)
    conditional: Counter[str] = field(default_factory=Counter)
    not_modified: Counter[str] = field(default_factory=Counter)
    revision: int = 0
    popular: list[str] = field(default_factory=list)   # cache keys served at /-/v1/popular
    url: str = ""

    def packument(self, name: str) -> bytes:
        versions = {}
        for version, data in self.packages[name].items():
            bare = name.rsplit("/", 1)[-1]
            versions[version] = {
                "name": name, "version": version, "dependencies": {},
                "dist": {"integrity": sri(data), "shasum": hashlib.sha1(data).hexdigest(),
                         "tarball": f"{self.url}/{name}/-/{bare}-{version}.tgz"}}
        latest = sorted(versions)[-1] if versions else None
        return json.dumps({"name": name, "dist-tags": {"latest": latest} if latest else {}, "versions": versions,
                           "_rev": self.revision}).encode()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path
        self.requests[path] += 1
        if request.headers.get("If-None-Match"):
            self.conditional[path] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return web.Response(status=self.status, text="broken")
        if path.startswith("/-/v1/popular") and self.popular:
            return web.json_response({"keys": [{"key": key, "score": 1.0} for key in self.popular]})
        if path.startswith("/-/"):
            return web.Response(status=404, text="no such endpoint")
        segments = [s for s in path.replace("%2f", "/").replace("%2F", "/").split("/") if s]
        if segments and segments[0].startswith("@") and len(segments) >= 2:
            segments = [segments[0] + "/" + segments[1], *segments[2:]]
        name = segments[0] if segments else ""
        if name not in self.packages:
            return web.json_response({"error": "not_found"}, status=404)
        if len(segments) == 1:
            body = self.packument(name)
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            headers = {"Content-Type": "application/json"}
            if self.etags:
                headers["ETag"] = etag
            if "packument" in self.cache_control:
                headers["Cache-Control"] = self.cache_control["packument"]
            if self.etags and request.headers.get("If-None-Match") == etag:
                self.not_modified[path] += 1
                return web.Response(status=304, headers=headers)
            return web.Response(body=body, headers=headers)
        if len(segments) == 3 and segments[1] == "-":
            bare = name.rsplit("/", 1)[-1]
            version = segments[2][len(bare) + 1:-4]
            data = self.packages[name].get(version)
            if data is None:
                return web.json_response({"error": "not_found"}, status=404)
            headers = {"Content-Type": "application/octet-stream"}
            if "tarball" in self.cache_control:
                headers["Cache-Control"] = self.cache_control["tarball"]
            if self.integrity_headers:
                headers["Eghact-Integrity"] = sri(data)
            served = data + b"tampered" if name in self.tamper else data
            return web.Response(body=served, headers=headers)
        return web.json_response({"error": "not_found"}, status=404)



def metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in an exposition (0 when absent)."""
    wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[-1])
    return 0.0

