"""Reading a seq range of an origin's changes feed, the next page fetched while one is parsed.

A full export starts by reading the whole feed (tens of thousands of events, a few pages), and
nothing else can start before it ends: read one page at a time, the origin serialises a page
while the exporter waits, then the exporter parses it while the origin waits. The next page
starts where this one ends, which is only known once it has arrived — but an origin's seqs are
dense (one per change, never skipped), so the page after ``since`` is guessed to start at
``since + PAGE`` and asked for at once. A page that ends anywhere else (a gap: a filtered
mirror's feed, or events beyond a private filter) sends the reader back to where it really
ended, and the guesses are dropped: a guess costs at most a wasted read, never a wrong event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from .client import OriginClient

PAGE = 10_000
AHEAD = 2  # pages in flight: one being parsed here, one being serialised at the origin

Events = list[dict[str, Any]]


async def pages(client: OriginClient, since: int, until: int) -> AsyncIterator[Events]:
    """The feed's pages after ``since``, in order, until a page reaches ``until`` (its events
    may go beyond: the caller filters) or the origin has no more."""
    cursor = since
    ahead: deque[tuple[int, asyncio.Future[tuple[Events, int]]]] = deque()
    try:
        while cursor < until:
            while len(ahead) < AHEAD:
                start = ahead[-1][0] + PAGE if ahead else cursor
                if start >= until:
                    break
                ahead.append((start, asyncio.ensure_future(client.changes(start, PAGE))))
            _, fetching = ahead.popleft()
            events, last = await fetching
            yield events
            if last <= cursor:
                return  # the origin has no more, even though its head said so: take what there is
            cursor = last
            if ahead and ahead[0][0] != cursor:
                _drop(ahead)
    finally:
        _drop(ahead)


def _drop(ahead: deque[tuple[int, asyncio.Future[tuple[Events, int]]]]) -> None:
    while ahead:
        _, fetching = ahead.popleft()
        fetching.cancel()
        if fetching.done() and not fetching.cancelled():
            with contextlib.suppress(Exception):
                fetching.exception()  # retrieved, so that asyncio does not log a guess that failed
