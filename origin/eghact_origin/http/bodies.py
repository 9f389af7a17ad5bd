"""Request bodies read under a per-endpoint limit.

aiohttp's ``client_max_size`` is the app's one limit, sized for a publish (a base64 tarball:
~68 MB by default), so every endpoint that called ``request.read()`` would hold, and then
parse on the event loop, that much for any anonymous client. An endpoint reads its body here
instead, with the limit its own content needs: a declared ``Content-Length`` over it is refused
before a byte is read, and a chunked (or decompressed) body is cut off one byte past it.
"""

from __future__ import annotations

from aiohttp import web

from eghact_common.errors import PayloadTooLarge


async def read_limited(request: web.Request, limit: int, what: str) -> bytes:
    """The whole body, at most ``limit`` bytes; else ``PayloadTooLarge`` (413) naming the limit.

    ``what`` names the body in the message ("a resolve request")."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(what, limit)
    parts: list[bytes] = []
    size = 0
    while True:
        # read(n) answers what is buffered, up to n: loop until EOF or one byte past the limit.
        part = await request.content.read(limit + 1 - size)
        if not part:
            return b"".join(parts)
        parts.append(part)
        size += len(part)
        if size > limit:
            raise _too_large(what, limit)


def _too_large(what: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{what} is limited to {limit} bytes", detail={"limit_bytes": limit})
