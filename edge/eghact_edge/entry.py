"""One cached response, stored once and served many times without any work.

An entry keeps its body in every encoding it may be sent in (identity, and for
compressible types gzip and zstd), the headers that travel with it, and its
:class:`~eghact_edge.freshness.Timing`. The header lines of each variant (encoding,
private or shared, 200 or 304) are encoded to bytes once, lazily, so a hit appends
``Age`` and ``X-Cache`` and writes bytes: no JSON, no header objects.

The disk form is a small versioned binary layout (magic, JSON header, bodies), so a
disk tier written by one build is either read correctly or refused by another.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

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
    _heads: dict[tuple[str, bool, bool], bytes] = field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> int:
        return sum(len(body) for body in self.bodies.values()) + OVERHEAD

    def with_timing(self, timing: Timing, headers: tuple[tuple[str, str], ...] | None = None) -> Entry:
        """The same body, revalidated (a 304 refreshes the metadata, RFC 9111 §4.3.4)."""
        return Entry(self.key, self.content_type, self.bodies, self.etag, self.upstream_etag,
                     headers if headers is not None else self.headers, self.tag, timing, self.links)

    def head(self, encoding: str, private: bool = False, not_modified: bool = False) -> bytes:
        """The header lines (``Name: value\r\n``) sent with the ``encoding`` body, without
        Age, X-Cache, Content-Length and Date. Built once per variant.

        ``private``: the response went to one principal, so it varies on Authorization too.
        ``not_modified``: a 304 describes the stored body, so it drops Content-Type and
        Content-Encoding (RFC 9110 §15.4.5) and keeps the validators and caching headers.
        """
        variant = (encoding, private, not_modified)
        head = self._heads.get(variant)
        if head is None:
            lines = [(name, value) for name, value in self.headers
                     if not (private and name.lower() == "vary")]
            if private:
                lines.append(("Vary", "Accept, Accept-Encoding, Authorization"))
            if not not_modified:
                lines.append(("Content-Type", self.content_type))
                if encoding != "identity":
                    lines.append(("Content-Encoding", encoding))
            lines.append(("ETag", self.etag))
            if self.links:
                lines.append(("Link", ", ".join(f"<{path}>; rel=prefetch" for path in self.links)))
            head = self._heads[variant] = "".join(f"{name}: {value}\r\n" for name, value in lines).encode()
        return head

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
