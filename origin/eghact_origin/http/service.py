"""Small service endpoints: search, npm audit, whoami, ping, health, metrics, the OpenAPI document."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiohttp import web

from eghact_common import semver, wire
from eghact_common.errors import AuthRequired, BadRequest

from ..metrics import PROMETHEUS_CONTENT_TYPE
from ..storage import SearchQuery
from ..storage.search import parse_text
from .changes import _int_param
from .keys import ACCESS, NOTIFIER, OPENAPI, PRINCIPAL, REGISTRY, REPORTER, ROUTE, SETTINGS
from .responses import cacheable, dumps, json_ok


async def search(request: web.Request) -> web.StreamResponse:
    """npm's ``/-/v1/search`` plus Eghact filters (``type``, ``capability``, ``category``,
    ``keyword``) as parameters or as ``key:value`` words in ``text``."""
    request[ROUTE] = "search"
    q = request.query
    query = SearchQuery(
        size=_int_param(request, "size", 20, low=1, high=250),
        offset=_int_param(request, "from", 0, low=0, high=100_000),
        type=q.get("type") or None, capability=q.get("capability") or None,
        category=q.get("category") or None, keywords=tuple(q.getall("keyword", [])),
    )
    query = parse_text(q.get("text", ""), query)
    total, hits = await request.app[REGISTRY].store.search(query)
    access, principal = request.app[ACCESS], request[PRINCIPAL]
    objects = []
    for hit in hits:
        if access.is_private(hit.name) and not (principal and principal.can_read(hit.name)):
            continue
        scope = hit.name.split("/")[0][1:] if hit.name.startswith("@") else "unscoped"
        objects.append({
            "package": {
                "name": hit.name, "scope": scope, "version": hit.version, "description": hit.description,
                "keywords": list(hit.keywords), "date": hit.date, "links": {},
                "publisher": {"username": "eghact"}, "maintainers": [], "eghact": hit.summary,
            },
            "score": {"final": hit.score, "detail": {"quality": 1.0, "popularity": 1.0, "maintenance": 1.0}},
            "searchScore": hit.score,
        })
    body = {"objects": objects, "total": total, "time": datetime.now(UTC).isoformat()}
    return cacheable(request, dumps(body), content_class="search", surrogate_keys=[wire.SEARCH_KEY],
                     private=bool(access.private_scopes))


async def advisories_bulk(request: web.Request) -> web.StreamResponse:
    """npm audit: ``{name: [versions]}`` -> ``{name: [advisory, ...]}`` for the versions hit."""
    request[ROUTE] = "audit"
    try:
        body = json.loads(await request.read())  # aiohttp has already undone Content-Encoding: gzip
    except ValueError as exc:
        raise BadRequest("the audit body must be JSON {name: [versions]}", code="invalid_json") from exc
    if not isinstance(body, dict) or not all(isinstance(v, list) for v in body.values()):
        raise BadRequest("the audit body must be JSON {name: [versions]}", code="invalid_json")
    access, principal = request.app[ACCESS], request[PRINCIPAL]
    names = [n for n in body if isinstance(n, str)
             and (not access.is_private(n) or (principal and principal.can_read(n)))]
    found = await request.app[REGISTRY].store.advisories_for(names)
    report: dict[str, list[dict[str, object]]] = {}
    for advisory in found:
        versions = [v for v in body[advisory.name] if isinstance(v, str)]
        if any(semver.satisfies(v, advisory.vulnerable_versions) for v in versions):
            report.setdefault(advisory.name, []).append(advisory.to_npm())
    return json_ok(report)


async def whoami(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "whoami"
    principal = request[PRINCIPAL]
    if principal is None:
        raise AuthRequired("not logged in: send a token")
    return json_ok({"username": principal.name, "scopes": list(principal.scopes)})


async def ping(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "ping"
    return json_ok({})


async def health(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "health"
    store = request.app[REGISTRY].store
    stats = await store.stats()
    return json_ok({
        "status": "ok", "role": "origin", "registry_id": store.registry_id,
        "read_only": request.app[SETTINGS].read_only, "seq": stats["seq"],
        "notifier_seq": request.app[NOTIFIER].last_seq, "packages": stats["packages"], "versions": stats["versions"],
    })


async def metrics(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "metrics"
    reporter = request.app[REPORTER]
    reporter.set_seq(request.app[NOTIFIER].last_seq)
    response = web.Response(body=reporter.exposition())
    response.headers["Content-Type"] = PROMETHEUS_CONTENT_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response


async def openapi(request: web.Request) -> web.StreamResponse:
    """The origin's OpenAPI document (``eghact_common.openapi``)."""
    request[ROUTE] = "openapi"
    response = web.Response(body=request.app[OPENAPI], content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
