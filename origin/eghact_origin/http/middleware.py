"""The fixed places where requests are wrapped, outermost first: access, errors, context.

``access`` sends the response itself and then records the access log line and the metrics
of every request, error answers included: a handler's ``Response`` is written only after
every middleware has returned, so measured any earlier its ``body_length`` is 0.
``errors`` is the only place an exception becomes a response: an :class:`EghactError`
becomes its JSON body and status; aiohttp's own HTTP errors (no route, body too large)
are translated to the same shape; anything else is logged and answered 500 without
internals. ``context`` resolves the principal and enforces read-only mode.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from eghact_common.errors import EghactError, RateLimited, ReadOnly
from eghact_common.npm_paths import SAFE_POSTS

from ..auth import bearer_token
from .appkeys import PRINCIPAL, REPORTER, ROUTE, SETTINGS, TOKENS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger("eghact.origin")
access_log = logging.getLogger("eghact.access")

_AIOHTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    400: "bad_request",
    431: "headers_too_large",
}



def error_response(error: EghactError) -> web.Response:
    response = web.json_response(error.to_body(), status=error.status)
    response.headers["Cache-Control"] = "no-store"
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EghactError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _AIOHTTP_CODES.get(exc.status, "http_error")
        message = exc.reason if exc.status != 413 else "request body too large"
        return error_response(_HttpError(message, code=code, status=exc.status))
    except (ConnectionResetError, TimeoutError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(EghactError("internal error; the incident is logged"))


class _HttpError(EghactError):
    def __init__(self, message: str, *, code: str, status: int):
        super().__init__(message, code=code)
        self.status = status


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status, size = 500, 0
    response: web.StreamResponse | None = None
    try:
        response = await handler(request)
        status = response.status
        # Both are no-ops for a response the handler streamed and finished (batch, feed).
        await response.prepare(request)
        await response.write_eof()
        return response
    except web.HTTPException as exc:   # the < 400 ones that `errors` lets through
        status = exc.status
        raise
    finally:
        if response is not None:
            # What went out for it: status line, headers and body (aiohttp's own %b, nginx's
            # $bytes_sent); the body part is 0 for HEAD and 304.
            size = response.body_length
        elapsed = time.perf_counter() - started
        route = request.get(ROUTE, "other")
        request.app[REPORTER].request(route, request.method, status, elapsed, size)
        if request.app[SETTINGS].access_log:
            principal = request.get(PRINCIPAL)
            access_log.info(json.dumps({
                "t": round(time.time(), 3), "method": request.method, "path": request.path_qs,
                "route": route, "status": status, "ms": round(elapsed * 1000, 2), "bytes": size,
                "principal": principal.name if principal else None, "remote": request.remote,
            }))


@web.middleware
async def context(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if settings.read_only and request.method in ("PUT", "DELETE", "PATCH", "POST") \
            and not request.path.startswith(SAFE_POSTS):
        raise ReadOnly("this registry is a read-only mirror")
    token = bearer_token(request.headers.get("Authorization"))
    request[PRINCIPAL] = await request.app[TOKENS].principal(token)
    return await handler(request)
