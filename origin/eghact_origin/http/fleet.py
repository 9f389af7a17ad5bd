"""The fleet endpoints (issue 4): what edges report and what clients and edges read.

    GET  /-/v1/popular?limit=N   global popularity: top cache keys and packages (cacheable)
    POST /-/v1/stats             an edge's batched hit counts, for an edge id its token
                                 registered                           (scope edge)
    GET  /-/v1/edges             registered edges: region, URL, status, alive (admins: all
                                 the health an edge reports)
    POST /-/v1/edges             an edge registers or heartbeats; the id is the token's (scope edge or admin)
    GET  /-/v1/feed              the changes feed's extent: registry id, first and last seq,
                                 so a follower can tell whether it may resume from its seq
                                 (in the public numbering for a caller who may read nothing private)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from eghact_common.bodies import parse_json, read_body
from eghact_common.errors import AuthRequired, Forbidden
from eghact_common.protocol import PROTOCOL

from ..auth import Principal
from ..fleet_registry import Fleet, validate_edge, validate_hits
from .appkeys import ACCESS, PRINCIPAL, REGISTRY, ROUTE
from .changes import _int_param
from .responses import cacheable, dumps, json_ok

MAX_BODY = 8 * 1024 * 1024


def _fleet(request: web.Request) -> Fleet:
    # Stateless over the store: building one per request costs nothing.
    return Fleet(request.app[REGISTRY].store, access=request.app[ACCESS])


def _require_edge(request: web.Request, action: str, *, admin: bool = True) -> Principal:
    principal: Principal | None = request[PRINCIPAL]
    wanted = "edge or admin" if admin else "edge"
    if principal is None:
        raise AuthRequired(f"{action} needs a token with scope {wanted}")
    if not (principal.is_edge or (admin and principal.is_admin)):
        raise Forbidden(f"{action} needs scope {wanted}; {principal.name!r} has not")
    return principal


async def _json(request: web.Request) -> Any:
    return parse_json(await read_body(request, MAX_BODY))


async def popular(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "popular"
    limit = _int_param(request, "limit", 100, low=1, high=10_000)
    body = await _fleet(request).popular(limit)
    return cacheable(request, dumps(body), content_class="popular")


async def stats(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "stats"
    # Only edges count: an admin or a reader is not a cache whose hits say what is popular.
    principal = _require_edge(request, "reporting hit counts", admin=False)
    edge, hits = validate_hits(await _json(request))
    counted = await _fleet(request).record_hits(principal, edge, hits)
    return json_ok({"ok": True, **counted}, status=202)


async def list_edges(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "edges"
    principal = request[PRINCIPAL]
    return json_ok({"edges": await _fleet(request).edges(full=bool(principal and principal.is_admin))})


async def register_edge(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "edges"
    principal = _require_edge(request, "registering an edge")
    edge = await _fleet(request).register(principal, validate_edge(await _json(request)))
    return json_ok({"ok": True, "edge": edge})


async def feed_extent(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "feed"
    public = request.app[ACCESS].public_view(request[PRINCIPAL])
    # The protocol is stated here too: edges pass this document through, so a follower or a
    # resolve client behind edges learns the origin's (``eghact_common.protocol``).
    return json_ok({**await request.app[REGISTRY].store.feed_extent(public=public), "protocol": str(PROTOCOL)})
