"""Reading the answer of an origin's batch read (``POST /-/v1/batch``): one request for
hundreds of packuments or tarballs instead of one each.

The frame format is the origin's (origin/eghact_origin/http/batch.py)::

    {"path": PATH, "status": 200, "length": N, "headers": {...}}\\n  <N bytes>  \\n

Frames are cut out of large reads of the body (an await per frame field would cost more than
the frame), checked to answer the paths asked for, in order, and to keep in step (the newline
after each body). Bodies over ``SPOOL_BYTES`` are spooled to temp files as they arrive, so
a batch of big tarballs holds no more memory than a batch of small ones. Each path comes
with its :class:`~.limits.Cap`: a frame whose declared ``length`` passes it is refused at its
header, before a byte of its body is read (the reader never reads more than ``length``).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from .limits import Cap, error_cap
from .payload import SPOOL_BYTES, Payload, spool

MEDIA_TYPE = "application/x-eghact-batch"
MAX_ITEMS = 500  # per request (the origin takes up to 1000): a few MB of small tarballs
_READ = 1 << 20
_MAX_HEADER = 64 * 1024
# A frame header exactly as the origin writes it (batch.py there: no spaces, the fields in
# this order, header values without escapes). Matched, it needs no JSON parse: a full export
# reads ~150,000 frames, and json.loads with the checks after it was a fifth of its CPU.
# Anything else is parsed as JSON, with the same checks.
_HEAD = re.compile(rb'\{"path":"([^"\\]*)","status":([0-9]{3}),"length":([0-9]{1,15}),"headers":\{'
                   rb'(?:"Content-Type":"([^"\\]*)"(?:,"Eghact-Seq":"([0-9]{1,20})")?|"Eghact-Seq":"([0-9]{1,20})")?\}\}')


class FrameError(Exception):
    """The answer broke off or fell out of step: the batch failed as a whole (callers retry)."""


@dataclass
class Frame:
    path: str
    status: int
    headers: dict[str, str]  # names in lower case
    payload: Payload  # the body: the document or tarball, or a JSON error body


class _Buffer:
    """The unread part of the body: the chunk last read, and where in it reading is.

    A body that lies inside one chunk is handed out as a view of it, not copied (a full
    export takes ~110,000 bodies, 400 MB: the copies were a tenth of the exporter's CPU). The
    chunk is ``bytes``, so a view of it never changes; it lives as long as a body taken from
    it is in flight — a batch answer's worth, as copies would be. Only a body or header line
    that spans chunks is joined."""

    def __init__(self, content: aiohttp.StreamReader):
        self._content = content
        self._chunk = b""
        self._pos = 0

    async def _next(self) -> bytes:
        chunk = await self._content.read(_READ)
        if not chunk:
            raise FrameError("the batch answer ends inside a frame")
        return chunk

    async def line(self) -> bytes:
        end = self._chunk.find(b"\n", self._pos)
        if end >= 0:
            line = self._chunk[self._pos:end]
            self._pos = end + 1
            return line
        parts = [self._chunk[self._pos:]]
        length = len(parts[0])
        while True:
            if length > _MAX_HEADER:
                raise FrameError("a frame header runs past 64 KiB")
            chunk = await self._next()
            end = chunk.find(b"\n")
            if end >= 0:
                parts.append(chunk[:end])
                self._chunk, self._pos = chunk, end + 1
                return b"".join(parts)
            parts.append(chunk)
            length += len(chunk)

    async def take(self, n: int) -> bytes | memoryview:
        if len(self._chunk) - self._pos >= n:
            view = memoryview(self._chunk)[self._pos:self._pos + n]
            self._pos += n
            return view
        parts = []
        async for part in self.chunks(n):
            parts.append(part)
        return b"".join(parts)

    async def chunks(self, n: int) -> AsyncIterator[memoryview]:
        while n:
            if self._pos == len(self._chunk):
                self._chunk, self._pos = await self._next(), 0
            take = min(n, len(self._chunk) - self._pos)
            yield memoryview(self._chunk)[self._pos:self._pos + take]
            self._pos += take
            n -= take

    async def at_end(self) -> bool:
        return self._pos == len(self._chunk) and not await self._content.read(1)


def _header(line: bytes, path: str) -> tuple[int, int, dict[str, str]]:
    fast = _fast_header(line, path)
    if fast is not None:
        return fast
    try:
        head: Any = json.loads(line)
    except ValueError as exc:
        raise FrameError(f"a frame header is not JSON: {line[:80]!r}") from exc
    status, length, headers = (head.get(k) for k in ("status", "length", "headers")) if isinstance(head, dict) \
        else (None, None, None)
    if not (isinstance(status, int) and isinstance(length, int) and length >= 0 and isinstance(headers, dict)):
        raise FrameError(f"a frame header lacks status, length or headers: {line[:80]!r}")
    if head.get("path") != path:
        raise FrameError(f"the batch answered {head.get('path')!r} where {path!r} was asked for: out of step")
    return status, length, {str(name).lower(): str(value) for name, value in headers.items()}


def _fast_header(line: bytes, path: str) -> tuple[int, int, dict[str, str]] | None:
    """The header of the origin's own spelling, or None (then it is parsed as JSON)."""
    match = _HEAD.fullmatch(line)
    if match is None:
        return None
    got, status, length, content_type, seq, only_seq = match.groups()
    if got != path.encode():
        raise FrameError(f"the batch answered {got.decode(errors='replace')!r} where {path!r} was asked for: "
                         "out of step")
    headers = {} if content_type is None else {"content-type": content_type.decode()}
    if seq is not None or only_seq is not None:
        headers["eghact-seq"] = (seq or only_seq).decode()
    return int(status), int(length), headers


async def read_frames(content: aiohttp.StreamReader, paths: list[str], caps: list[Cap]) -> list[Frame]:
    """One frame per path asked for, in order, each 200's body within the cap given with its
    path (any other status's within ERROR_BYTES: it is only shown); raises :class:`FrameError`
    on a broken answer, ``MirrorError`` (not retried) on a body over its cap."""
    buffer = _Buffer(content)
    frames: list[Frame] = []
    try:
        for path, cap in zip(paths, caps, strict=True):
            status, length, headers = _header(await buffer.line(), path)
            (cap if status == 200 else error_cap(path)).check(length, declared=True)
            if length > SPOOL_BYTES:
                payload = await spool(buffer.chunks(length))
            else:
                payload = Payload(length, data=await buffer.take(length))
            frames.append(Frame(path, status, headers, payload))
            if bytes(await buffer.take(1)) != b"\n":
                raise FrameError(f"the body of {path} is not followed by a newline: out of step")
        if not await buffer.at_end():
            raise FrameError("the batch answer goes on after its last frame")
    except BaseException:
        for frame in frames:
            frame.payload.close()
        raise
    return frames
