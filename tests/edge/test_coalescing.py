"""Coalescing, counted at a fake upstream: N concurrent misses make one request, and
content that may not be shared does not make requests wait in line."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from eghact_edge.coalesce import SingleFlight

from .support import EdgeProcess, FakeRegistry


async def test_100_concurrent_misses_make_one_upstream_request(tmp_path: Path, edges: list[EdgeProcess]) -> None:
    fake = await FakeRegistry(packages={"hot": {"1.0.0": b"tgz"}}, delay=0.5).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge", args=("--rate", "0")).astart()
        edges.append(edge)
        fake.requests.clear()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
            async def one() -> tuple[int, str]:
                async with http.get(f"{edge.url}/hot") as r:
                    await r.read()
                    return r.status, r.headers["X-Cache"]

            results = await asyncio.gather(*(one() for _ in range(100)))
        assert all(status == 200 for status, _ in results)
        assert fake.requests["/hot"] == 1, fake.requests
        assert sum(1 for _, cache in results if cache == "MISS") == 100 or fake.requests["/hot"] == 1
    finally:
        await fake.stop()


async def test_unshareable_content_does_not_serialise(tmp_path: Path, edges: list[EdgeProcess]) -> None:
    fake = await FakeRegistry(packages={"zero": {"1.0.0": b"tgz"}}, delay=0.4,
                              cache_control={"packument": "no-store", "tarball": "no-store"}).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge", args=("--rate", "0")).astart()
        edges.append(edge)
        async with aiohttp.ClientSession() as http:
            async def one() -> int:
                async with http.get(f"{edge.url}/zero") as r:
                    await r.read()
                    return r.status

            await one()  # learns that /zero is not storable
            fake.requests.clear()
            started = time.monotonic()
            statuses = await asyncio.gather(*(one() for _ in range(10)))
            elapsed = time.monotonic() - started
        assert statuses == [200] * 10
        # In parallel: about one delay, not ten in a row.
        assert elapsed < 4 * 0.4, elapsed
        assert fake.requests["/zero"] == 10
    finally:
        await fake.stop()


async def test_a_waiter_cancelled_as_its_flight_lands_is_cancelled() -> None:
    # Python 3.11's wait_for returned the result when the cancellation and the fetch's end
    # met in one loop turn, and the cancellation was lost: a warming worker stopped at
    # shutdown then went back to its queue and the edge never exited (found by issue 11's
    # prefetch test). Every interleaving of the two is tried here.
    for turns in range(12):
        flights: SingleFlight[int] = SingleFlight(timeout=5)
        gate = asyncio.Event()

        async def fetch(gate: asyncio.Event = gate) -> int:
            await gate.wait()
            return 1

        waiter = asyncio.ensure_future(flights.run("k", fetch))
        await asyncio.sleep(0)
        gate.set()
        for _ in range(turns):
            await asyncio.sleep(0)
        cancelled = waiter.cancel()
        try:
            await waiter
        except asyncio.CancelledError:
            continue
        assert not cancelled, f"the cancellation was lost after {turns} loop turns"
