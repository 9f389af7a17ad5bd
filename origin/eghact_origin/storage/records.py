"""Plain values that cross the storage seam (no SQL, no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .visibility import EVERYTHING, NameFilter


@dataclass(frozen=True)
class NewVersion:
    """A validated version ready to commit; its tarball is already in the blob store."""

    name: str
    version: str
    doc: dict[str, Any]
    filename: str
    blob_digest: str
    integrity: str
    shasum: str
    size: int
    unpacked_size: int
    file_count: int
    summary: dict[str, Any]
    tags: tuple[str, ...] = ("latest",)
    published: str | None = None
    deprecated: str | None = None


@dataclass(frozen=True)
class StoredDoc:
    """A rendered document as stored: bytes with the base mark, and the seq it reflects."""

    body: bytes
    seq: int
    public_seq: int = 0  # the same moment in the public numbering (storage/public_feed.py)


# One read of MetadataStore.lookup_many: ("packument", name, "full" | "abbreviated" | "dists"),
# ("version", name, version-or-tag) or ("tarball", name, filename). "dists" is the packument's
# tarball list (``dists_body``), for a bulk reader that needs the tarballs, not the document.
Lookup = tuple[str, str, str]


@dataclass(frozen=True)
class TarballRecord:
    name: str
    version: str
    blob_digest: str
    integrity: str
    shasum: str
    size: int
    unpublished: bool


@dataclass(frozen=True)
class VersionState:
    version: str
    deprecated: str | None
    unpublished: bool


@dataclass(frozen=True)
class PackageState:
    """What a write path needs to diff a client's packument against ours."""

    name: str
    seq: int
    versions: dict[str, VersionState] = field(default_factory=dict)
    dist_tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    scopes: tuple[str, ...]
    created: str
    revoked: str | None


# Advisory severities, lowest first (npm audit's levels above "info"): the one ordering that
# the CLI offers and that policies compare against (``--uplink-block-severity``).
SEVERITIES: tuple[str, ...] = ("low", "moderate", "high", "critical")


@dataclass(frozen=True)
class Advisory:
    id: int
    name: str
    vulnerable_versions: str
    severity: str
    title: str
    url: str
    cwe: tuple[str, ...]
    cvss: float | None
    created: str

    def to_npm(self) -> dict[str, Any]:
        """The shape of npm's bulk advisory endpoint."""
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "severity": self.severity,
            "vulnerable_versions": self.vulnerable_versions,
            "cwe": list(self.cwe),
            "cvss": {"score": self.cvss or 0.0, "vectorString": None},
        }


@dataclass(frozen=True)
class SearchQuery:
    text: str = ""
    type: str | None = None
    capability: str | None = None
    category: str | None = None
    keywords: tuple[str, ...] = ()
    size: int = 20
    offset: int = 0
    names: NameFilter = EVERYTHING  # what the caller may see: the total counts only that


@dataclass(frozen=True)
class SearchHit:
    name: str
    version: str
    description: str
    keywords: tuple[str, ...]
    date: str
    summary: dict[str, Any]
    score: float


class VersionRow(NamedTuple):
    """One version as every write path stores it (publish, seeding, both mirror paths): a
    tuple, so that a bulk writer hands thousands of them to the backend without copying."""

    name: str
    version: str
    tarball_file: str
    published: str
    doc: bytes             # the version document with the base mark (packument.py)
    abbrev: bytes          # its abbreviated form
    blob_digest: str       # sha512 hex of the tarball
    integrity: str
    shasum: str
    size: int
    deprecated: str | None


@dataclass(frozen=True)
class AdvisoryRecord:
    """An advisory to store: a new one (``id`` None: the store numbers it) or one another
    registry numbered (a mirror's, from the event that carried it)."""

    name: str
    vulnerable_versions: str
    severity: str
    title: str
    url: str = ""
    cwe: tuple[str, ...] = ()
    cvss: float | None = None
    created: str = ""
    id: int | None = None


@dataclass(frozen=True)
class PackageRows:
    """One package as a mirror stores it: its packuments as the origin served them (base URL
    put back to the mark), and the rows read from them. Both mirror paths write these."""

    name: str
    versions: list[VersionRow]     # in the packument's order
    tags: list[tuple[str, str]]    # (tag, version)
    created: str
    modified: str
    seq: int
    full_doc: bytes
    abbrev_doc: bytes
    latest: str | None
    latest_doc: dict[str, Any] | None  # the latest version's document, for the search index


@dataclass(frozen=True)
class MirrorState:
    """Where a mirror is in its origin's chain of bundles (``meta`` row ``mirror``)."""

    origin_id: str | None = None
    seq: int = 0
    digest: str | None = None
    chain: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredResolution:
    """A built resolution as stored: its answer and the names whose versions it considered."""

    hash: str
    status: int
    body: bytes
    considered: tuple[str, ...]
    seq: int                       # the registry's seq it was built at


@dataclass(frozen=True)
class EdgeRecord:
    id: str
    region: str
    url: str
    health: dict[str, Any]
    registered: str
    last_seen: float


@dataclass(frozen=True)
class PulledPackage:
    """A package as an uplink serves it, rendered into rows (``uplinks/convert.py``), ready for
    :meth:`MetadataStore.uplink_save`. A version whose tarball was not fetched yet has
    ``blob_digest`` from its sha512 integrity (empty with a sha1 ``shasum`` only) and size 0."""

    name: str
    uplink: str
    versions: list[VersionRow]     # in the upstream document's order
    tags: list[tuple[str, str]]    # (tag, version), every version among ``versions``
    created: str
    tarball_urls: dict[str, str]   # our tarball file name -> the upstream's URL for it
    raw: bytes                     # the upstream document as fetched (zstd), to re-apply the policy
    etag: str | None
    last_modified: str | None
    fetched: float                 # when it was fetched (epoch seconds)
    hidden: dict[str, str] = field(default_factory=dict)  # what the pull policy hid, and why
    reveal_at: float | None = None  # when the first version the cooldown hides becomes visible


@dataclass(frozen=True)
class UplinkState:
    """What is kept about an uplinked package besides its rows: where it came from, the
    validators of the last fetch and when that was, and the upstream document as fetched."""

    name: str
    uplink: str
    etag: str | None
    last_modified: str | None
    fetched: float
    raw: bytes
    hidden: dict[str, str] = field(default_factory=dict)
    reveal_at: float | None = None
