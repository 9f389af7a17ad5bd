"""``/-/package/{name}/dist-tags[/{tag}]``: what ``npm dist-tag ls|add|rm`` speaks."""

from __future__ import annotations

from aiohttp import web

from eghact_common import wire
from eghact_common.bodies import parse_json, read_body
from eghact_common.errors import AuthRequired, InvalidJson, MethodNotAllowed, NotFound

from .appkeys import ACCESS, PRINCIPAL, REGISTRY, ROUTE
from .paths import package_path, raw_segments
from .responses import cacheable, dumps, json_ok

MAX_BODY_BYTES = 4096  # a JSON string naming a version


async def dispatch(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "dist-tags"
    segments = raw_segments(request.raw_path)[2:]  # drop "-", "package"
    path = package_path(segments)
    if not path.rest or path.rest[0] != "dist-tags" or len(path.rest) > 2:
        raise NotFound("expected /-/package/{name}/dist-tags[/{tag}]")
    registry = request.app[REGISTRY]
    principal = request[PRINCIPAL]
    tag = path.rest[1] if len(path.rest) == 2 else None
    if request.method in ("GET", "HEAD"):
        request.app[ACCESS].check_read(principal, path.name)
        tags = await registry.store.dist_tags(path.name)
        if tag is not None:
            if tag not in tags:
                raise NotFound(f"{path.name} has no dist-tag {tag!r}")
            body = dumps(tags[tag])
        else:
            body = dumps(tags)
        return cacheable(request, body, content_class="dist-tags", surrogate_keys=[wire.package_key(path.name)],
                         private=request.app[ACCESS].is_private(path.name))
    if tag is None:
        raise MethodNotAllowed("name the tag: /-/package/{name}/dist-tags/{tag}")
    if request.method in ("PUT", "POST"):
        if principal is None:  # before reading the body: nothing is read for an anonymous client
            raise AuthRequired("moving a dist-tag needs a token (Authorization: Bearer ...)")
        version = parse_json(await read_body(request, MAX_BODY_BYTES, "a dist-tag body"), what="the dist-tag body")
        if not isinstance(version, str):
            raise InvalidJson("the body must be a JSON string naming a version")
        event = await registry.set_dist_tag(principal, path.name, tag, version)
    elif request.method == "DELETE":
        event = await registry.set_dist_tag(principal, path.name, tag, None)
    else:
        raise MethodNotAllowed(f"{request.method} is not supported on dist-tags")
    return json_ok({"ok": True, "id": path.name, "seq": event.seq}, status=201 if request.method != "DELETE" else 200)
