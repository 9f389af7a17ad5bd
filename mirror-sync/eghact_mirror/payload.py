"""A fetched body on its way into a bundle or a staging dir: small ones in memory, big ones
spooled to a temp file as they arrive, so that memory is bounded by what is in flight
whatever the tarballs weigh.

A payload is hashed once. A spooled one is hashed as it is spooled; an in-memory one is
hashed by the writer, on its thread (``collect``): the event loop, which parses responses
for tens of thousands of them, only moves bytes. ``expected`` is the sha512 the packument
promises for a tarball — :meth:`Payload.digest` refuses a body that differs, and nothing
stores a payload before asking it for its digest.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from .errors import MirrorError
from .limits import Cap

SPOOL_BYTES = 256 * 1024  # bodies above this wait for the writer on disk, not in memory


@dataclass
class Payload:
    size: int
    sha512: str | None = None  # None until hashed
    data: bytes | memoryview | None = None  # a view of a batch answer's chunk (``batch``), read-only
    file: Any = None  # a temp file positioned at 0
    expected: str | None = None  # the sha512 it must have (a tarball's integrity)
    label: str = ""  # where it came from, for an error message

    def digest(self) -> str:
        """Its sha512 hex, computed if need be; raises ``digest_mismatch`` when it is not the
        expected one. Blocking for a big in-memory body: call it off the event loop."""
        if self.sha512 is None:
            self.sha512 = hashlib.sha512(self.data or b"").hexdigest()
        if self.expected is not None and self.sha512 != self.expected:
            raise MirrorError("digest_mismatch", f"the origin served {self.label} with sha512 {self.sha512[:16]}..., "
                              f"its packument promises {self.expected[:16]}...: refusing to carry a tarball that "
                              "fails its integrity")
        return self.sha512

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


async def spool(chunks: AsyncIterator[bytes] | AsyncIterator[memoryview], *, cap: Cap | None = None,
                expected: str | None = None, label: str = "") -> Payload:
    """A payload from a body's chunks, hashed on the way; a temp file past SPOOL_BYTES.
    ``cap`` refuses the body at the first chunk that would take it past its limit, before
    that chunk is kept (a chunk is at most what the transport hands over at once)."""
    digest = hashlib.sha512()
    memory = bytearray()
    file = None
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if cap is not None:
                cap.check(size)
            digest.update(chunk)
            if file is None and len(memory) + len(chunk) <= SPOOL_BYTES:
                memory += chunk
                continue
            if file is None:
                file = tempfile.TemporaryFile()  # noqa: SIM115 - the consumer closes it (Payload.close)
                await asyncio.to_thread(file.write, memory)
                memory = bytearray()
            await asyncio.to_thread(file.write, chunk)
    except BaseException:
        if file is not None:
            file.close()
        raise
    if file is None:
        return Payload(len(memory), digest.hexdigest(), data=bytes(memory), expected=expected, label=label)
    size = file.tell()
    file.seek(0)
    return Payload(size, digest.hexdigest(), file=file, expected=expected, label=label)
