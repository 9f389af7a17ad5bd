"""Small service endpoints: search, npm audit, whoami, ping, health, metrics, the OpenAPI document."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from aiohttp import web

from eghact_common import semver, wire
from eghact_common.blocking import run_blocking
from eghact_common.bodies import parse_json, read_body
from eghact_common.errors import AuthRequired, Forbidden, InvalidJson
from eghact_common.protocol import PROTOCOL

from ..metrics import PROMETHEUS_CONTENT_TYPE
from ..storage import Advisory, SearchQuery
from ..storage.search import parse_text
from .appkeys import ACCESS, NOTIFIER, OPENAPI, PRINCIPAL, REGISTRY, REPORTER, ROUTE, SETTINGS, UPLINKS
from .changes import _int_param
from .responses import cacheable, dumps, json_ok

# npm sends every installed name with its versions: tens of thousands of packages fit in 8 MiB.
AUDIT_MAX_BODY_BYTES = 8 << 20


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
    access, principal = request.app[ACCESS], request[PRINCIPAL]
    # What the caller may not read is left out by the query itself, so that the total
    # counts only what it may see (a total of hidden hits told which words they contain).
    query = parse_text(q.get("text", ""), replace(query, names=access.name_filter(principal)))
    total, hits = await request.app[REGISTRY].store.search(query)
    objects = []
    for hit in hits:
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
    """npm audit: ``{name: [versions]}`` -> ``{name: [advisory, ...]}`` for the versions hit.

    At most AUDIT_MAX_BODY_BYTES of JSON (after aiohttp has undone ``Content-Encoding: gzip``);
    parsing and matching the versions run off the event loop: both grow with the body."""
    request[ROUTE] = "audit"
    raw = await read_body(request, AUDIT_MAX_BODY_BYTES, "an audit request")
    body = await run_blocking(parse_json, raw, what="the audit body")
    if not isinstance(body, dict) or not all(isinstance(v, list) for v in body.values()):
        raise InvalidJson("the audit body must be JSON {name: [versions]}")
    access, principal = request.app[ACCESS], request[PRINCIPAL]
    names = [n for n in body if isinstance(n, str)
             and (not access.is_private(n) or (principal and principal.can_read(n)))]
    found = await request.app[REGISTRY].store.advisories_for(names)
    return json_ok(await run_blocking(_audit_report, found, body))


def _audit_report(found: list[Advisory], body: dict[str, list[object]]) -> dict[str, list[dict[str, object]]]:
    report: dict[str, list[dict[str, object]]] = {}
    for advisory in found:
        versions = [v for v in body[advisory.name] if isinstance(v, str)]
        if any(semver.satisfies(v, advisory.vulnerable_versions) for v in versions):
            report.setdefault(advisory.name, []).append(advisory.to_npm())
    return report


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
    """Counts and seqs of what the caller may see: in the public numbering, without private
    packages, for a caller who may read none (``storage/public_feed.py``)."""
    request[ROUTE] = "health"
    store, access, principal = request.app[REGISTRY].store, request.app[ACCESS], request[PRINCIPAL]
    public = access.public_view(principal)
    stats = await store.stats(access.name_filter(principal), public=public)
    notifier = request.app[NOTIFIER]
    uplinks = request.app.get(UPLINKS)
    upstream = uplinks.health() if uplinks is not None else None
    body = {
        "status": "degraded" if upstream and upstream["degraded"] else "ok", "role": "origin",
        "protocol": str(PROTOCOL),
        "registry_id": await store.public_registry_id() if public else store.registry_id,
        "read_only": request.app[SETTINGS].read_only, "seq": stats["seq"],
        "notifier_seq": notifier.last_public_seq if public else notifier.last_seq,
        "packages": stats["packages"], "versions": stats["versions"],
    }
    if upstream is not None:
        body["uplinks"] = {"serving_stale": upstream["serving_stale"], "refresh": upstream["refresh"],
                           "states": {name: u["state"] for name, u in upstream["uplinks"].items()}}
        if principal is not None and principal.is_admin:  # URLs and errors are the operator's
            body["uplinks"]["detail"] = upstream["uplinks"]
    return json_ok(body)


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text. With private scopes it needs an admin token: its counters (publishes,
    the change seq, reads by route and status) count private activity too."""
    request[ROUTE] = "metrics"
    access, principal = request.app[ACCESS], request[PRINCIPAL]
    if access.private_scopes and not (principal and principal.is_admin):
        if principal is None:
            raise AuthRequired("metrics count private activity here: an admin token is required")
        raise Forbidden(f"metrics count private activity here; {principal.name!r} is not admin")
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
