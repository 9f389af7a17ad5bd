"""Pass-through to the upstream: writes, credentialed non-cacheable requests, and every
path the edge does not cache (whoami, audit, the changes feed for child edges, ...).

Bodies are read whole up to the request limit (publishes are tens of MB at most) and
responses are streamed back, so a child edge can follow the origin's SSE feed through
its parent. Read-your-writes: after a successful write, the affected package's keys are
purged here and the follower catches up with the feed *before* the client gets its
answer, so the next read through this edge sees the write.

Each request takes its connection from the pool of its class (:mod:`.upstream`): writes,
short reads, and long-lived feeds and streams, which are also budgeted and have their
long-poll timeout capped (:mod:`.streams`). A client that hangs up cancels its handler
(:mod:`.front_serving`), and with it the upstream request, whose connection is closed at once;
a stopping edge ends them the same way, and finishes a stream already under way with a
proper end of body.

A lockfile answered to ``POST /-/v1/resolve`` is read whole and its URLs are rewritten to
this edge's public URL, as a resolution read through the cache is (:mod:`.entry_builder`): the client
asked this edge, so the lockfile sends its installs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from eghact_common import wire
from eghact_common.bodies import read_body
from eghact_common.npm_paths import SAFE_POSTS

from . import routes, streams
from .entry_builder import rewrite_lockfile
from .errors import StreamsClosed
from .streams import StreamBudget
from .upstream import PASS, STREAM, WRITE, UpstreamClient

log = logging.getLogger("eghact.edge")

# Never passed on (RFC 9110 §7.6.1), besides the fields that Connection names: hop-by-hop
# fields, the framing (aiohttp re-frames, and has already undone a request's
# Content-Encoding), and what would let a client say where a request comes from or goes
# (Host, Forwarded, X-Forwarded-*, ...): the upstream must only ever hear the edge's word.
_HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Content-Encoding", "Forwarded", "X-Real-IP",
    "X-Original-URL", "X-Rewrite-URL", "X-HTTP-Method-Override", "X-Host"))
_ROUTING_PREFIXES = ("proxy-", "x-forwarded-")
# Writes that are reads in disguise: the shared ones, the edge's own prefetch hints, and a resolve
# (it stores a resolution at the origin but changes no package, so nothing here is purged).
_SAFE_POSTS = (*SAFE_POSTS, "/-/v1/prefetch", "/-/v1/resolve")
WRITE_METHODS = frozenset({"PUT", "DELETE", "POST", "PATCH"})
# An SSE stream with nothing, not even the origin's heartbeat (every 15 s), for this long is dead.
_STREAM_IDLE = 60.0
RESOLVE_PATH = "/-/v1/resolve"


def is_write(method: str, path: str) -> bool:
    return method in WRITE_METHODS and not path.startswith(_SAFE_POSTS)


def written_tags(raw_path: str) -> list[str]:
    """The surrogate keys a write to ``raw_path`` may change (the feed says exactly which)."""
    path = raw_path.split("?", 1)[0]
    if path.startswith("/-/package/"):
        route = routes.parse(path)
        return [route.tag] if route.tag else []
    if path.startswith("/-/"):
        return []
    try:
        route = routes.parse(path)
    except Exception:
        return []
    return [wire.package_key(route.name), wire.SEARCH_KEY] if route.name else []


class Proxy:
    def __init__(self, upstream: UpstreamClient, *, max_body: int, timeout: float,
                 after_write: Callable[[list[str]], Awaitable[None]], budget: StreamBudget,
                 max_longpoll: float, public_url: Callable[[], str]):
        self._upstream = upstream
        self._max_body = max_body
        self._timeout = timeout
        self._after_write = after_write
        self._budget = budget
        self._max_longpoll_ms = int(max_longpoll * 1000)
        self._public_url = public_url

    async def forward(self, request: web.BaseRequest) -> web.StreamResponse:
        long_lived = streams.long_lived(request.query, request.headers)
        if long_lived is None:
            return await self._forward(request, None, [])
        started: list[web.StreamResponse] = []
        try:
            async with self._budget.hold(request.remote or "?"):
                return await self._forward(request, long_lived, started)
        except StreamsClosed:
            if not started:
                raise   # a long-poll not answered yet: 503 with Retry-After, asked again elsewhere
            # A stream already under way ends as a stream ends; its client resumes (an SSE
            # client with Last-Event-ID) once this edge, or another, listens again.
            with contextlib.suppress(ConnectionResetError):
                await started[0].write_eof()
            return started[0]

    async def _forward(self, request: web.BaseRequest, long_lived: str | None,
                       started: list[web.StreamResponse]) -> web.StreamResponse:
        body = await read_body(request, self._max_body) if request.body_exists else None
        headers = _end_to_end(request.headers)
        write = is_write(request.method, request.path)
        pool, total, idle, raw_path = self._plan(request, long_lived, write)
        async with self._upstream.stream(request.method, raw_path, headers=headers, body=body, pool=pool,
                                         total=total, idle=idle) as upstream:
            if write and 200 <= upstream.status < 300:
                payload = await upstream.read()
                # The upstream took the write: purge even if the client hangs up now
                # (a cancelled handler must not leave other clients the old content).
                await asyncio.shield(self._after_write(written_tags(request.raw_path)))
                return web.Response(status=upstream.status, body=payload, headers=_copy(upstream.headers))
            if request.method == "POST" and request.path == RESOLVE_PATH and upstream.status == 200:
                payload = await rewrite_lockfile(await upstream.read(), self._public_url())
                return web.Response(status=upstream.status, body=payload, headers=_copy(upstream.headers))
            response = web.StreamResponse(status=upstream.status, headers=_copy(upstream.headers))
            await response.prepare(request)
            started.append(response)
            # A client that hangs up cancels this handler: the CancelledError leaves
            # through the ``async with``, which closes the upstream connection.
            with contextlib.suppress(ConnectionResetError):
                async for chunk in upstream.chunks():
                    await response.write(chunk)
                await response.write_eof()
            return response

    def _plan(self, request: web.BaseRequest, long_lived: str | None,
              write: bool) -> tuple[str, float | None, float | None, str]:
        """The pool, the total and idle time limits, and the raw path (query included) a
        request is forwarded with."""
        if long_lived == streams.SSE:
            # No end to a stream, but a silent one is dead: its connection goes back.
            return STREAM, None, _STREAM_IDLE, request.raw_path
        if long_lived == streams.LONGPOLL:
            rel_url, wait_ms = streams.capped_longpoll(request.rel_url, self._max_longpoll_ms)
            return STREAM, wait_ms / 1000 + self._timeout, None, rel_url.raw_path_qs
        return WRITE if write else PASS, self._timeout, None, request.raw_path


def _end_to_end(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The fields of ``headers`` that may cross the edge (repeated fields kept)."""
    named = {token.strip().lower() for value in headers.getall("Connection", []) for token in value.split(",")}
    return CIMultiDict((key, value) for key, value in headers.items()
                       if (lower := key.lower()) not in _HOP_BY_HOP and lower not in named
                       and not lower.startswith(_ROUTING_PREFIXES))


def _copy(upstream_headers: CIMultiDictProxy[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in _end_to_end(upstream_headers).items():
        out[key] = value if key not in out else out[key] + ", " + value
    out["X-Cache"] = "PASS"
    return out
