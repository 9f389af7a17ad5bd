"""Reading a feed range a page ahead (``feed.pages``): against a real HTTP server on 127.0.0.1
serving a feed with dense seqs (every guess is right) and with gaps (a filtered mirror's feed:
guesses are dropped, never taken), the pages hold every event once, in order."""

from __future__ import annotations

from collections import Counter

import pytest
from aiohttp import web

from eghact_mirror import feed
from eghact_mirror.client import OriginClient


class FakeFeed:
    """``/-/v1/changes`` over a fixed list of seqs, as the origin pages it."""

    def __init__(self, seqs: list[int]):
        self.events = [{"seq": seq, "type": "publish", "name": f"p{seq}", "version": "1.0.0"} for seq in seqs]
        self.asked: Counter[int] = Counter()
        self.url = ""

    async def __aenter__(self) -> FakeFeed:
        app = web.Application()
        app.router.add_get("/-/v1/changes", self._changes)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    async def _changes(self, request: web.Request) -> web.Response:
        since, limit = int(request.query["since"]), int(request.query["limit"])
        self.asked[since] += 1
        page = [e for e in self.events if e["seq"] > since][:limit]
        return web.json_response({"results": page, "last_seq": page[-1]["seq"] if page else since})


async def _read(url: str, since: int, until: int) -> list[int]:
    async with OriginClient(url) as client:
        return [event["seq"] async for events in feed.pages(client, since, until) for event in events]


@pytest.mark.parametrize("seqs", [list(range(1, 23)), [1, 2, 5, 6, 7, 9, 14, 15, 16, 17, 30, 31, 32, 40]])
async def test_every_event_once_in_order(seqs: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed, "PAGE", 3)
    async with FakeFeed(seqs) as fake:
        assert await _read(fake.url, 0, seqs[-1]) == seqs
        dense = seqs == list(range(1, len(seqs) + 1))
        if dense:  # every guess was the page's real start: nothing read twice, nothing wasted
            assert sorted(fake.asked) == list(range(0, seqs[-1], 3)) and set(fake.asked.values()) == {1}
        fake.asked.clear()
        middle = seqs[len(seqs) // 2]
        assert await _read(fake.url, middle, seqs[-1]) == [s for s in seqs if s > middle]


async def test_an_origin_behind_its_head_ends_the_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed, "PAGE", 4)
    async with FakeFeed(list(range(1, 7))) as fake:
        assert await _read(fake.url, 0, 50) == list(range(1, 7))
