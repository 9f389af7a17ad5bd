"""What the edge answers: cache reads (fast path and read-through) and everything else.

:meth:`EdgeHandler.read` answers a GET or HEAD of a cacheable route. A warm hit is a
memoised path parse, one memory look-up, a freshness comparison and pre-encoded header
bytes, answered synchronously; anything else returns a coroutine (tiers, fetches,
revalidation) that is handed what that look-up found, so that a request is looked up, and
counted for admission, once. :meth:`EdgeHandler.handle` is aiohttp's handler, for the connections the
front hands over: writes, local endpoints, the pass-through, and any request after them
on the same connection.

Errors become the JSON body of DESIGN §3 in :mod:`.responses`, and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from aiohttp import web

from eghact_common import openapi
from eghact_common.bodies import read_body
from eghact_common.errors import EghactError, MethodNotAllowed, RateLimited
from eghact_common.wire import ABBREVIATED_TYPE

from . import hints, responses, routes
from .cache import HIT_MEM, Seen
from .entry import Entry
from .hints import parse_body, parse_header
from .metrics import PROMETHEUS_CONTENT_TYPE
from .node import EdgeNode
from .readthrough import MIN_SEQ_HEADER, Reply
from .responses import Outgoing
from .target import check_method, origin_form

log = logging.getLogger("eghact.edge")

_MIN_SEQ = MIN_SEQ_HEADER.lower()


class EdgeHandler:
    def __init__(self, node: EdgeNode):
        self.node = node
        self.routes = node.routes
        self._memory = node.memory
        self._cache = node.cache
        self._feed = node.follower
        self._clock = node.clock
        self._popularity = node.popularity
        self._limiter = node.limiter
        self._reporter = node.reporter
        self._openapi_json = openapi.to_json(openapi.edge_document())
        # The paths the edge answers itself, whatever the method: its router, in effect.
        # The edge's OpenAPI document lists exactly these beside the origin's (a test checks).
        self.local: dict[str, Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]] = {
            "/-/health": self._health, "/-/metrics": self._metrics, "/-/v1/prefetch": self._prefetch,
            openapi.PATH: self._openapi,
        }

    def read(self, route: routes.Route, headers: Mapping[str, str],
             remote: str) -> Outgoing | Coroutine[Any, Any, Outgoing]:
        """A GET or HEAD of ``route`` (its kind is not None). ``headers`` answers lower-case
        names. An answer when it is ready now (a fresh memory hit, an error), else a
        coroutine that produces it."""
        try:
            if self._limiter.enabled:
                self._take_token(remote)
            abbreviated = ABBREVIATED_TYPE in headers.get("accept", "")
            key = route.cache_key(abbreviated)
            self._popularity.hit(key)
            hint = headers.get("eghact-prefetch")
            if hint:
                self.node.hints.accept(remote, parse_header(hint))
            # The request's one look-up, counted once for admission; the read-through below
            # is handed what it found and only peeks (see cache.py).
            entry = self._memory.lookup(key)
            if entry is not None and "authorization" not in headers and _MIN_SEQ not in headers:
                timing = entry.timing
                now = self._clock()
                if timing.stored_at >= self._cache.stale_before \
                        and now < timing.fresh_until(self._feed.lifetime):
                    return self._serve(entry, HIT_MEM, now, headers)
            return self._read(route, key, abbreviated, headers, Seen(entry, self._cache.generation()))
        except EghactError as error:
            return responses.from_error(error)

    def _take_token(self, remote: str) -> None:
        wait = self._limiter.take(remote)
        if wait:
            self._reporter.rate_limited()
            raise RateLimited("too many requests from this client", retry_after=wait)

    def _serve(self, entry: Entry, result: str, now: float, headers: Mapping[str, str], *,
               private: bool = False) -> Outgoing:
        out = responses.from_entry(entry, result, now, headers, private=private)
        self._reporter.served(result, len(out.body))
        return out

    async def _read(self, route: routes.Route, key: str, abbreviated: bool, headers: Mapping[str, str],
                    seen: Seen) -> Outgoing:
        try:
            min_seq = None
            if _MIN_SEQ in headers:
                try:
                    min_seq = int(headers[_MIN_SEQ])
                except ValueError:
                    min_seq = None
            reply = await self.node.readthrough.get(route, key, abbreviated=abbreviated,
                                                    authorization=headers.get("authorization"), min_seq=min_seq,
                                                    seen=seen)
            return self._reply(reply, headers)
        except EghactError as error:
            return responses.from_error(error)
        except Exception:
            log.exception("unhandled error reading %s", key)
            return responses.from_error(EghactError("internal error; the incident is logged"))

    def _reply(self, reply: Reply, headers: Mapping[str, str]) -> Outgoing:
        if reply.entry is not None:
            return self._serve(reply.entry, reply.result, self._clock(), headers, private=reply.private)
        if reply.passthrough is None:
            raise EghactError("a reply without a body")
        self._reporter.served("PASS", len(reply.passthrough.body))
        return responses.from_upstream(reply.passthrough, reply.result)

    # -- aiohttp, for the connections the front hands over ---------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            # First, whatever the path: nothing below may see a target that names another
            # host, or a method that would tunnel or reflect (issue 11).
            check_method(request.method)
            origin_form(request.raw_path)
            if request.method in ("GET", "HEAD"):
                route = self.routes.get(request.raw_path)
                if route.kind is not None:
                    answer = self.read(route, request.headers, request.remote or "?")
                    if not isinstance(answer, Outgoing):
                        answer = await answer
                    return responses.to_web(answer)
            if self._limiter.enabled:
                self._take_token(request.remote or "?")
            return await self._other(request)
        except EghactError as error:
            return responses.to_web(responses.from_error(error))
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return responses.to_web(responses.from_error(EghactError("internal error; the incident is logged")))

    async def _other(self, request: web.BaseRequest) -> web.StreamResponse:
        local = self.local.get(request.path)
        if local is not None:
            return await local(request)
        # Writes (purged locally before answering), credentialed and uncached requests.
        return await self.node.proxy.forward(request)

    # -- the edge's own endpoints (self.local); everything else goes upstream ----------------

    async def _health(self, request: web.BaseRequest) -> web.StreamResponse:
        return responses.to_web(responses.from_json(self.node.health_summary()))

    async def _metrics(self, request: web.BaseRequest) -> web.StreamResponse:
        out = web.Response(body=self.node.reporter.exposition())
        out.headers["Content-Type"] = PROMETHEUS_CONTENT_TYPE
        out.headers["Cache-Control"] = "no-store"
        return out

    async def _prefetch(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method != "POST":
            raise MethodNotAllowed("POST a list of names to /-/v1/prefetch")
        raw = await read_body(request, hints.MAX_BODY_BYTES)
        accepted = self.node.hints.accept(request.remote or "?", parse_body(raw))
        return responses.to_web(responses.from_json(accepted, status=202))

    async def _openapi(self, request: web.BaseRequest) -> web.StreamResponse:
        out = web.Response(body=self._openapi_json, content_type="application/json")
        out.headers["Cache-Control"] = "no-store"
        return out
