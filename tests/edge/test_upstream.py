"""The upstream seam in process: :class:`HttpUpstream` against a real aiohttp server on
127.0.0.1 that answers well, breaks off or stays silent. Whatever the upstream does, a
caller sees its answer or UpstreamUnavailable (counted against the upstream's health);
what the caller's own block raises leaves untranslated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from eghact_common.errors import UpstreamUnavailable
from eghact_edge.bulk import fetch_batch
from eghact_edge.metrics import Reporter
from eghact_edge.upstream import FEED, FILL, PASS, HttpUpstream


async def _handle(request: web.BaseRequest) -> web.StreamResponse:
    if request.path == "/-/v1/batch":
        # One whole frame, then a head promising 100 bytes of which only 3 come.
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"path": "/a", "status": 200, "length": 2, "headers": {}}\nok\n'
                             b'{"path": "/b", "status": 200, "length": 100}\nabc')
        request.transport.close()   # type: ignore[union-attr]
        return response
    if request.path == "/-/v1/changes":
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b": heartbeat\n\nid: 1\ndata: {\"seq\": 1}\n\ndata: two\ndata: lines\n\n")
        if request.query.get("silent"):
            await asyncio.sleep(30)
        await response.write_eof()
        return response
    if request.path == "/endless":
        # An answer to a write that never ends: the edge must not hold it all.
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * 65536)
        return response
    if request.path == "/json":
        return web.Response(body=b'{"keys": [1]}' if request.method == "GET" else await request.read(),
                            headers={"X-Auth": request.headers.get("Authorization", "")})
    return web.Response(status=404, text="not json")


@pytest.fixture
async def server() -> AsyncIterator[str]:
    runner = web.ServerRunner(web.Server(_handle, handler_cancellation=True), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture
async def upstream(server: str) -> AsyncIterator[HttpUpstream]:
    client = HttpUpstream(server, timeout=2.0, max_body=1 << 20, reporter=Reporter(), token="egh_test")
    yield client
    await client.close()


async def test_a_batch_cut_mid_frame_is_upstream_unavailable(upstream: HttpUpstream) -> None:
    got = []
    with pytest.raises(UpstreamUnavailable):
        async for index, response in fetch_batch(upstream, [("/a", False), ("/b", False)]):
            got.append((index, response.body))
    assert got == [(0, b"ok")]
    assert upstream.health()["state"] == "down"


async def test_sse_events_heartbeats_and_silence(upstream: HttpUpstream) -> None:
    async with upstream.sse("/-/v1/changes?feed=sse", last_event_id="0", idle=1.0) as stream:
        assert stream.status == 200
        seen = [data async for data in stream.events()]
    # Every line is a sign of life (None); each blank line after data ends an event.
    assert [data for data in seen if data is not None] == ['{"seq": 1}', "two\nlines"]
    assert None in seen
    with pytest.raises(UpstreamUnavailable) as caught:
        async with upstream.sse("/-/v1/changes?feed=sse&silent=1", last_event_id="0", idle=0.3) as stream:
            async for _ in stream.events():
                pass
    assert upstream.health()["state"] == "down" and "timeout" in caught.value.message


async def test_json_both_ways_and_the_token_only_when_asked(upstream: HttpUpstream) -> None:
    answer = await upstream.get_json("/json", kind="test")
    assert (answer.status, answer.document) == (200, {"keys": [1]})
    assert (await upstream.get_json("/missing", kind="test")).document is None
    anonymous = await upstream.post_json("/json", {"a": 1}, kind="test", pool=PASS)
    assert anonymous.body == b'{"a": 1}' and anonymous.headers["X-Auth"] == ""
    credentialed = await upstream.post_json("/json", {"a": 1}, kind="test", credentials=True)
    assert credentialed.headers["X-Auth"] == "Bearer egh_test" and upstream.credentialed


async def test_the_callers_own_errors_are_not_the_upstreams(upstream: HttpUpstream) -> None:
    with pytest.raises(ConnectionResetError):   # e.g. the downstream client went away
        async with upstream.stream("GET", "/json", headers={}, pool=FILL, total=2.0, idle=None) as stream:
            assert stream.status == 200
            raise ConnectionResetError("the client left")
    assert upstream.health()["state"] == "up"


async def test_no_answer_at_all_is_upstream_unavailable(upstream: HttpUpstream, server: str) -> None:
    dead = HttpUpstream("http://127.0.0.1:9", timeout=1.0, max_body=1024, reporter=Reporter())
    try:
        with pytest.raises(UpstreamUnavailable):
            async with dead.stream("GET", "/", headers={}, pool=FEED, total=1.0, idle=None):
                raise AssertionError("unreachable")
        with pytest.raises(UpstreamUnavailable):
            await dead.post_json("/-/v1/stats", {}, kind="fleet")
        assert dead.health()["consecutive_errors"] == 2
    finally:
        await dead.close()


async def test_a_documents_body_is_read_within_the_limit(upstream: HttpUpstream) -> None:
    # 4 MiB of answer against a 1 MiB limit: refused one read past the limit, not held whole.
    async with upstream.stream("PUT", "/endless", headers={}, body=b"{}", pool=PASS, total=5.0, idle=None) as got:
        assert got.status == 200
        with pytest.raises(UpstreamUnavailable) as refused:
            await got.read()
    assert refused.value.code == "upstream_too_large"
    async with upstream.stream("PUT", "/json", headers={}, body=b'{"a": 1}', pool=PASS, total=5.0, idle=None) as got:
        assert await got.read() == b'{"a": 1}'
