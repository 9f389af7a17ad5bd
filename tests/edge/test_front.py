"""The edge's front on the wire: exact bytes in, exact responses out, over raw sockets to a
real edge process (the front answers cache reads itself and hands every other request,
with the connection, to aiohttp)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .support import EdgeProcess, FakeRegistry

TARBALL = b"\x1f\x8b" + b"front" * 40


class Wire:
    """One raw connection: write bytes, read whole responses (framed by Content-Length)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Wire:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, *, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = b""
        if not head_only and status not in (204, 304) and length:
            body = await asyncio.wait_for(self.reader.readexactly(length), 10)
        return status, headers, body

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 10) == b""

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def registry() -> AsyncIterator[FakeRegistry]:
    fake = await FakeRegistry(packages={"pkg": {"1.0.0": TARBALL}, "@s/scoped": {"2.0.0": TARBALL}}).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def edge(registry: FakeRegistry, tmp_path: Path, edges: list[EdgeProcess]) -> EdgeProcess:
    started = await EdgeProcess(registry.url, tmp_path / "edge", args=("--rate", "0")).astart()
    edges.append(started)
    return started


def get(target: str, *extra: str, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: edge", *extra, "", ""]
    return "\r\n".join(lines).encode()


async def test_pipelined_reads_are_answered_in_order(edge: EdgeProcess, registry: FakeRegistry) -> None:
    wire = await Wire.open(edge.url)
    try:
        # A miss (answered later), a second miss, then the first key again, all in one write.
        await wire.send(get("/pkg") + get("/@s%2fscoped") + get("/pkg"))
        first, second, third = [await wire.response() for _ in range(3)]
        assert first[0] == second[0] == third[0] == 200
        assert json.loads(first[2])["name"] == "pkg" and json.loads(second[2])["name"] == "@s/scoped"
        assert first[1]["x-cache"] == "MISS" and third[1]["x-cache"] == "HIT-MEM"
        assert third[2] == first[2]
        assert registry.requests["/pkg"] == 1
    finally:
        wire.close()


async def test_head_has_the_length_and_no_body(edge: EdgeProcess) -> None:
    wire = await Wire.open(edge.url)
    try:
        await wire.send(get("/pkg"))
        _, _, body = await wire.response()
        await wire.send(get("/pkg", method="HEAD") + get("/pkg"))
        status, headers, empty = await wire.response(head_only=True)
        assert status == 200 and int(headers["content-length"]) == len(body) and empty == b""
        status, _, again = await wire.response()   # the next response starts right after the head
        assert status == 200 and again == body
    finally:
        wire.close()


async def test_a_refused_head_has_no_body_and_the_connection_stays_in_step(edge: EdgeProcess) -> None:
    wire = await Wire.open(edge.url)
    try:
        await wire.send(get("/pkg/-/..tgz", method="HEAD") + get("/pkg"))
        status, headers, _ = await wire.response(head_only=True)
        assert status == 400 and int(headers["content-length"]) > 0
        status, _, body = await wire.response()
        assert status == 200 and json.loads(body)["name"] == "pkg"
    finally:
        wire.close()


async def test_conditional_get_answers_304_without_a_body(edge: EdgeProcess) -> None:
    wire = await Wire.open(edge.url)
    try:
        await wire.send(get("/pkg"))
        _, headers, _ = await wire.response()
        await wire.send(get("/pkg", f"If-None-Match: {headers['etag']}") + get("/pkg"))
        status, not_modified, _ = await wire.response()
        assert status == 304 and not_modified["etag"] == headers["etag"] and "content-type" not in not_modified
        status, _, body = await wire.response()
        assert status == 200 and body
    finally:
        wire.close()


async def test_connection_close_and_http_1_0_close_after_the_answer(edge: EdgeProcess) -> None:
    for request in (get("/pkg", "Connection: close"), b"GET /pkg HTTP/1.0\r\n\r\n"):
        wire = await Wire.open(edge.url)
        try:
            await wire.send(request)
            status, headers, _ = await wire.response()
            assert status == 200 and headers["connection"] == "close"
            assert await wire.closed()
        finally:
            wire.close()


async def test_a_write_hands_the_connection_to_aiohttp_and_reads_still_work(edge: EdgeProcess) -> None:
    wire = await Wire.open(edge.url)
    try:
        await wire.send(get("/pkg"))
        assert (await wire.response())[0] == 200
        body = b'{"name": "pkg"}'
        put = (b"PUT /pkg HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        # The write and a read behind it, pipelined: both now answered by aiohttp, in order.
        await wire.send(put + get("/pkg") + get("/-/health"))
        status, headers, _ = await wire.response()
        assert status == 200 and headers["x-cache"] == "PASS"   # passed on to the upstream
        status, headers, _ = await wire.response()
        assert status == 200 and headers["x-cache"] in ("HIT-MEM", "MISS")
        status, _, health = await wire.response()
        assert status == 200 and json.loads(health)["role"] == "edge"
    finally:
        wire.close()


async def test_a_get_with_a_body_is_not_framed_by_the_front(edge: EdgeProcess) -> None:
    wire = await Wire.open(edge.url)
    try:
        await wire.send(b"GET /pkg HTTP/1.1\r\nHost: edge\r\nContent-Length: 5\r\n\r\nhello" + get("/pkg"))
        assert (await wire.response())[0] == 200
        assert (await wire.response())[0] == 200
    finally:
        wire.close()


async def test_malformed_and_oversized_requests_get_json_errors_and_a_close(edge: EdgeProcess) -> None:
    for request, status, code in (
            (b"GET /pkg HTTP/1.1\r\nHost edge\r\n\r\n", 400, "bad_http_request"),
            (get("/pkg", "X-Big: " + "y" * 20_000), 431, "headers_too_large"),
            (get("/pkg", *(f"X-{i}: {i}" for i in range(80))), 431, "headers_too_large"),
            (get("/pkg/-/..tgz"), 400, "bad_request")):
        wire = await Wire.open(edge.url)
        try:
            await wire.send(request)
            answer, headers, body = await wire.response()
            assert (answer, json.loads(body)["error"]) == (status, code), body
            assert headers["content-type"] == "application/json"
            if status != 400 or code == "bad_http_request":
                assert await wire.closed()
        finally:
            wire.close()


async def test_a_request_split_across_writes_is_reassembled(edge: EdgeProcess) -> None:
    wire = await Wire.open(edge.url)
    try:
        request = get("/@s%2Fscoped", "Accept: application/vnd.npm.install-v1+json")
        for i in range(0, len(request), 7):
            await wire.send(request[i:i + 7])
            await asyncio.sleep(0.001)
        status, _, body = await wire.response()
        assert status == 200 and json.loads(body)["name"] == "@s/scoped"
    finally:
        wire.close()


async def test_sigterm_closes_idle_connections_and_finishes_answers_in_progress(
        edge: EdgeProcess, registry: FakeRegistry) -> None:
    idle, busy = await Wire.open(edge.url), await Wire.open(edge.url)
    try:
        await idle.send(get("/pkg"))
        assert (await idle.response())[0] == 200
        registry.delay = 0.5
        await busy.send(get("/@s%2fscoped"))           # a miss, in flight when the signal comes
        await asyncio.sleep(0.2)
        stopping = asyncio.create_task(edge.astop())
        status, headers, body = await busy.response()
        assert status == 200 and json.loads(body)["name"] == "@s/scoped"
        assert headers["connection"] == "close"
        assert await idle.closed() and await busy.closed()
        assert await stopping == 0
    finally:
        idle.close()
        busy.close()
