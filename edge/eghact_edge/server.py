"""The edge's HTTP front: aiohttp's low-level server and a tiny manual dispatcher.

No router and no middleware: a warm hit is a memoised path parse, one memory look-up, a
freshness comparison and a copy of a pre-built header template (measured: aiohttp's
application layer costs about a quarter of the throughput of a hit). Everything else
(tier look-ups, fetches, local endpoints, the pass-through) is the slow path.

Errors are turned into the JSON body of DESIGN §3 in exactly one place, :meth:`handle`.
"""

from __future__ import annotations

import json
import logging

from aiohttp import web

from eghact_common.cache_policy import etag_matches
from eghact_common.errors import EghactError, MethodNotAllowed, RateLimited

from . import keys
from .cache import HIT_MEM
from .encoding import choose
from .entry import Entry
from .errors import TooManyWaiters
from .metrics import PROMETHEUS_CONTENT_TYPE
from .node import EdgeNode
from .readthrough import MIN_SEQ_HEADER, Reply

log = logging.getLogger("eghact.edge")

_ABBREVIATED = keys.ABBREVIATED_TYPE
_PASSED_HEADERS = ("Content-Type", "Cache-Control", "WWW-Authenticate", "ETag", "Retry-After", "Vary",
                   "Surrogate-Key", "Eghact-Seq")


def error_response(error: EghactError) -> web.Response:
    response = web.Response(body=json.dumps(error.to_body()).encode(), status=error.status,
                            content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(max(1, round(error.retry_after + 0.49)))
    elif isinstance(error, TooManyWaiters):
        response.headers["Retry-After"] = "1"
    return response


class EdgeHandler:
    def __init__(self, node: EdgeNode):
        self.node = node
        self._memory = node.memory
        self._cache = node.cache
        self._feed = node.follower
        self._clock = node.clock
        self._routes = node.routes
        self._popularity = node.popularity
        self._limiter = node.limiter
        self._reporter = node.reporter

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            method = request.method
            if self._limiter.enabled:
                wait = self._limiter.take(request.remote or "?")
                if wait:
                    self._reporter.rate_limited()
                    raise RateLimited("too many requests from this client", retry_after=wait)
            if method == "GET" or method == "HEAD":
                route = self._routes.get(request.raw_path)
                if route.kind is not None:
                    headers = request.headers
                    abbreviated = _ABBREVIATED in headers.get("Accept", "")
                    key = route.cache_key(abbreviated)
                    self._popularity.hit(key)
                    if "Authorization" not in headers and MIN_SEQ_HEADER not in headers:
                        entry = self._memory.lookup(key)
                        if entry is not None:
                            timing = entry.timing
                            now = self._clock()
                            if timing.stored_at >= self._cache.stale_before \
                                    and now < timing.fresh_until(self._feed.lifetime):
                                return self.respond(request, entry, HIT_MEM, now)
                    return await self._read(request, route, key, abbreviated)
            return await self._other(request)
        except EghactError as error:
            return error_response(error)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(EghactError("internal error; the incident is logged"))

    def respond(self, request: web.BaseRequest, entry: Entry, result: str, now: float,
                *, private: bool = False) -> web.Response:
        headers = request.headers
        encoding = choose(headers.get("Accept-Encoding"), entry.bodies) or "identity"
        out = web.Response(headers=entry.template(encoding))
        out_headers = out.headers
        out_headers["Age"] = str(int(entry.timing.age(now)))
        out_headers["X-Cache"] = result
        if private:
            out_headers["Vary"] = "Accept, Accept-Encoding, Authorization"
        inm = headers.get("If-None-Match")
        if inm and etag_matches(inm, entry.etag):
            out.set_status(304)
            del out_headers["Content-Type"]
            out_headers.pop("Content-Encoding", None)
        else:
            body = entry.bodies[encoding]
            out.body = body
            self._reporter.served(result, len(body))
        return out

    async def _read(self, request: web.BaseRequest, route: keys.Route, key: str,
                    abbreviated: bool) -> web.StreamResponse:
        headers = request.headers
        min_seq = None
        if MIN_SEQ_HEADER in headers:
            try:
                min_seq = int(headers[MIN_SEQ_HEADER])
            except ValueError:
                min_seq = None
        hint = headers.get("Eghact-Prefetch")
        if hint:
            from .hints import parse_header

            self.node.hints.accept(request.remote or "?", parse_header(hint))
        reply = await self.node.readthrough.get(route, key, abbreviated=abbreviated,
                                                authorization=headers.get("Authorization"), min_seq=min_seq)
        return self._reply(request, reply)

    def _reply(self, request: web.BaseRequest, reply: Reply) -> web.StreamResponse:
        if reply.entry is not None:
            return self.respond(request, reply.entry, reply.result, self._clock(), private=reply.private)
        upstream = reply.passthrough
        if upstream is None:
            raise EghactError("a reply without a body")
        out = web.Response(status=upstream.status, body=upstream.body)
        for name in _PASSED_HEADERS:
            if name in upstream.headers:
                out.headers[name] = upstream.headers[name]
        out.headers["X-Cache"] = reply.result
        self._reporter.served("PASS", len(upstream.body))
        return out

    async def _other(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path == "/-/health":
            return _json(self.node.health_summary())
        if path == "/-/metrics":
            out = web.Response(body=self.node.reporter.exposition())
            out.headers["Content-Type"] = PROMETHEUS_CONTENT_TYPE
            out.headers["Cache-Control"] = "no-store"
            return out
        if path == "/-/v1/prefetch":
            if request.method != "POST":
                raise MethodNotAllowed("POST a list of names to /-/v1/prefetch")
            from .hints import parse_body

            raw = await request.content.read(64 * 1024)
            return _json(self.node.hints.accept(request.remote or "?", parse_body(raw)), status=202)
        # Writes (purged locally before answering), credentialed and uncached requests.
        return await self.node.proxy.forward(request)


def _json(value: object, status: int = 200) -> web.Response:
    out = web.Response(body=json.dumps(value).encode(), status=status, content_type="application/json")
    out.headers["Cache-Control"] = "no-store"
    return out
