"""The two fixed places where requests are wrapped: errors and the request context.

``errors`` is the only place an exception becomes a response: an :class:`EghactError`
becomes its JSON body and status; aiohttp's own HTTP errors (no route, body too large)
are translated to the same shape; anything else is logged and answered 500 without
internals. ``context`` resolves the principal, enforces read-only mode, and records the
access log line and the metrics of every request.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from eghact_common.errors import EghactError, RateLimited, ReadOnly

from ..auth import bearer_token
from .keys import PRINCIPAL, REPORTER, ROUTE, SETTINGS, TOKENS

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

# Writes that are reads in disguise: they never change state.
_SAFE_POSTS = ("/-/v1/search", "/-/v1/batch", "/-/npm/v1/security/advisories/bulk",
               "/-/npm/v1/security/audits/quick")


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
async def context(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status, size = 500, 0
    try:
        settings = request.app[SETTINGS]
        if settings.read_only and request.method in ("PUT", "DELETE", "PATCH", "POST") \
                and not request.path.startswith(_SAFE_POSTS):
            raise ReadOnly("this registry is a read-only mirror")
        token = bearer_token(request.headers.get("Authorization"))
        request[PRINCIPAL] = await request.app[TOKENS].principal(token)
        response = await handler(request)
        status = response.status
        size = response.body_length if isinstance(response, web.Response) else 0
        return response
    except EghactError as error:
        status = error.status
        raise
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = request.get(ROUTE, "other")
        request.app[REPORTER].request(route, request.method, status, elapsed, size)
        if settings.access_log:
            principal = request.get(PRINCIPAL)
            access_log.info(json.dumps({
                "t": round(time.time(), 3), "method": request.method, "path": request.path_qs,
                "route": route, "status": status, "ms": round(elapsed * 1000, 2), "bytes": size,
                "principal": principal.name if principal else None, "remote": request.remote,
            }))
