"""The one seam between the edge and whatever is above it: the origin, a parent edge,
or any npm-compatible registry. Every upstream exchange of the edge goes through an
:class:`UpstreamClient` (cache fills, pass-through, the batch read, the feed, the fleet
reports); nothing else touches aiohttp's client. Tests reach it over real HTTP (a fake
registry on 127.0.0.1), never by patching.

Foreign exceptions (aiohttp's, timeouts, socket errors) are translated here, once, into
:class:`~eghact_common.errors.UpstreamUnavailable`, and counted as the upstream failing;
a 5xx is returned, not raised, so the caller can choose stale-if-error. The client also
remembers whether the upstream is up, for ``/-/health``.

Connections are held in one pool per class of work (:data:`POOLS`), each with its own
limit, so that no class can take another's: 130 anonymous long-polls once held all 128
connections of a single shared pool, and cache fills, writes and the edge's own feed
follower waited for minutes. Long-lived pass-through (feeds, SSE) has its own pool, sized
by the stream budget that :mod:`.streams` enforces per client and in total.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from eghact_common.bodies import read_limited
from eghact_common.errors import UpstreamUnavailable

from .metrics import Reporter
from .target import origin_form

# The classes of upstream work, each with its own connection pool.
FILL = "fill"        # cache fills and revalidations, warming, batch reads
WRITE = "write"      # publishes and other writes passed through
PASS = "pass"        # short pass-through reads (whoami, search, audit) and fleet reports
FEED = "feed"        # this edge's own feed follower (SSE stream and paged catch-up)
STREAM = "stream"    # long-lived pass-through: clients' long-polls and SSE streams
# Connections per pool; STREAM's comes from the stream budget (settings). The sum is about
# the 128 the one shared pool had. The follower holds one stream; every acknowledged write
# adds a short catch-up read (read-your-writes).
POOLS = {FILL: 64, WRITE: 16, PASS: 24, FEED: 8}
CONNECT_TIMEOUT = 5.0   # seconds to open a connection, whatever the exchange's own limits
# What aiohttp and the socket raise when there is no (whole) HTTP answer: translated here only.
_FOREIGN = (aiohttp.ClientError, TimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    seconds: float


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    """A GET's status and its body parsed as JSON (None when the body is not JSON)."""

    status: int
    document: Any


class UpstreamStream:
    """An upstream answer whose head has arrived and whose body is read as the caller goes:
    a pass-through response, the batch read's frames, an SSE feed. Every read translates a
    broken or silent upstream into UpstreamUnavailable (counted as a failure)."""

    def __init__(self, client: HttpUpstream, response: aiohttp.ClientResponse):
        self._client = client
        self._response = response
        self.status = response.status
        self.headers: CIMultiDictProxy[str] = response.headers

    async def read(self) -> bytes:
        """The whole remaining body (a write's answer, a lockfile), at most the client's
        ``max_body`` bytes (beyond: UpstreamUnavailable ``upstream_too_large``): only for
        answers that are documents, never for a feed."""
        try:
            body = await read_limited(self._response.content, self._client.max_body)
        except _FOREIGN as exc:
            raise self._client.unavailable(exc) from exc
        if body is None:
            raise UpstreamUnavailable("upstream body exceeds the limit", code="upstream_too_large")
        return body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in the pieces that arrive, as soon as they arrive (pass-through streaming)."""
        content = self._response.content
        while True:
            try:
                chunk = await content.readany()
            except _FOREIGN as exc:
                raise self._client.unavailable(exc) from exc
            if not chunk:
                return
            yield chunk

    async def readuntil(self, separator: bytes) -> bytes:
        """Up to and including ``separator``; less (without it) at the end of the body."""
        try:
            return await self._response.content.readuntil(separator)
        except ValueError as exc:   # aiohttp's "Chunk too big": no separator within its buffer
            raise self.broken(f"no {separator!r} where one was due") from exc
        except _FOREIGN as exc:
            raise self._client.unavailable(exc) from exc

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; UpstreamUnavailable when the body ends before."""
        try:
            return await self._response.content.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise self.broken("the upstream's answer ended early") from exc
        except _FOREIGN as exc:
            raise self._client.unavailable(exc) from exc

    async def events(self) -> AsyncIterator[str | None]:
        """An SSE body as it arrives: the data of each whole event, and None for every other
        line (a heartbeat comment, an ``id:``): a sign of life, which is what lets a follower
        vouch for freshness. Ends when the upstream ends the stream."""
        data: list[str] = []
        while True:
            try:
                line = await self._response.content.readline()
            except ValueError as exc:   # aiohttp's "Chunk too big": a line longer than its buffer
                raise self.broken("an SSE line beyond the read buffer") from exc
            except _FOREIGN as exc:
                raise self._client.unavailable(exc) from exc
            if not line:
                return
            text = line.decode().rstrip("\r\n")
            if text.startswith("data:"):
                data.append(text[5:].lstrip())
                yield None
            elif not text and data:
                yield "\n".join(data)
                data = []
            else:
                yield None

    def broken(self, message: str) -> UpstreamUnavailable:
        """The error to raise when the body is not what the exchange promised (a cut or
        malformed frame); counted as the upstream failing."""
        self._client.failed(message[:200], "connect")
        return UpstreamUnavailable(message, detail={"upstream": self._client.base_url})


class UpstreamClient(Protocol):
    """What the edge asks of its upstream. ``path`` is always origin-form and already escaped
    (anything else is refused with 400 before a connection is made); ``pool`` is one of the
    classes above. No method raises anything but UpstreamUnavailable for an upstream that
    does not answer, breaks off or stays silent past its time limit."""

    base_url: str
    timeout: float     # seconds an ordinary exchange may take
    max_body: int      # bytes: the largest body the edge takes from the upstream

    @property
    def credentialed(self) -> bool:
        """Whether the edge has a token of its own to present (fleet registration, stats)."""

    async def fetch(self, path: str, headers: Mapping[str, str], *, kind: str = "other",
                    pool: str = FILL) -> UpstreamResponse:
        """GET ``path`` with ``headers`` over a connection of ``pool``; the whole body, at most
        ``max_body`` bytes (beyond: UpstreamUnavailable ``upstream_too_large``) within
        ``timeout``. Cost: one request, the body held in memory. Counted under ``kind``."""

    async def get_json(self, path: str, *, kind: str, pool: str = FILL) -> JsonAnswer:
        """GET ``path`` anonymously, as :meth:`fetch` does, and parse the body as JSON
        (``document`` None when it is not JSON, whatever the status). Cost: a fetch plus a parse."""

    async def post_json(self, path: str, document: Any, *, kind: str, pool: str = PASS,
                        credentials: bool = False) -> UpstreamResponse:
        """POST ``document`` as JSON to ``path``, with the edge's own token when
        ``credentials``; the whole answer, bounded as :meth:`fetch`'s. Cost: one request."""

    def stream(self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None = None,
               pool: str, total: float | None, idle: float | None,
               kind: str | None = None) -> AbstractAsyncContextManager[UpstreamStream]:
        """Send a request and hold its answer open while the block runs; the body is read
        through the :class:`UpstreamStream`. ``total`` bounds the whole exchange and ``idle``
        the silence between two reads (None: no bound). Leaving the block early, by an
        exception or a cancellation (the client hung up), closes the upstream connection at
        once. Counted under ``kind`` when the block ends normally (None: only failures are
        counted). Cost: one connection of ``pool`` for as long as the block runs."""

    def sse(self, path: str, *, last_event_id: str, idle: float,
            pool: str = FEED) -> AbstractAsyncContextManager[UpstreamStream]:
        """Open the SSE stream at ``path``, resuming after ``last_event_id``; read it with
        :meth:`UpstreamStream.events`. No total limit; silence longer than ``idle`` (the
        upstream's heartbeats stopped) breaks it with UpstreamUnavailable. Cost: one
        connection of ``pool`` for as long as the stream lasts."""

    def health(self) -> dict[str, Any]:
        """Whether the last exchanges worked, for /-/health. Cost: nothing."""


class HttpUpstream:
    """:class:`UpstreamClient` over aiohttp, one session per pool."""

    def __init__(self, base_url: str, *, timeout: float, max_body: int, reporter: Reporter,
                 token: str | None = None, user_agent: str = "eghact-edge", streams: int = 32):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_body = max_body
        self._token = token
        self._reporter = reporter
        self._user_agent = user_agent
        self._limits = {**POOLS, STREAM: max(1, streams)}
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._up = True
        self._last_error: str | None = None
        self._last_ok: float | None = None
        self._consecutive_errors = 0

    def _session(self, pool: str) -> aiohttp.ClientSession:
        """The session whose connections belong to ``pool`` (one of :data:`POOLS` or STREAM)."""
        session = self._sessions.get(pool)
        if session is None:
            # Created lazily, on the loop that uses it.
            session = self._sessions[pool] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limits[pool], keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(self.timeout, CONNECT_TIMEOUT)),
                headers={"User-Agent": self._user_agent},
            )
        return session

    def _url(self, path: str) -> URL:
        """The upstream URL of an origin-form ``path`` (400 for any other target): appended
        to the base URL, anything else could name another host (see :mod:`.target`)."""
        # encoded=True: keep "%2f" in scoped names exactly as we spelled it.
        return URL(self.base_url + origin_form(path), encoded=True)

    @property
    def credentialed(self) -> bool:
        return bool(self._token)

    def auth_headers(self) -> dict[str, str]:
        """The edge's own credentials; only for the fleet endpoints (fills stay anonymous, so
        that a shared tier never holds what only the edge's token may read)."""
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def unavailable(self, exc: BaseException) -> UpstreamUnavailable:
        """The translation of a foreign exception, counted as the upstream failing."""
        reason = "timeout" if isinstance(exc, TimeoutError) else "connect"
        self.failed(f"{type(exc).__name__}: {exc}"[:200], reason)
        return UpstreamUnavailable(f"upstream {self.base_url} did not answer ({reason})",
                                   detail={"upstream": self.base_url})

    async def fetch(self, path: str, headers: Mapping[str, str], *, kind: str = "other",
                    pool: str = FILL) -> UpstreamResponse:
        return await self._whole("GET", path, headers, None, kind=kind, pool=pool)

    async def get_json(self, path: str, *, kind: str, pool: str = FILL) -> JsonAnswer:
        response = await self.fetch(path, {}, kind=kind, pool=pool)
        try:
            document = json.loads(response.body)
        except ValueError:   # UnicodeDecodeError is one
            document = None
        return JsonAnswer(response.status, document)

    async def post_json(self, path: str, document: Any, *, kind: str, pool: str = PASS,
                        credentials: bool = False) -> UpstreamResponse:
        headers = {"Content-Type": "application/json", **(self.auth_headers() if credentials else {})}
        return await self._whole("POST", path, headers, json.dumps(document).encode(), kind=kind, pool=pool)

    async def _whole(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None, *,
                     kind: str, pool: str) -> UpstreamResponse:
        started = time.perf_counter()
        try:
            async with self._session(pool).request(method, self._url(path), headers=dict(headers), data=body,
                                                   allow_redirects=False) as response:
                if response.content_length is not None and response.content_length > self.max_body:
                    raise UpstreamUnavailable(f"upstream body of {response.content_length} bytes exceeds the limit",
                                              code="upstream_too_large")
                got = await read_limited(response.content, self.max_body)
                if got is None:
                    raise UpstreamUnavailable("upstream body exceeds the limit", code="upstream_too_large")
                status, headers_in = response.status, response.headers
        except _FOREIGN as exc:
            raise self.unavailable(exc) from exc
        seconds = time.perf_counter() - started
        self.answered(kind, status, seconds)
        return UpstreamResponse(status, headers_in, got, seconds)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None = None,
                     pool: str, total: float | None, idle: float | None,
                     kind: str | None = None) -> AsyncIterator[UpstreamStream]:
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=CONNECT_TIMEOUT, sock_read=idle)
        started = time.perf_counter()
        # Only what the exchange itself raises is translated: what the caller's block raises
        # (its own error, a cancellation, a client that hung up) leaves as it came.
        raised: BaseException | None = None
        try:
            async with self._session(pool).request(method, self._url(path), headers=headers, data=body,
                                                   timeout=timeout, allow_redirects=False) as response:
                try:
                    yield UpstreamStream(self, response)
                except BaseException as exc:
                    raised = exc
                    raise
        except _FOREIGN as exc:
            if exc is raised:
                raise
            raise self.unavailable(exc) from exc
        if kind is not None:
            self.answered(kind, response.status, time.perf_counter() - started)

    def sse(self, path: str, *, last_event_id: str, idle: float,
            pool: str = FEED) -> AbstractAsyncContextManager[UpstreamStream]:
        return self.stream("GET", path, headers={"Accept": "text/event-stream", "Last-Event-ID": last_event_id},
                           pool=pool, total=None, idle=idle)

    def answered(self, kind: str, status: int, seconds: float) -> None:
        """Count an exchange that got an HTTP answer (a 5xx counts as the upstream failing)."""
        self._reporter.upstream_fetch(kind, status, seconds)
        if status >= 500:
            self.failed(f"HTTP {status}", "5xx")
        else:
            self.succeeded()

    def failed(self, message: str, reason: str) -> None:
        self._reporter.upstream_error(reason)
        self._consecutive_errors += 1
        self._last_error = message
        self._up = False

    def succeeded(self) -> None:
        self._up = True
        self._consecutive_errors = 0
        self._last_ok = time.time()

    @property
    def up(self) -> bool:
        return self._up

    def health(self) -> dict[str, Any]:
        return {"url": self.base_url, "state": "up" if self._up else "down", "last_error": self._last_error,
                "last_ok": self._last_ok, "consecutive_errors": self._consecutive_errors}

    async def close(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for session in sessions:
            await session.close()
        if sessions:
            # Lets the connectors' transports finish closing (no ResourceWarning).
            await asyncio.sleep(0)
