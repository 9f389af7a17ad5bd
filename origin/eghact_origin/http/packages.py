"""Everything under ``/{name}``: packuments, version documents, tarballs, and the npm
write forms (publish, deprecate, unpublish) that share those paths.

    GET    /{name}                          packument (abbreviated with the corgi Accept)
    GET    /{name}/{version-or-tag}         one version document
    GET    /{name}/-/{file}.tgz             tarball (immutable)
    PUT    /{name}                          publish (with _attachments) or deprecate
    PUT    /{name}/-rev/{rev}               npm unpublish of some versions (admin)
    DELETE /{name}/-rev/{rev}               unpublish the whole package (admin)
    DELETE /{name}/-/{file}/-rev/{rev}      npm unpublish's tarball step (admin)
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from eghact_common import wire
from eghact_common.blocking import run_blocking
from eghact_common.bodies import parse_json
from eghact_common.errors import AuthRequired, InvalidJson, MethodNotAllowed, NotFound, Unpublished
from eghact_common.wire import ABBREVIATED_TYPE

from ..registry import Rendered
from ..storage import TarballRecord
from ..uplinks.service import UplinkService
from .appkeys import ACCESS, PRINCIPAL, REGISTRY, REPORTER, ROUTE, SETTINGS, UPLINKS
from .paths import PackagePath, package_path, raw_segments
from .responses import base_url, cacheable, json_ok


async def dispatch(request: web.Request) -> web.StreamResponse:
    path = package_path(raw_segments(request.raw_path))
    rest = path.rest
    method = request.method
    if method in ("GET", "HEAD"):
        if not rest:
            return await get_packument(request, path)
        if len(rest) == 1:
            return await get_version(request, path, rest[0])
        if len(rest) == 2 and rest[0] == "-":
            return await get_tarball(request, path, rest[1])
    elif method == "PUT":
        if not rest:
            return await put_package(request, path, allow_unpublish=False)
        if len(rest) == 2 and rest[0] == "-rev":
            return await put_package(request, path, allow_unpublish=True)
    elif method == "DELETE":
        if len(rest) == 2 and rest[0] == "-rev":
            return await delete_package(request, path)
        if len(rest) == 4 and rest[0] == "-" and rest[2] == "-rev":
            return await delete_tarball(request, path, rest[1])
    else:
        raise MethodNotAllowed(f"{method} is not supported on package paths")
    raise NotFound(f"no such resource under {path.name}")


async def get_packument(request: web.Request, path: PackagePath) -> web.StreamResponse:
    request[ROUTE] = "packument"
    access = request.app[ACCESS]
    access.check_read(request[PRINCIPAL], path.name)
    abbreviated = ABBREVIATED_TYPE in request.headers.get("Accept", "")
    registry = request.app[REGISTRY]
    uplinks = request.app.get(UPLINKS)
    if uplinks is not None:
        await uplinks.ensure(path.name)
    async with held_back(uplinks, path.name):
        rendered = await registry.packument(path.name, abbreviated=abbreviated,
                                            base_url=base_url(request, request.app[SETTINGS].public_url))
    return cacheable(request, rendered.body, **packument_caching(path.name, rendered, abbreviated=abbreviated,
                                                                private=access.is_private(path.name)))


async def get_version(request: web.Request, path: PackagePath, spec: str) -> web.StreamResponse:
    request[ROUTE] = "version"
    access = request.app[ACCESS]
    access.check_read(request[PRINCIPAL], path.name)
    uplinks = request.app.get(UPLINKS)
    if uplinks is not None:
        await uplinks.ensure(path.name)
    async with held_back(uplinks, path.name, version=spec):
        rendered = await request.app[REGISTRY].version(
            path.name, spec, base_url=base_url(request, request.app[SETTINGS].public_url))
    return cacheable(request, rendered.body,
                     **version_caching(path.name, rendered, private=access.is_private(path.name)))


async def get_tarball(request: web.Request, path: PackagePath, filename: str) -> web.StreamResponse:
    request[ROUTE] = "tarball"
    access = request.app[ACCESS]
    access.check_read(request[PRINCIPAL], path.name)
    registry = request.app[REGISTRY]
    uplinks = request.app.get(UPLINKS)
    if uplinks is None:
        record = await registry.tarball(path.name, filename)
    else:
        found: TarballRecord | None = None
        async with held_back(uplinks, path.name, filename=filename):
            try:
                found = await registry.tarball(path.name, filename)
            except Unpublished:
                raise
            except NotFound:
                pass  # not pulled yet: the uplink may have it
            record = await uplinks.tarball(path.name, filename, found)
    caching = tarball_caching(record, private=access.is_private(path.name))
    if request.headers.get("If-None-Match"):
        # Validators first: a 304 needs no disk read.
        probe = cacheable(request, b"", **caching)
        if probe.status == 304:
            return probe
    body = await run_blocking(registry.blobs.get, record.blob_digest)
    return cacheable(request, body, **caching)


@asynccontextmanager
async def held_back(uplinks: UplinkService | None, name: str, *, version: str | None = None,
                    filename: str | None = None) -> AsyncIterator[None]:
    """A read of a pulled package that found nothing because the pull policy hides what was
    asked answers 404 ``versions_held_back`` (why, and when it becomes visible), not a plain
    404 that would send a client to look elsewhere; any other NotFound goes on as it is."""
    try:
        yield
    except NotFound as missing:
        why = await uplinks.held_back(name, version=version, filename=filename) if uplinks is not None else None
        if why is None:
            raise
        raise why from missing


# The caching parameters of each read (``responses.cacheable`` / ``caching_headers``), shared
# by the single reads above and the batch read (``batch``), so both answer the same headers.

#
# ``Eghact-Seq`` of a single read is in the public numbering unless the document is private:
# a shared cache keeps a public document and hands it to anyone, whoever fetched it, so its
# headers must not depend on who that was (storage/public_feed.py).

def packument_caching(name: str, rendered: Rendered, *, abbreviated: bool, private: bool,
                      public_numbering: bool | None = None) -> dict[str, Any]:
    public_numbering = not private if public_numbering is None else public_numbering
    return {"etag": rendered.etag, "content_class": "packument",
            "content_type": ABBREVIATED_TYPE if abbreviated else "application/json", "private": private,
            "surrogate_keys": [wire.package_key(name)], "seq": rendered.seq_for(public_numbering=public_numbering),
            "vary": "Accept"}


def version_caching(name: str, rendered: Rendered, *, private: bool,
                    public_numbering: bool | None = None) -> dict[str, Any]:
    public_numbering = not private if public_numbering is None else public_numbering
    return {"etag": rendered.etag, "content_class": "version", "private": private,
            "surrogate_keys": [wire.package_key(name)], "seq": rendered.seq_for(public_numbering=public_numbering)}


def tarball_caching(record: TarballRecord, *, private: bool) -> dict[str, Any]:
    sha512 = base64.b64encode(bytes.fromhex(record.blob_digest)).decode()
    return {"etag": f'"{record.blob_digest[:40]}"', "content_class": "tarball",
            "content_type": "application/octet-stream", "private": private,
            "surrogate_keys": [wire.tarball_key(record.name, record.version)],
            "extra": {"Repr-Digest": f"sha-512=:{sha512}:", "Eghact-Integrity": record.integrity}}


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    body = await run_blocking(parse_json, raw) if len(raw) > 256 * 1024 else parse_json(raw)
    if not isinstance(body, dict):
        raise InvalidJson("the request body must be a JSON object")
    return body


async def put_package(request: web.Request, path: PackagePath, *, allow_unpublish: bool) -> web.StreamResponse:
    request[ROUTE] = "publish"
    if request[PRINCIPAL] is None:
        # Before reading the body: an anonymous client never gets 50 MB parsed for it.
        raise AuthRequired("publishing needs a token (Authorization: Bearer ...)")
    body = await _json_body(request)
    registry = request.app[REGISTRY]
    is_publish = bool(body.get("_attachments"))
    result = await registry.put_package(request[PRINCIPAL], path.name, body, allow_unpublish=allow_unpublish,
                                        takeover=request.query.get("takeover") in ("1", "true"))
    if is_publish:
        request.app[REPORTER].published(request.content_length or 0)
    return json_ok(result, status=201 if is_publish else 200)


async def delete_package(request: web.Request, path: PackagePath) -> web.StreamResponse:
    request[ROUTE] = "unpublish"
    events = await request.app[REGISTRY].unpublish(request[PRINCIPAL], path.name, None,
                                                   reason="package unpublished")
    return json_ok({"ok": True, "id": path.name, "unpublished": [e.version for e in events]})


async def delete_tarball(request: web.Request, path: PackagePath, filename: str) -> web.StreamResponse:
    request[ROUTE] = "unpublish"
    await request.app[REGISTRY].unpublish_tarball(request[PRINCIPAL], path.name, filename)
    return json_ok({"ok": True})
