"""Pass-through to the upstream: writes, credentialed non-cacheable requests, and every
path the edge does not cache (whoami, audit, the changes feed for child edges, ...).

Bodies are read whole up to the request limit (publishes are tens of MB at most) and
responses are streamed back, so a child edge can follow the origin's SSE feed through
its parent. Read-your-writes: after a successful write, the affected package's keys are
purged here and the follower catches up with the feed *before* the client gets its
answer, so the next read through this edge sees the write.

A lockfile answered to ``POST /-/v1/resolve`` is read whole and its URLs are rewritten to
this edge's public URL, as a resolution read through the cache is (``fill``): the client
asked this edge, so the lockfile sends its installs here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from eghact_common import wire
from eghact_common.errors import PayloadTooLarge, UpstreamUnavailable

from . import keys
from .fill import rewrite_lockfile
from .upstream import HttpUpstream

log = logging.getLogger("eghact.edge")

_HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Content-Encoding"))
# Writes that are reads in disguise (npm search and audit are POSTs that change nothing).
_SAFE_POSTS = ("/-/v1/search", "/-/npm/v1/security/", "/-/v1/prefetch", "/-/v1/resolve", "/-/v1/batch")
WRITE_METHODS = frozenset({"PUT", "DELETE", "POST", "PATCH"})
RESOLVE_PATH = "/-/v1/resolve"


def is_write(method: str, path: str) -> bool:
    return method in WRITE_METHODS and not path.startswith(_SAFE_POSTS)


def written_tags(raw_path: str) -> list[str]:
    """The surrogate keys a write to ``raw_path`` may change (the feed says exactly which)."""
    path = raw_path.split("?", 1)[0]
    if path.startswith("/-/package/"):
        route = keys.parse(path)
        return [route.tag] if route.tag else []
    if path.startswith("/-/"):
        return []
    try:
        route = keys.parse(path)
    except Exception:
        return []
    return [wire.package_key(route.name), wire.SEARCH_KEY] if route.name else []


class Proxy:
    def __init__(self, upstream: HttpUpstream, *, max_body: int, timeout: float,
                 after_write: Callable[[list[str]], Awaitable[None]], public_url: Callable[[], str]):
        self._upstream = upstream
        self._max_body = max_body
        self._timeout = timeout
        self._after_write = after_write
        self._public_url = public_url

    async def forward(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > self._max_body:
            raise PayloadTooLarge(f"request bodies are limited to {self._max_body} bytes")
        body = await request.content.read(self._max_body + 1) if request.body_exists else None
        if body is not None and len(body) > self._max_body:
            raise PayloadTooLarge(f"request bodies are limited to {self._max_body} bytes")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        streaming = "feed=sse" in request.query_string or "feed=longpoll" in request.query_string
        timeout = aiohttp.ClientTimeout(total=None if streaming else self._timeout, sock_connect=5)
        write = is_write(request.method, request.path)
        try:
            async with self._upstream.session.request(
                    request.method, self._upstream.url(request.raw_path), headers=headers, data=body,
                    timeout=timeout, allow_redirects=False) as upstream:
                if write and 200 <= upstream.status < 300:
                    payload = await upstream.read()
                    await self._after_write(written_tags(request.raw_path))
                    return web.Response(status=upstream.status, body=payload, headers=_copy(upstream))
                if request.method == "POST" and request.path == RESOLVE_PATH and upstream.status == 200:
                    payload = await rewrite_lockfile(await upstream.read(), self._public_url())
                    return web.Response(status=upstream.status, body=payload, headers=_copy(upstream))
                response = web.StreamResponse(status=upstream.status, headers=_copy(upstream))
                await response.prepare(request)
                with contextlib.suppress(ConnectionResetError, asyncio.CancelledError):
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                    await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._upstream.failed(str(exc)[:200], "connect")
            raise UpstreamUnavailable(f"upstream {self._upstream.base_url} did not answer") from exc


def _copy(upstream: aiohttp.ClientResponse) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in upstream.headers.items():
        if key.lower() not in _HOP_BY_HOP:
            out[key] = value if key not in out else out[key] + ", " + value
    out["X-Cache"] = "PASS"
    return out
