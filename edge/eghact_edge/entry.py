"""One cached response, stored once and served many times without any work.

An entry keeps its body in every encoding it may be sent in (identity, and for
compressible types gzip and zstd), the headers that travel with it, and its
:class:`~eghact_edge.freshness.Timing`. The headers per encoding are assembled once
(lazily) into :class:`multidict.CIMultiDict` templates, so a hit copies a template,
adds ``Age`` and ``X-Cache``, and hands the bytes to aiohttp: no JSON, no header parsing.

The disk form is a small versioned binary layout (magic, JSON header, bodies), so a
disk tier written by one build is either read correctly or refused by another.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

from multidict import CIMultiDict

from .freshness import Timing

MAGIC = b"EGE1"
_LEN = struct.Struct(">I")
ENCODINGS = ("identity", "gzip", "zstd")
# Weight of the bookkeeping around the bodies, so that a tier full of tiny entries is
# still bounded in real memory.
OVERHEAD = 512


@dataclass(slots=True)
class Entry:
    key: str
    content_type: str
    bodies: dict[str, bytes]
    etag: str                              # ours: changes when the body we serve changes
    upstream_etag: str | None              # theirs: sent back in If-None-Match
    headers: tuple[tuple[str, str], ...]   # forwarded as is (Cache-Control, Surrogate-Key, ...)
    tag: str | None                        # the surrogate key that purges it
    timing: Timing
    links: tuple[str, ...] = ()            # paths likely requested next (Link: rel=prefetch)
    _templates: dict[str, CIMultiDict[str]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> int:
        return sum(len(body) for body in self.bodies.values()) + OVERHEAD

    def with_timing(self, timing: Timing, headers: tuple[tuple[str, str], ...] | None = None) -> Entry:
        """The same body, revalidated (a 304 refreshes the metadata, RFC 9111 §4.3.4)."""
        return Entry(self.key, self.content_type, self.bodies, self.etag, self.upstream_etag,
                     headers if headers is not None else self.headers, self.tag, timing, self.links)

    def template(self, encoding: str) -> CIMultiDict[str]:
        """The response headers for ``encoding`` (without Age and X-Cache). Built once."""
        template = self._templates.get(encoding)
        if template is None:
            template = CIMultiDict(self.headers)
            template["Content-Type"] = self.content_type
            template["ETag"] = self.etag
            if encoding != "identity":
                template["Content-Encoding"] = encoding
            if self.links:
                template["Link"] = ", ".join(f"<{path}>; rel=prefetch" for path in self.links)
            self._templates[encoding] = template
        return template

    # -- disk form ------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        t = self.timing
        head = {
            "key": self.key, "type": self.content_type, "etag": self.etag, "up": self.upstream_etag,
            "headers": self.headers, "tag": self.tag, "links": self.links,
            "timing": [t.stored_at, t.initial_age, t.lifetime, t.swr, t.sie, t.feed_covered],
            "bodies": [[name, len(body)] for name, body in self.bodies.items()],
        }
        encoded = json.dumps(head, separators=(",", ":")).encode()
        return b"".join([MAGIC, _LEN.pack(len(encoded)), encoded, *self.bodies.values()])

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        """Raises ValueError on anything that is not an entry of this layout."""
        if data[:4] != MAGIC:
            raise ValueError("not an edge cache entry (or an older layout)")
        (length,) = _LEN.unpack_from(data, 4)
        head = json.loads(data[8:8 + length])
        offset = 8 + length
        bodies = {}
        for name, size in head["bodies"]:
            bodies[name] = data[offset:offset + size]
            offset += size
        if offset != len(data):
            raise ValueError("truncated edge cache entry")
        stored_at, initial_age, lifetime, swr, sie, covered = head["timing"]
        return cls(
            key=head["key"], content_type=head["type"], bodies=bodies, etag=head["etag"], upstream_etag=head["up"],
            headers=tuple((k, v) for k, v in head["headers"]), tag=head["tag"],
            timing=Timing(stored_at, initial_age, lifetime, swr, sie, bool(covered)), links=tuple(head["links"]),
        )
