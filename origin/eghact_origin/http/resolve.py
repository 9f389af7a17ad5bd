"""``POST /-/v1/resolve`` and ``GET /-/v1/resolutions/{hash}``.

The POST answers the lockfile (200), the explanation of a conflict (422) or the open
choices (``version=prompt``, 200 with ``"prompt": true``), and names the built result in
``Location``; the GET serves that result again, cacheable, tagged with ``res:<hash>`` and
``pkg:<name>`` for every package the resolution considered, so a publish of any of them
purges it from every cache that follows the feed.

A request is bounded (settings ``resolve_max_body_bytes``, ``resolve_max_roots``): a larger
body or more roots is refused with 413 (``payload_too_large``, ``too_many_roots``) naming the
limit, before anything is resolved or stored.
"""

from __future__ import annotations

from aiohttp import web

from eghact_common import wire
from eghact_common.bodies import parse_json, read_body
from eghact_common.errors import BadRequest

from ..resolution.service import Built
from .appkeys import ACCESS, PRINCIPAL, REGISTRY, RESOLUTIONS, ROUTE, SETTINGS
from .responses import base_url, cacheable

_HEX = frozenset("0123456789abcdef")


def _headers(built: Built) -> dict[str, str]:
    return {"Eghact-Resolution": built.hash, "Location": f"/-/v1/resolutions/{built.hash}"}


async def resolve(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "resolve"
    raw = await read_body(request, request.app[SETTINGS].resolve_max_body_bytes, "a resolve request")
    body = parse_json(raw, what="the resolve request")
    resolutions = request.app[RESOLUTIONS]
    built = await resolutions.resolve(request[PRINCIPAL], body)
    payload, _ = resolutions.rendered(built, base_url(request, request.app[SETTINGS].public_url))
    seq = built.seq
    if request.app[ACCESS].public_view(request[PRINCIPAL]):
        seq = await request.app[REGISTRY].store.public_seq_at(seq)
    response = web.Response(body=payload, status=built.status, content_type="application/json",
                            headers={**_headers(built), "Cache-Control": "no-store", "Eghact-Seq": str(seq)})
    return response


async def resolution(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "resolution"
    digest = request.match_info["hash"]
    if len(digest) != 64 or not _HEX.issuperset(digest):
        raise BadRequest("a resolution hash is 64 lowercase hex digits", code="invalid_hash")
    resolutions = request.app[RESOLUTIONS]
    built = await resolutions.fetch(request[PRINCIPAL], digest)
    payload, etag = resolutions.rendered(built, base_url(request, request.app[SETTINGS].public_url))
    keys = [wire.resolution_key(built.hash), *(wire.package_key(name) for name in built.considered)]
    private = resolutions.private(built)
    # A public answer may be kept by a shared cache: its seq is in the public numbering.
    seq = built.seq if private else await request.app[REGISTRY].store.public_seq_at(built.seq)
    response = cacheable(request, payload, etag=etag,
                         content_class="resolution" if built.status == 200 else "dynamic",
                         private=private, surrogate_keys=keys, seq=seq,
                         extra=_headers(built))
    if built.status != 200 and response.status != 304:
        response.set_status(built.status)
    return response
