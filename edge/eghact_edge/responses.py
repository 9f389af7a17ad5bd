"""What the edge answers, as bytes: one form for both of its HTTP servers.

An :class:`Outgoing` is a status, the header lines already encoded, and a body. The
front (:mod:`.front`) writes it to the socket as it is; a connection that the front has
handed to aiohttp (writes, local endpoints) gets the same answer through :func:`to_web`.
So every rule about what a response says (encoding negotiation, 304, ``Age``,
``X-Cache``, ``Vary`` for private answers, the JSON error body of DESIGN §3) is written
once, here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

from aiohttp import web
from multidict import CIMultiDict

from eghact_common.cache_policy import etag_matches
from eghact_common.errors import EghactError, RateLimited

from .encoding import choose
from .entry import Entry
from .errors import StreamsExhausted, TooManyWaiters
from .upstream import UpstreamResponse

# Headers of an upstream answer that is passed on without being cached.
_PASSED_HEADERS = ("Content-Type", "Cache-Control", "WWW-Authenticate", "ETag", "Retry-After", "Vary",
                   "Surrogate-Key", "Eghact-Seq")
_X_CACHE: dict[str, bytes] = {}


@dataclass(slots=True)
class Outgoing:
    status: int
    head: bytes            # header lines, each b"Name: value\r\n"; no length, date or connection
    body: bytes = b""

    @property
    def has_body(self) -> bool:
        return self.status != 304 and self.status != 204


def from_entry(entry: Entry, result: str, now: float, headers: Mapping[str, str], *,
               private: bool = False) -> Outgoing:
    """A cached entry for one request: the encoding it accepts, or a 304 when its
    If-None-Match names what we hold. ``headers`` is looked up by lower-case name."""
    encoding = choose(headers.get("accept-encoding"), entry.bodies) or "identity"
    x_cache = _X_CACHE.get(result)
    if x_cache is None:
        x_cache = _X_CACHE[result] = f"X-Cache: {result}\r\n".encode()
    age = b"Age: %d\r\n" % entry.timing.age(now)
    inm = headers.get("if-none-match")
    if inm and etag_matches(inm, entry.etag):
        return Outgoing(304, entry.head(encoding, private, True) + age + x_cache)
    return Outgoing(200, entry.head(encoding, private) + age + x_cache, entry.bodies[encoding])


def from_upstream(upstream: UpstreamResponse, result: str) -> Outgoing:
    """An upstream answer passed on as it is (an error, a redirect, a private body)."""
    lines = [(name, upstream.headers[name]) for name in _PASSED_HEADERS if name in upstream.headers]
    lines.append(("X-Cache", result))
    return Outgoing(upstream.status, _encode(lines), upstream.body)


def from_error(error: EghactError) -> Outgoing:
    lines = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    if isinstance(error, (RateLimited, StreamsExhausted)):
        lines.append(("Retry-After", str(max(1, round(error.retry_after + 0.49)))))
    elif isinstance(error, TooManyWaiters):
        lines.append(("Retry-After", "1"))
    return Outgoing(error.status, _encode(lines), json.dumps(error.to_body()).encode())


def from_json(value: object, status: int = 200) -> Outgoing:
    lines = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    return Outgoing(status, _encode(lines), json.dumps(value).encode())


def _encode(lines: list[tuple[str, str]]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in lines).encode()


# -- on the wire ----------------------------------------------------------------------

_STATUS_LINES = {status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode() for status in HTTPStatus}
_CLOSE = b"Connection: close\r\n"
_date_second = -1
_date_line = b""


def _date() -> bytes:
    """The Date line, formatted once per second (RFC 9110 §6.6.1)."""
    global _date_second, _date_line
    now = int(time.time())
    if now != _date_second:
        _date_second = now
        _date_line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
    return _date_line


def encode(out: Outgoing, *, head_only: bool, keep_alive: bool) -> list[bytes]:
    """The response as the buffers to write (the body is not copied)."""
    status = _STATUS_LINES.get(out.status) or f"HTTP/1.1 {out.status} Unknown\r\n".encode()
    parts = [status, out.head, _date()]
    if not keep_alive:
        parts.append(_CLOSE)
    if out.has_body:
        parts.append(b"Content-Length: %d\r\n\r\n" % len(out.body))
        if not head_only:
            parts.append(out.body)
    else:
        parts.append(b"\r\n")
    return parts


def to_web(out: Outgoing) -> web.Response:
    """The same answer through aiohttp (which adds the length and the date itself)."""
    headers: CIMultiDict[str] = CIMultiDict()
    for line in out.head.decode().split("\r\n"):
        if line:
            name, _, value = line.partition(": ")
            headers.add(name, value)
    return web.Response(status=out.status, body=out.body if out.has_body else None, headers=headers)
