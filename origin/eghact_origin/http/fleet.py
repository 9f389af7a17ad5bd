"""The fleet endpoints (issue 4): what edges report and what clients and edges read.

    GET  /-/v1/popular?limit=N   global popularity: top cache keys and packages (cacheable)
    POST /-/v1/stats             an edge's batched hit counts          (scope edge or admin)
    GET  /-/v1/edges             registered edges: region, URL, health, alive
    POST /-/v1/edges             an edge registers or heartbeats      (scope edge or admin)
    GET  /-/v1/feed              the changes feed's extent: registry id, first and last seq,
                                 so a follower can tell whether it may resume from its seq
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from eghact_common.bodies import parse_json, read_body
from eghact_common.errors import AuthRequired, Forbidden

from ..fleet import Fleet, validate_edge, validate_hits
from .changes import _int_param
from .keys import PRINCIPAL, REGISTRY, ROUTE
from .responses import cacheable, dumps, json_ok

MAX_BODY = 8 * 1024 * 1024


def _fleet(request: web.Request) -> Fleet:
    # Stateless over the store: building one per request costs nothing.
    return Fleet(request.app[REGISTRY].store)


def _require_edge(request: web.Request, action: str) -> None:
    principal = request[PRINCIPAL]
    if principal is None:
        raise AuthRequired(f"{action} needs a token with scope edge or admin")
    if not ({"edge", "admin"} & set(principal.scopes)):
        raise Forbidden(f"{action} needs scope edge or admin; {principal.name!r} has neither")


async def _json(request: web.Request) -> Any:
    return parse_json(await read_body(request, MAX_BODY))


async def popular(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "popular"
    limit = _int_param(request, "limit", 100, low=1, high=10_000)
    body = await _fleet(request).popular(limit)
    return cacheable(request, dumps(body), content_class="popular")


async def stats(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "stats"
    _require_edge(request, "reporting hit counts")
    _edge, hits = validate_hits(await _json(request))
    count = await _fleet(request).record_hits(hits) if hits else 0
    return json_ok({"ok": True, "keys": count}, status=202)


async def list_edges(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "edges"
    return json_ok({"edges": await _fleet(request).edges()})


async def register_edge(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "edges"
    _require_edge(request, "registering an edge")
    edge = await _fleet(request).register(validate_edge(await _json(request)))
    return json_ok({"ok": True, "edge": edge})


async def feed_extent(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "feed"
    return json_ok(await _fleet(request).feed_extent())
