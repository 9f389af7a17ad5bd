"""The one seam between the edge and whatever is above it: the origin, a parent edge,
or any npm-compatible registry. Tests reach it over real HTTP (a fake registry on
127.0.0.1), never by patching.

Foreign exceptions (aiohttp's, timeouts) are translated here, once, into
:class:`~eghact_common.errors.UpstreamUnavailable`; a 5xx is returned, not raised, so the
caller can choose stale-if-error. The client also remembers whether the upstream is up,
for ``/-/health``.

Connections are held in one pool per class of work (:data:`POOLS`), each with its own
limit, so that no class can take another's: 130 anonymous long-polls once held all 128
connections of a single shared pool, and cache fills, writes and the edge's own feed
follower waited for minutes. Long-lived pass-through (feeds, SSE) has its own pool, sized
by the stream budget that :mod:`.streams` enforces per client and in total.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
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


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    seconds: float


class UpstreamClient(Protocol):
    base_url: str

    async def fetch(self, path: str, headers: Mapping[str, str], *, kind: str = "other",
                    pool: str = FILL) -> UpstreamResponse:
        """GET ``path`` (raw, already escaped) with ``headers`` over a connection of ``pool``;
        the whole body, bounded in size and time. Raises UpstreamUnavailable when there is
        no HTTP answer."""

    def health(self) -> dict[str, Any]:
        """Whether the last exchanges worked, for /-/health."""


class HttpUpstream:
    def __init__(self, base_url: str, *, timeout: float, max_body: int, reporter: Reporter,
                 token: str | None = None, user_agent: str = "eghact-edge", streams: int = 32):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_body = max_body
        self.token = token
        self._reporter = reporter
        self._user_agent = user_agent
        self._limits = {**POOLS, STREAM: max(1, streams)}
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._up = True
        self._last_error: str | None = None
        self._last_ok: float | None = None
        self._consecutive_errors = 0

    def session(self, pool: str) -> aiohttp.ClientSession:
        """The session whose connections belong to ``pool`` (one of :data:`POOLS` or STREAM)."""
        session = self._sessions.get(pool)
        if session is None:
            # Created lazily, on the loop that uses it.
            session = self._sessions[pool] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limits[pool], keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(self.timeout, 5.0)),
                headers={"User-Agent": self._user_agent},
            )
        return session

    def url(self, path: str) -> URL:
        """The upstream URL of an origin-form ``path`` (400 for any other target): appended
        to the base URL, anything else could name another host (see :mod:`.target`)."""
        # encoded=True: keep "%2f" in scoped names exactly as we spelled it.
        return URL(self.base_url + origin_form(path), encoded=True)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def fetch(self, path: str, headers: Mapping[str, str], *, kind: str = "other",
                    pool: str = FILL) -> UpstreamResponse:
        started = time.perf_counter()
        try:
            async with self.session(pool).get(self.url(path), headers=dict(headers), allow_redirects=False) as response:
                if response.content_length is not None and response.content_length > self.max_body:
                    raise UpstreamUnavailable(f"upstream body of {response.content_length} bytes exceeds the limit",
                                              code="upstream_too_large")
                body = await read_limited(response.content, self.max_body)
                if body is None:
                    raise UpstreamUnavailable("upstream body exceeds the limit", code="upstream_too_large")
                status, got = response.status, response.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "connect"
            self.failed(f"{type(exc).__name__}: {exc}"[:200], reason)
            raise UpstreamUnavailable(f"upstream {self.base_url} did not answer ({reason})",
                                      detail={"upstream": self.base_url}) from exc
        seconds = time.perf_counter() - started
        self.answered(kind, status, seconds)
        return UpstreamResponse(status, got, body, seconds)

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
