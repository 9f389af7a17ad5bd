"""Issue 11 item 7 (the origin's part): an SSE follower starting from seq 0 is fed from the
database in pages of bounded size, and still gets every event, in order."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path

import aiohttp

from eghact_common import wire
from eghact_origin.http.appkeys import REGISTRY

from ..conftest import start_origin

EVENTS = 1234
PAGE = 50


async def read_sse(session: aiohttp.ClientSession, url: str, until: int,
                   headers: dict[str, str] | None = None) -> list[tuple[int, dict]]:
    """(id, data) of every event of the stream up to seq ``until``."""
    got: list[tuple[int, dict]] = []
    seq = None
    async with session.get(url, headers=headers) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "text/event-stream"
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("data: "):
                got.append((seq, json.loads(line[6:])))
                if seq == until:
                    return got
    raise AssertionError(f"the stream ended after {len(got)} events")


async def test_sse_from_zero_reads_pages_of_bounded_size_and_sends_every_event_in_order(tmp_path: Path) -> None:
    runner, url = await start_origin(tmp_path / "data", feed_page_events=PAGE)
    try:
        store = runner.app[REGISTRY].store

        def fill(conn: sqlite3.Connection) -> None:
            for i in range(EVENTS):
                store.append_event(conn, wire.PUBLISH, f"pkg-{i % 97}", f"1.0.{i}", [f"pkg:pkg-{i % 97}"],
                                   "2026-01-01T00:00:00.000Z", {"n": i})

        await store.write(fill)
        async with aiohttp.ClientSession() as session:
            events = await asyncio.wait_for(read_sse(session, f"{url}/-/v1/changes?feed=sse&since=0", EVENTS), 30)
            assert [seq for seq, _ in events] == list(range(1, EVENTS + 1))
            assert all(data["seq"] == seq and data["n"] == seq - 1 for seq, data in events)

            # A follower that resumes mid-page starts right after its seq.
            resumed = await asyncio.wait_for(read_sse(session, f"{url}/-/v1/changes?feed=sse", EVENTS,
                                                      headers={"Last-Event-ID": "617"}), 30)
            assert [seq for seq, _ in resumed] == list(range(618, EVENTS + 1))
            async with session.get(f"{url}/-/metrics") as response:
                metrics = await response.text()
        count = float(re.search(r"^eghact_origin_feed_page_events_count (\S+)$", metrics, re.M).group(1))
        within = float(re.search(r'^eghact_origin_feed_page_events_bucket\{le="50.0"\} (\S+)$', metrics, re.M)
                       .group(1))
        # Every page the stream read held at most PAGE events: 1234 events took at least 25 reads per stream.
        assert count >= EVENTS / PAGE and within == count
    finally:
        await runner.cleanup()
