"""Building cacheable responses: validators, caching headers, 304s, JSON bodies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from eghact_common.cache_policy import POLICIES, etag_matches

from ..packument import strong_etag


def base_url(request: web.Request, public_url: str | None) -> str:
    """The base that tarball URLs in documents point at."""
    if public_url:
        return public_url.rstrip("/")
    return f"{request.scheme}://{request.host}"


def caching_headers(
    *,
    content_class: str,
    etag: str,
    content_type: str = "application/json",
    private: bool = False,
    surrogate_keys: Iterable[str] = (),
    seq: int | None = None,
    vary: str | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers of a cacheable read: validator, caching policy, surrogate keys, seq."""
    headers = {
        "Content-Type": content_type,
        "ETag": etag,
        "Cache-Control": POLICIES[content_class].header(private=private),
    }
    keys = " ".join(surrogate_keys)
    if keys:
        headers["Surrogate-Key"] = keys
    if seq is not None:
        headers["Eghact-Seq"] = str(seq)
    if vary:
        headers["Vary"] = vary
    if private:
        headers["Vary"] = ", ".join(filter(None, [vary, "Authorization"]))
    if extra:
        headers.update(extra)
    return headers


def cacheable(
    request: web.Request,
    body: bytes,
    *,
    content_class: str,
    content_type: str = "application/json",
    etag: str | None = None,
    private: bool = False,
    surrogate_keys: Iterable[str] = (),
    seq: int | None = None,
    vary: str | None = None,
    extra: dict[str, str] | None = None,
) -> web.Response:
    """A 200 (or a 304 when the client's validator matches) with every caching header."""
    etag = etag or strong_etag(body)
    headers = caching_headers(content_class=content_class, etag=etag, content_type=content_type, private=private,
                              surrogate_keys=surrogate_keys, seq=seq, vary=vary, extra=extra)
    content_type = headers.pop("Content-Type")
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    response = web.Response(body=body, headers=headers)
    response.content_type = content_type
    return response


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_ok(value: Any, *, status: int = 200) -> web.Response:
    response = web.Response(body=dumps(value), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
