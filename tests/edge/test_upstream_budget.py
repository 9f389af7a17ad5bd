"""The edge's upstream connections cannot be taken by clients (issue 11, items 2 and 7).

Long-lived pass-through (long-polls, SSE) has its own pool and budget, its timeout is
capped, and a client that hangs up closes its upstream request; ``Eghact-Min-Seq`` cannot
send a cached read upstream for a seq that does not exist. Real origin and edge processes,
and a fake upstream that counts the long-lived requests it holds open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from .conftest import Origin, get, publish
from .support import EdgeProcess, FakeRegistry, LoopbackServer

PRIVATE = "@acme/budget-secret"


def client(address: str) -> aiohttp.ClientSession:
    """A client on its own loopback address (127.0.0.0/8 is all loopback on Linux): the
    edge budgets long-lived requests per client address."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)),
                                 timeout=aiohttp.ClientTimeout(total=60))


async def _status_of(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str]]:
    async with session.get(url) as response:
        body = await response.read()
        error = json.loads(body).get("error", "") if response.status >= 400 else ""
        return response.status, {"error": error, "retry-after": response.headers.get("Retry-After", "")}


async def _hold(session: aiohttp.ClientSession, url: str) -> None:
    """A long-lived request, read to its end (or until cancelled, which closes it)."""
    async with session.get(url) as response:
        await response.read()


async def _origin_head(http: aiohttp.ClientSession, origin: Origin) -> int:
    return int(json.loads((await get(http, f"{origin.url}/-/v1/feed"))[2])["last_seq"])


async def test_long_polls_cannot_starve_misses_private_reads_and_publishes(
        origin: Origin, edges: list[EdgeProcess], tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """130 anonymous five-minute long-polls through an edge with default settings (the
    incident): the ones beyond the stream budget are refused at once, and a cache miss, an
    authorized private read and a publish through the edge all answer promptly."""
    await publish(http, origin.url, origin.admin, "budget-miss", "1.0.0")
    await publish(http, origin.url, origin.admin, PRIVATE, "1.0.0")
    edge = await EdgeProcess(origin.url, tmp_path / "edge", args=("--no-warm", "--rate", "0")).astart()
    edges.append(edge)
    since = await _origin_head(http, origin)
    poll = f"{edge.url}/-/v1/changes?since={since}&feed=longpoll&timeout=300000"
    # 65 clients with 2 long-polls each: within the per-client share, beyond the total.
    sessions = [client(f"127.0.0.{2 + i}") for i in range(65)]
    polls = [asyncio.create_task(_status_of(session, poll)) for session in sessions for _ in range(2)]
    try:
        # Bounded: the refusals come at once; before the fix none came (all 130 were held).
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and sum(p.done() for p in polls) < 130 - 32:
            await asyncio.sleep(0.05)
        refused = [p.result() for p in polls if p.done()]

        timeout = aiohttp.ClientTimeout(total=8)
        started = time.monotonic()
        async with http.get(f"{edge.url}/budget-miss", timeout=timeout) as response:
            assert response.status == 200 and response.headers["X-Cache"] == "MISS"
        async with http.get(f"{edge.url}/@acme%2fbudget-secret", timeout=timeout,
                            headers={"Authorization": f"Bearer {origin.reader}"}) as response:
            assert response.status == 200
            assert json.loads(await response.read())["name"] == PRIVATE
        status = await asyncio.wait_for(publish(http, edge.url, origin.admin, "budget-miss", "1.1.0"), 8)
        assert status == 201
        assert time.monotonic() - started < 5.0
        assert len(refused) == 130 - 32, f"{len(refused)} long-polls refused; the budget is 32"
        assert {status for status, _ in refused} == {503}
        assert {info["error"] for _, info in refused} == {"streams_exhausted"}
        assert all(int(info["retry-after"]) > 0 for _, info in refused)
        # The publish woke the held long-polls: each answered with the event, none failed.
        held = await asyncio.wait_for(asyncio.gather(*polls), 10)
        assert sorted(status for status, _ in held).count(200) == 32
    finally:
        for task in polls:
            task.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        for session in sessions:
            await session.close()


class HeldFeed(LoopbackServer):
    """A fake upstream whose changes feed never answers: long-polls and SSE streams are held
    until the edge closes them. Counts how many are open and the ``timeout`` each asked for.
    ``handler_cancellation`` makes a closed connection end its handler at once."""

    handler_cancellation = True

    def __init__(self) -> None:
        self.open = 0
        self.timeouts: list[str | None] = []

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        feed = request.query.get("feed")
        if request.path != "/-/v1/changes" or feed not in ("longpoll", "sse"):
            return web.json_response({"error": "not_found"}, status=404)   # no feed: time mode
        self.open += 1
        self.timeouts.append(request.query.get("timeout"))
        try:
            if feed == "sse":
                response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
                await response.prepare(request)
                await response.write(b"retry: 2000\n\n")
            await asyncio.sleep(300)
            return web.json_response({"results": [], "last_seq": 0})
        finally:
            self.open -= 1


    async def until_open(self, count: int, seconds: float = 5.0) -> int:
        deadline = time.monotonic() + seconds
        while self.open != count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.open


@contextlib.asynccontextmanager
async def held_feed() -> AsyncIterator[HeldFeed]:
    fake = await HeldFeed().start()
    try:
        yield fake
    finally:
        await fake.stop()


async def test_a_client_that_hangs_up_closes_its_upstream_request(edges: list[EdgeProcess], tmp_path: Path) -> None:
    """Two long-polls and an SSE stream through the edge reach the upstream (the long-polls'
    five minutes capped to the edge's 30 s); when their client disconnects, the upstream sees
    all three closed at once, not when they would have ended."""
    async with held_feed() as fake:
        edge = await EdgeProcess(fake.url, tmp_path / "edge", args=("--no-warm",)).astart()
        edges.append(edge)
        session = client("127.0.0.2")
        requests = [asyncio.create_task(_hold(session, f"{edge.url}/-/v1/changes?since=0&feed=longpoll&timeout=300000"))
                    for _ in range(2)]
        requests.append(asyncio.create_task(_hold(session, f"{edge.url}/-/v1/changes?feed=sse")))
        try:
            assert await fake.until_open(3) == 3
        finally:
            for task in requests:
                task.cancel()
            await asyncio.gather(*requests, return_exceptions=True)
            await session.close()
        assert await fake.until_open(0, seconds=3.0) == 0, "the upstream still holds requests the client left"
        assert sorted(fake.timeouts, key=str) == ["30000", "30000", None]


async def test_stream_budget_per_client_and_in_total(edges: list[EdgeProcess], tmp_path: Path) -> None:
    """Beyond its share a client gets 429 too_many_streams, beyond the total anyone gets 503
    streams_exhausted, both with Retry-After; a slot given back by a disconnect is usable."""
    async with held_feed() as fake:
        edge = await EdgeProcess(fake.url, tmp_path / "edge", args=(
            "--no-warm", "--stream-budget", "3", "--stream-per-client", "2", "--max-longpoll", "5")).astart()
        edges.append(edge)
        poll = f"{edge.url}/-/v1/changes?since=0&feed=longpoll&timeout=300000"
        first, second, third = client("127.0.0.2"), client("127.0.0.3"), client("127.0.0.4")
        held = [asyncio.create_task(_hold(first, poll)), asyncio.create_task(_hold(first, poll)),
                asyncio.create_task(_hold(second, poll))]
        try:
            assert await fake.until_open(3) == 3
            assert set(fake.timeouts) == {"5000"}
            status, info = await asyncio.wait_for(_status_of(first, poll), 5)
            assert (status, info["error"]) == (429, "too_many_streams") and int(info["retry-after"]) > 0
            status, info = await asyncio.wait_for(_status_of(third, poll), 5)
            assert (status, info["error"]) == (503, "streams_exhausted") and int(info["retry-after"]) > 0
            for task in held[:2]:   # the first client hangs up: its two slots come back
                task.cancel()
            await asyncio.gather(*held[:2], return_exceptions=True)
            assert await fake.until_open(1) == 1
            again = asyncio.create_task(_hold(third, poll))
            held.append(again)
            assert await fake.until_open(2) == 2
        finally:
            for task in held:
                task.cancel()
            await asyncio.gather(*held, return_exceptions=True)
            for session in (first, second, third):
                await session.close()


def _origin_requests(text: str, route: str) -> float:
    return sum(float(line.rsplit(" ", 1)[-1]) for line in text.splitlines()
               if line.startswith("eghact_origin_requests_total{") and f'route="{route}"' in line)


async def _origin_metrics(http: aiohttp.ClientSession, origin: Origin) -> str:
    # The admin's view: with a private scope, the origin's metrics are for admins only.
    status, _, body = await get(http, f"{origin.url}/-/metrics", Authorization=f"Bearer {origin.admin}")
    assert status == 200
    return body.decode()


async def test_min_seq_beyond_the_feed_is_answered_from_cache(origin: Origin, edges: list[EdgeProcess],
                                                              tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """``Eghact-Min-Seq: 999999999`` names a seq the origin never had: a cached packument is
    served from the cache, with no request to the origin."""
    await publish(http, origin.url, origin.admin, "min-seq-cap", "1.0.0")
    edge = await EdgeProcess(origin.url, tmp_path / "edge", args=("--no-warm",)).astart()
    edges.append(edge)
    assert (await get(http, f"{edge.url}/min-seq-cap"))[1]["X-Cache"] == "MISS"
    before = _origin_requests(await _origin_metrics(http, origin), "packument")
    for _ in range(3):
        status, headers, body = await get(http, f"{edge.url}/min-seq-cap", **{"Eghact-Min-Seq": "999999999"})
        assert status == 200 and headers["X-Cache"] in ("HIT-MEM", "HIT-DISK")
        assert json.loads(body)["name"] == "min-seq-cap"
    after = _origin_requests(await _origin_metrics(http, origin), "packument")
    assert after == before > 0


async def test_min_seq_is_ignored_in_front_of_a_registry_without_a_feed(edges: list[EdgeProcess], tmp_path: Path,
                                                                        http: aiohttp.ClientSession) -> None:
    """Without a changes feed seqs mean nothing at the edge: no revalidation for them."""
    fake = await FakeRegistry(packages={"no-feed": {"1.0.0": b"bytes"}}).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge", args=("--no-warm",)).astart()
        edges.append(edge)
        assert (await get(http, f"{edge.url}/no-feed"))[1]["X-Cache"] == "MISS"
        status, headers, _ = await get(http, f"{edge.url}/no-feed", **{"Eghact-Min-Seq": "5"})
        assert status == 200 and headers["X-Cache"] == "HIT-MEM"
        assert fake.requests["/no-feed"] == 1 and not fake.conditional["/no-feed"]
    finally:
        await fake.stop()


async def test_min_seq_just_ahead_waits_for_the_feed_and_serves_the_new_content(
        origin: Origin, edges: list[EdgeProcess], tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """A child edge that heard of an event before this edge applied it (the real use of the
    header) gets content that reflects the event, not the cached copy from before it."""
    await publish(http, origin.url, origin.admin, "min-seq-wait", "1.0.0")
    edge = await EdgeProcess(origin.url, tmp_path / "edge", args=("--no-warm",)).astart()
    edges.append(edge)
    assert (await get(http, f"{edge.url}/min-seq-wait"))[1]["X-Cache"] == "MISS"
    ahead = str(await _origin_head(http, origin) + 1)
    read = asyncio.create_task(get(http, f"{edge.url}/min-seq-wait", **{"Eghact-Min-Seq": ahead}))
    await asyncio.sleep(0.2)
    assert not read.done()
    assert await publish(http, origin.url, origin.admin, "min-seq-wait", "1.1.0") == 201
    status, _, body = await asyncio.wait_for(read, 10)
    assert status == 200 and "1.1.0" in json.loads(body)["versions"]


async def test_a_stopping_edge_ends_its_long_polls_and_streams_at_once(edges: list[EdgeProcess],
                                                                       tmp_path: Path) -> None:
    """SIGTERM while a client holds an SSE stream and a long-poll through the edge: the stream
    ends as a stream ends (its client reads a whole body, then resumes elsewhere), the
    long-poll is answered 503 edge_stopping with Retry-After, the upstream sees both closed,
    and the edge exits 0 at once. It used to wait for them until its shutdown timeout and
    then again for their cancellation: 10.4 s, and both clients saw a cut connection."""
    async with held_feed() as fake:
        edge = await EdgeProcess(fake.url, tmp_path / "edge", args=("--no-warm",)).astart()
        edges.append(edge)
        session = client("127.0.0.2")

        async def stream() -> tuple[int, bytes]:
            async with session.get(f"{edge.url}/-/v1/changes?feed=sse") as response:
                return response.status, await response.read()

        sse = asyncio.create_task(stream())
        poll = asyncio.create_task(_status_of(session, f"{edge.url}/-/v1/changes?since=0&feed=longpoll"))
        try:
            assert await fake.until_open(2) == 2
            started = time.monotonic()
            code = await edge.astop()
            stopped_in = time.monotonic() - started
            status, body = await asyncio.wait_for(sse, 5)
            assert (status, body) == (200, b"retry: 2000\n\n")
            status, info = await asyncio.wait_for(poll, 5)
            assert (status, info["error"]) == (503, "edge_stopping") and int(info["retry-after"]) > 0
            assert code == 0 and stopped_in < 2.5, f"the edge took {stopped_in:.1f} s to stop"
            assert await fake.until_open(0, seconds=3.0) == 0
        finally:
            for task in (sse, poll):
                task.cancel()
            await asyncio.gather(sse, poll, return_exceptions=True)
            await session.close()
