"""Issue 11, the edge under attack from raw sockets: no request target or header makes it
talk to another host (RFC 9112 §3.2, every form), bodies are read to their end however
they arrive, a client dribbling a request head is cut off, and client mistakes are 4xx."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ..support import escaped, manifest, publish_body, tarball_for
from .conftest import Origin
from .support import EdgeProcess, LoopbackServer


class Sink:
    """A plain TCP server that records every connection and byte it gets (it must get none)."""

    def __init__(self) -> None:
        self.connections = 0
        self.received = bytearray()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Sink:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await asyncio.wait_for(reader.read(65536), 5):
                self.received += data
        except (TimeoutError, ConnectionError):
            pass
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    started = await Sink().start()
    yield started
    await started.stop()


async def exchange(url: str, head: str, body: bytes = b"", *, pieces: int = 1,
                   pause: float = 0.0, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One raw request (``head`` without its blank line; ``Connection: close`` is added) and
    the whole answer. The body is written in ``pieces`` writes, ``pause`` seconds apart."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode("latin-1") + b"\r\nConnection: close\r\n\r\n")
        await writer.drain()
        size = -(-len(body) // pieces) if body else 0
        for start in range(0, len(body), size or 1):
            if pause:
                await asyncio.sleep(pause)
            writer.write(body[start:start + size])
            await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    head_bytes, _, payload = raw.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1]) if lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        payload = _unchunked(payload)
    return status, headers, payload


def _unchunked(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return bytes(out)


def assert_json_4xx(status: int, body: bytes, what: str) -> str:
    assert 400 <= status < 500, f"{what}: {status} {body[:300]!r}"
    try:
        error = json.loads(body)
    except ValueError:
        raise AssertionError(f"{what}: {status} with a body that is not JSON: {body[:300]!r}") from None
    assert error["message"], what
    return str(error["error"])


# -- 1. no server-side request forgery ------------------------------------------------------

async def test_no_request_target_form_reaches_another_host(tmp_path: Path, origin: Origin, sink: Sink,
                                                          edges: list[EdgeProcess]) -> None:
    edge = await EdgeProcess(origin.url, tmp_path / "edge", args=("--no-warm",)).astart()
    edges.append(edge)
    there = f"127.0.0.1:{sink.port}"
    auth = f"Authorization: Bearer {origin.admin}"
    targets = [
        # absolute-form (§3.2.2), with and without userinfo, for reads and writes
        f"GET http://{there}/x HTTP/1.1\r\nHost: {there}",
        f"GET http://{there}/-/whoami HTTP/1.1\r\nHost: {there}",
        f"HEAD http://{there}/p HTTP/1.1\r\nHost: {there}",
        f"GET http://user:pw@{there}/x HTTP/1.1\r\nHost: {there}",
        f"POST http://{there}/-/v1/search HTTP/1.1\r\nHost: {there}\r\nContent-Length: 0",
        f"PUT http://user@{there}/p HTTP/1.1\r\nHost: {there}\r\n{auth}\r\nContent-Length: 0",
        # authority-form (§3.2.3)
        f"CONNECT {there} HTTP/1.1\r\nHost: {there}",
        f"CONNECT @{there} HTTP/1.1\r\nHost: {there}",
        f"CONNECT user@{there} HTTP/1.1\r\nHost: {there}",
        # asterisk-form (§3.2.4)
        "OPTIONS * HTTP/1.1\r\nHost: edge",
        # origin-form with odd spellings (§3.2.1): authority-like, dot segments, userinfo-like
        f"GET //{there}/x HTTP/1.1\r\nHost: edge",
        f"GET //{there}/-/whoami HTTP/1.1\r\nHost: edge\r\n{auth}",
        f"DELETE //{there}/x HTTP/1.1\r\nHost: edge\r\n{auth}",
        "GET /-/../x HTTP/1.1\r\nHost: edge",
        "GET /-/%2e%2e/%2E%2E/x HTTP/1.1\r\nHost: edge",
        "GET /.. HTTP/1.1\r\nHost: edge",
        "DELETE /-/./whoami HTTP/1.1\r\nHost: edge",
        f"POST @{there}/x HTTP/1.1\r\nHost: edge\r\nContent-Length: 0",
        f"PUT {there}/x HTTP/1.1\r\nHost: edge\r\nContent-Length: 0",
        "GET /-/whoami\\..\\x HTTP/1.1\r\nHost: edge",
        "TRACE / HTTP/1.1\r\nHost: edge",
    ]
    for head in targets:
        status, headers, body = await exchange(edge.url, head)
        if head.startswith("HEAD "):   # the same answer, without its body
            assert 400 <= status < 500 and body == b"", (head, status)
        else:
            assert_json_4xx(status, body, head.split("\r\n")[0])
        assert headers.get("content-type", "").startswith("application/json"), head
    assert sink.connections == 0 and bytes(sink.received) == b""
    # The edge still serves, and proxies what is well formed.
    status, _, body = await exchange(edge.url, f"GET /-/whoami HTTP/1.1\r\nHost: edge\r\n{auth}")
    assert status == 200 and json.loads(body)["username"] == "admin"


class Recorder(LoopbackServer):
    """A fake upstream that records the headers of every request it gets."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, list[tuple[str, str]]]] = []

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        await request.read()
        self.seen.append((request.method, request.raw_path, list(request.headers.items())))
        return web.json_response({"ok": True}, status=404 if request.path.startswith("/-/v1/") else 200,
                                 headers={"Connection": "close, X-Upstream-Hop", "X-Upstream-Hop": "1"})



async def test_hop_by_hop_and_routing_headers_stay_at_the_edge(tmp_path: Path, edges: list[EdgeProcess]) -> None:
    recorder = await Recorder().start()
    try:
        edge = await EdgeProcess(recorder.url, tmp_path / "edge", args=("--no-warm",)).astart()
        edges.append(edge)
        hostile = ("Host: attacker.invalid\r\nConnection: X-Secret-Hop, Keep-Alive\r\nX-Secret-Hop: 1\r\n"
                   "Keep-Alive: timeout=5\r\nForwarded: for=10.0.0.1;host=attacker.invalid\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: attacker.invalid\r\n"
                   "X-Forwarded-Proto: https\r\nProxy-Authorization: Basic eDp5\r\nProxy-Connection: keep-alive\r\n"
                   "TE: trailers\r\nUpgrade: h2c\r\nAuthorization: Bearer t0k\r\nX-Kept: yes")
        status, headers, _ = await exchange(edge.url, f"GET /-/whoami HTTP/1.1\r\n{hostile}")
        assert status == 200 and "x-upstream-hop" not in headers
        status, _, _ = await exchange(edge.url, f"PUT /p HTTP/1.1\r\n{hostile}\r\nContent-Length: 2", b"{}")
        assert status == 200
        passed = [(method, path, dict((k.lower(), v) for k, v in got)) for method, path, got in recorder.seen
                  if not path.startswith("/-/v1/")]
        assert [(m, p) for m, p, _ in passed] == [("GET", "/-/whoami"), ("PUT", "/p")]
        upstream_host = recorder.url.removeprefix("http://")
        for _, _, got in passed:
            assert got["host"] == upstream_host
            assert got["authorization"] == "Bearer t0k" and got["x-kept"] == "yes"
            leaked = {name for name in got if name in {"x-secret-hop", "keep-alive", "forwarded", "te", "upgrade"}
                      or name.startswith(("x-forwarded-", "proxy-"))}
            assert not leaked, leaked
            assert "attacker" not in json.dumps(got)
    finally:
        await recorder.stop()


# -- 6. request bodies are read whole -----------------------------------------------------

async def test_big_and_dribbled_bodies_are_read_whole(tmp_path: Path, origin: Origin,
                                                      edges: list[EdgeProcess]) -> None:
    edge = await EdgeProcess(origin.url, tmp_path / "edge", args=("--no-warm",)).astart()
    edges.append(edge)
    auth = f"Authorization: Bearer {origin.admin}"
    # 3 MB of incompressible tarball: a ~4 MB JSON body.
    doc = manifest("big-through-edge", "1.0.0")
    big = publish_body(doc, tarball_for(doc, {"blob.bin": _noise(3 << 20)}))
    raw = json.dumps(big).encode()
    assert len(raw) > 3 << 20
    status, _, answer = await exchange(edge.url, f"PUT /big-through-edge HTTP/1.1\r\nHost: edge\r\n{auth}\r\n"
                                                 f"Content-Type: application/json\r\nContent-Length: {len(raw)}", raw)
    assert status == 201, answer[:300]
    # The same kind of body in 40 writes with pauses, with a length and chunked.
    for version, framing in (("1.0.1", "Content-Length: {}"), ("1.0.2", "Transfer-Encoding: chunked")):
        doc = manifest("big-through-edge", version)
        body = json.dumps(publish_body(doc, tarball_for(doc, {"blob.bin": _noise(300_000)}))).encode()
        sent = body if "Length" in framing else _chunked(body, 40)
        status, _, answer = await exchange(
            edge.url, f"PUT /big-through-edge HTTP/1.1\r\nHost: edge\r\n{auth}\r\nContent-Type: application/json"
                      f"\r\n{framing.format(len(body))}", sent, pieces=40, pause=0.01)
        assert status == 201, answer[:300]
    # A prefetch body split across writes: every hint counts.
    hints = json.dumps([f"pkg-{i}" for i in range(60)]).encode()
    status, _, answer = await exchange(edge.url, f"POST /-/v1/prefetch HTTP/1.1\r\nHost: edge\r\n"
                                                 f"Content-Length: {len(hints)}", hints, pieces=6, pause=0.05)
    assert status == 202 and sum(json.loads(answer).values()) == 60, answer


def _noise(size: int) -> bytes:
    import hashlib

    out = bytearray()
    seed = b"noise"
    while len(out) < size:
        seed = hashlib.sha512(seed).digest()
        out += seed
    return bytes(out[:size])


def _chunked(body: bytes, pieces: int) -> bytes:
    size = -(-len(body) // pieces)
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


# -- 7. slow heads are cut off; client mistakes are 4xx ---------------------------------------

async def test_a_dribbled_request_head_is_cut_off(tmp_path: Path, origin: Origin, edges: list[EdgeProcess]) -> None:
    edge = await EdgeProcess(origin.url, tmp_path / "edge", args=("--no-warm", "--header-timeout", "1.5")).astart()
    edges.append(edge)
    host, port = edge.url.removeprefix("http://").split(":")
    for head in (b"GET /some-package HTTP/1.1\r\nHost: edge\r\nX-Slow: abcdefghijklmnopqrstuvwxyz",
                 b"POST /-/v1/prefetch HTTP/1.1\r\nHost: edge\r\nX-Slow: abcdefghijklmnopqrstuvwxyz"):
        reader, writer = await asyncio.open_connection(host, int(port))
        started = time.monotonic()
        closed_after = None
        try:
            for byte in head:   # one byte every 0.25 s: each one alone would reset an idle timer
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    answer = await asyncio.wait_for(reader.read(-1), 0.25)
                except TimeoutError:
                    continue
                closed_after = time.monotonic() - started
                break
        except ConnectionError:
            closed_after = time.monotonic() - started
            answer = b""
        finally:
            writer.close()
        assert closed_after is not None and closed_after < 4.0, (head[:5], closed_after)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    # A prompt client on the same edge is served.
    status, _, _ = await exchange(edge.url, "GET /-/health HTTP/1.1\r\nHost: edge")
    assert status == 200


async def test_client_mistakes_are_4xx_not_500(tmp_path: Path, origin: Origin, edges: list[EdgeProcess]) -> None:
    edge = await EdgeProcess(origin.url, tmp_path / "edge", args=("--no-warm",)).astart()
    edges.append(edge)
    deep = b"[" * 1000 + b"]" * 1000
    deep_object = b'{"packages": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    auth = f"Authorization: Bearer {origin.admin}"
    cases: list[tuple[str, bytes, str]] = [
        ("POST /-/v1/prefetch", b'{"packages": 5}', "invalid_json"),
        ("POST /-/v1/prefetch", b'{"packages": ["a"], "resolutions": {"x": 1}}', "invalid_json"),
        ("POST /-/v1/prefetch", deep, "json_too_deep"),
        ("POST /-/v1/prefetch", deep_object, "json_too_deep"),
        # Deep JSON passed through to the origin, at each of its JSON endpoints.
        ("POST /-/v1/resolve", deep, "json_too_deep"),
        ("POST /-/v1/batch", deep, "json_too_deep"),
        ("POST /-/npm/v1/security/advisories/bulk", deep, "json_too_deep"),
        (f"PUT /{escaped('deep-json')}\r\n{auth}", b'{"name": ' + deep + b"}", "json_too_deep"),
        (f"PUT /-/package/deep-json/dist-tags/next\r\n{auth}", deep, "json_too_deep"),
        (f"POST /-/v1/stats\r\nAuthorization: Bearer {origin.edge_token}", deep, "json_too_deep"),
        (f"POST /-/v1/edges\r\nAuthorization: Bearer {origin.edge_token}", deep, "json_too_deep"),
    ]
    for request, body, code in cases:
        method, _, rest = request.partition(" ")
        target, _, extra = rest.partition("\r\n")
        head = f"{method} {target} HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n" \
               f"Content-Length: {len(body)}" + (f"\r\n{extra}" if extra else "")
        status, _, answer = await exchange(edge.url, head, body)
        assert assert_json_4xx(status, answer, f"{request} {body[:30]!r}") == code, answer[:300]
        assert status == 400
