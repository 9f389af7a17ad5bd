"""Long-lived pass-through: clients' long-polls and SSE streams, forwarded to the upstream.

Each one holds an upstream connection for as long as the client keeps it open (a long-poll
up to its ``timeout``, a stream for ever), so they are budgeted apart from everything else:

* they use their own connection pool (:data:`.upstream.STREAM`), so cache fills, writes and
  the edge's own feed follower never wait behind them;
* at most ``total`` at once (beyond: 503 ``streams_exhausted``) and ``per_client`` per
  client address (beyond: 429 ``too_many_streams``), both with ``Retry-After``, refused at
  once rather than queued: a queued long-poll would wait for another long-poll to end;
* a long-poll's ``timeout=`` is capped when it is forwarded: the client asked for a wait,
  not for our connection for five minutes. The capped answer is an ordinary empty page,
  and every feed client polls again after one.

The client's disconnect cancels the handler (``handler_cancellation`` in :mod:`.front_serving`),
which closes the upstream request and gives its slot back at once.

When the edge stops, :meth:`StreamBudget.close` ends every one of them at once: they have
no end of their own, so waiting for them held a stopping edge for its whole shutdown
timeout and then some (10.4 s measured with one child edge and one client following the
feed through it). A stream already answering ends as a stream ends (its client resumes
with ``Last-Event-ID``); a long-poll not answered yet gets 503 ``edge_stopping``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping

from yarl import URL

from .errors import StreamsClosed, StreamsExhausted, TooManyStreams

SSE, LONGPOLL = "sse", "longpoll"
# The origin's own default wait when a long-poll names no timeout (milliseconds).
DEFAULT_LONGPOLL_MS = 30_000
RETRY_AFTER = 5.0   # seconds: a slot frees when a long-poll ends, within the capped timeout


def long_lived(query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """SSE or LONGPOLL when a request will hold its connection open, else None."""
    feed = query.get("feed")
    if feed == SSE or "text/event-stream" in headers.get("Accept", ""):
        return SSE
    if feed == LONGPOLL:
        return LONGPOLL
    return None


def capped_longpoll(rel_url: URL, cap_ms: int) -> tuple[URL, int]:
    """``rel_url`` with its ``timeout`` at most ``cap_ms`` (set to the cap or the origin's
    default when absent), and the wait in milliseconds. A ``timeout`` that is not an
    integer is left for the upstream to refuse (400)."""
    raw = rel_url.query.get("timeout")
    try:
        asked = DEFAULT_LONGPOLL_MS if raw is None or raw == "" else int(raw)
    except ValueError:
        return rel_url, cap_ms
    if asked <= cap_ms and raw is not None:
        return rel_url, max(asked, 0)
    wait = min(asked, cap_ms)
    return rel_url.update_query(timeout=str(wait)), wait


class StreamBudget:
    """Counts long-lived requests in flight, in total and per client, and ends them all
    when the edge stops."""

    def __init__(self, *, total: int, per_client: int):
        self.total = total
        self.per_client = per_client
        self.open = 0
        self._by_client: Counter[str] = Counter()
        # One deadline per request held, moved to "now" by close(): asyncio.timeout cancels
        # whatever the request awaits (the upstream's head, its next chunk) and un-cancels
        # the task after, which a bare task.cancel() from outside could not do cleanly.
        self._deadlines: set[asyncio.Timeout] = set()
        self.closed = False

    @contextlib.asynccontextmanager
    async def hold(self, client: str) -> AsyncIterator[None]:
        """One slot for ``client`` while the block runs; raises when there is none, and
        StreamsClosed out of the block when :meth:`close` cut it short."""
        if self.closed:
            raise StreamsClosed("this edge is stopping", retry_after=RETRY_AFTER)
        if self._by_client[client] >= self.per_client:
            raise TooManyStreams(f"at most {self.per_client} long-polls or streams per client",
                                 retry_after=RETRY_AFTER, detail={"per_client": self.per_client})
        if self.open >= self.total:
            raise StreamsExhausted("this edge's long-poll and stream budget is in use; retry later",
                                   retry_after=RETRY_AFTER, detail={"total": self.total})
        self.open += 1
        self._by_client[client] += 1
        deadline = asyncio.timeout(None)
        try:
            async with deadline:
                self._deadlines.add(deadline)
                yield
        except TimeoutError:
            if not deadline.expired():
                raise   # not ours: an upstream time limit, already translated where it arose
            raise StreamsClosed("this edge is stopping", retry_after=RETRY_AFTER) from None
        finally:
            self._deadlines.discard(deadline)
            self.open -= 1
            self._by_client[client] -= 1
            if not self._by_client[client]:
                del self._by_client[client]

    def close(self) -> None:
        """End every long-lived request now and refuse new ones (the edge is stopping)."""
        self.closed = True
        now = asyncio.get_running_loop().time()
        for deadline in self._deadlines:
            deadline.reschedule(now)
