"""Plain values that cross the storage seam (no SQL, no HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
