"""Request bodies from clients: read to their end, bounded, and parsed as JSON safely.

``StreamReader.read(n)`` returns what has *arrived*, up to ``n`` bytes, not ``n`` bytes:
a body split across packets was cut at the first one (issue 11: every publish of 0.8 MB
or more through an edge failed as ``invalid_json``). :func:`read_limited` reads to the
end of the stream and stops as soon as the limit is passed, so a body is either whole or
refused, never cut.

Python's ``json`` recurses once per nesting level and raises ``RecursionError`` near the
interpreter's limit (about 1,000 levels), which used to surface as a 500 with a
traceback; and a document that parses just below that limit can still exhaust the stack
later, in code that walks it. :func:`parse_json` refuses both with 400 ``json_too_deep``,
at a depth no legitimate body of ours comes near (package.json files nest a handful of
levels).
"""

from __future__ import annotations

import re
from json import loads
from typing import TYPE_CHECKING, Any

from .errors import BadRequest, InvalidJson, PayloadTooLarge

if TYPE_CHECKING:
    # Only types here: aiohttp costs 0.15 s of CPU to import (its server 50 ms more), which a
    # caller of parse_json alone (the eghact CLI's no-work install, eghact-mirror verify) does
    # not otherwise need; read_body imports what it catches when it runs.
    import aiohttp
    from aiohttp import web

MAX_JSON_DEPTH = 64


async def read_limited(stream: aiohttp.StreamReader, limit: int) -> bytes | None:
    """Everything up to the end of ``stream``, or None as soon as it exceeds ``limit`` bytes
    (the rest is left unread)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: web.BaseRequest, limit: int, what: str = "a request body here") -> bytes:
    """The whole body of ``request`` (``b""`` when it has none), at most ``limit`` bytes:
    413 ``payload_too_large`` beyond (a declared ``Content-Length`` over it before a byte is
    read), 400 ``incomplete_body`` if its framing breaks. ``what`` names the body in the
    message ("a resolve request").

    aiohttp's ``client_max_size`` is an app's one limit, sized for a publish (a base64 tarball),
    so each endpoint reads its body here with the limit its own content needs."""
    too_large = PayloadTooLarge(f"{what} is limited to {limit} bytes", detail={"limit_bytes": limit})
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    import aiohttp
    from aiohttp.http_exceptions import HttpProcessingError

    try:
        body = await read_limited(request.content, limit)
    except (aiohttp.ClientPayloadError, HttpProcessingError, ConnectionResetError) as exc:
        # Bad chunked framing, or a body cut before its Content-Length: the client's doing.
        raise BadRequest("the request body ended before its declared end", code="incomplete_body") from exc
    if body is None:
        raise too_large
    return body


def parse_json(raw: bytes, *, what: str = "the request body") -> Any:
    """``raw`` parsed, or 400: ``invalid_json`` (not JSON, not UTF-8, or Python's extras
    ``NaN`` and ``Infinity``) or ``json_too_deep`` (nested deeper than
    :data:`MAX_JSON_DEPTH`). ``what`` names the body in the message."""
    try:
        value = loads(raw, parse_constant=_not_json)
    except RecursionError as exc:
        raise _too_deep(what) from exc
    except (ValueError, UnicodeDecodeError) as exc:   # JSONDecodeError is a ValueError
        raise InvalidJson(f"{what} is not valid JSON: {exc}"[:300]) from exc
    if _deeper_than(raw, MAX_JSON_DEPTH):
        raise _too_deep(what)
    return value


def _not_json(token: str) -> Any:
    # Python accepts them; JSON (RFC 8259), npm's JSON.parse and our own encoders do not.
    raise ValueError(f"{token} is not valid JSON")


def _too_deep(what: str) -> InvalidJson:
    return InvalidJson(f"{what} nests JSON deeper than {MAX_JSON_DEPTH} levels", code="json_too_deep",
                       detail={"max_depth": MAX_JSON_DEPTH})


_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def _deeper_than(raw: bytes, limit: int) -> bool:
    """Whether valid JSON ``raw`` nests containers more than ``limit`` deep, in byte
    operations that run at C speed: a walk of the parsed value cost a Python step per
    container (5 s for 8 MB of ``[[],[],...]``). Outside strings, only brackets are kept,
    all made square (the parse has checked that they pair up); each round then deletes
    the innermost pairs, one level, so a body is too deep if ``limit`` rounds leave any."""
    if raw.count(b"[") + raw.count(b"{") <= limit:   # most bodies: a batch of paths has one
        return False
    shape = _STRINGS.sub(b"", raw).translate(_AS_SQUARE, _NOT_BRACKETS)
    for _ in range(limit):
        if not shape:
            return False
        shape = shape.replace(b"[]", b"")
    return bool(shape)
