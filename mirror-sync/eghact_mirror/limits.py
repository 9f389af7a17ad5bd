"""What a body from the origin may weigh, and what refusing one says.

The origin decides how many bytes it sends; the mirror decides how many it reads. A hostile or
broken origin — or anyone on a plain-HTTP link — could otherwise send an endless tarball or
packument and fill the staging disk or the exporter's memory (issue 11, item 5: the import
side bounds every member by its signed size; this is the same bound for what comes off the
wire). Every body the client reads has a :class:`Cap`, checked at three places, all before
the bytes are kept: a batch frame's declared ``length`` and a response's ``Content-Length``
(refused before a byte of the body is read), and the running count while the body is read
(refused at the first byte beyond, so no more than the cap is ever written or held).

* A tarball whose size the origin's tarball list gives (``[version, file, sha512, size]``):
  that size. A body beyond it cannot have the sha512 listed with it, so the refusal is
  ``digest_mismatch`` (exit 15) — what import says of a member larger than its signed index.
* A tarball the list does not size (an origin without the list, an edge, an npm registry:
  the packument's ``dist`` has ``unpackedSize``, which is not the tarball's): at most
  ``--max-tarball-bytes``; a document (packument, tarball list, feed page, health, popular):
  at most ``--max-document-bytes``. Beyond them the refusal is ``origin_unavailable`` (exit
  3): the origin answered something this mirror does not take, whatever it hashes to; an
  operator whose origin really serves such a body raises the flag.
* An error answer (a 4xx/5xx, a batch frame that is not a 200) is only shown, never kept:
  a GET's is read up to ERROR_BYTES and cut there; a frame's must fit in ERROR_BYTES.

The caps bound each body. How many are in flight is bounded elsewhere (``collect``: workers,
groups, the writer's queue), and documents are held in memory (packuments are carried as
bytes): the exporter's worst case is the document cap times the documents of the groups in
flight, which is why the default is generous for real packuments rather than endless.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import MirrorError

# The largest packuments of public registries weigh tens of MB (thousands of versions, each
# with its readme); 128 MiB leaves room for them.
DOCUMENT_BYTES = 128 << 20
# Only for tarballs the origin's list does not size; the origin's own default upload limit
# is 50 MiB (eghact-origin --max-tarball-bytes).
TARBALL_BYTES = 1 << 30
ERROR_BYTES = 64 << 10


@dataclass(frozen=True)
class Cap:
    """At most ``limit`` bytes for one body: ``what`` names it in a refusal; ``listed`` when
    the limit is the size the tarball list gives (an overrun is then a digest mismatch)."""

    limit: int
    what: str
    flag: str | None = None  # the option that sets a maximum, for the message
    listed: bool = False

    def check(self, size: int, *, declared: bool = False) -> None:
        """Raise when ``size`` bytes (``declared`` by a header, or read so far) pass the cap."""
        if size > self.limit:
            raise self.refusal(size, declared=declared)

    def refusal(self, size: int | None = None, *, declared: bool = False) -> MirrorError:
        detail = {"what": self.what, "limit_bytes": self.limit}
        if declared:
            told = f"declared {self.what} as {size} bytes"
            when = "before reading it"
        else:
            told = f"sent more than {self.limit} bytes for {self.what}"
            when = f"at byte {self.limit + 1}, before keeping any of it"
        if self.listed:
            return MirrorError("digest_mismatch", f"the origin {told}; its tarball list gives {self.limit} bytes "
                               f"with the sha512: refused {when} (it cannot be the tarball listed)", detail=detail)
        over = f"the {self.flag} limit of {self.limit} bytes" if self.flag else f"the {self.limit} bytes allowed"
        return MirrorError("origin_unavailable", f"the origin {told}, over {over}: refused {when}", detail=detail)


@dataclass(frozen=True)
class Limits:
    """The maxima of ``--max-document-bytes`` and ``--max-tarball-bytes``."""

    document_bytes: int = DOCUMENT_BYTES
    tarball_bytes: int = TARBALL_BYTES

    def __post_init__(self) -> None:
        if self.document_bytes < 1 or self.tarball_bytes < 1:
            raise MirrorError("usage", "--max-document-bytes and --max-tarball-bytes must be positive")

    def document(self, what: str) -> Cap:
        return Cap(self.document_bytes, what, "--max-document-bytes")

    def tarball(self, what: str, size: int | None = None) -> Cap:
        """The cap of a tarball, ``size`` bytes by the origin's tarball list (None: not listed).
        A listed size over the maximum is refused at the maximum, like an unlisted one."""
        if size is not None and size <= self.tarball_bytes:
            return Cap(size, what, listed=True)
        return Cap(self.tarball_bytes, what, "--max-tarball-bytes")


def error_cap(what: str) -> Cap:
    return Cap(ERROR_BYTES, f"the error answer for {what}")
