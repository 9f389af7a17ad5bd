"""Storage seams of the origin: metadata and blobs.

The embedded default is :class:`SqliteMetadataStore` + :class:`FileBlobStore`. Another
backend (PostgreSQL for metadata, S3-compatible storage for blobs) implements these
protocols; nothing above this package knows which one it talks to, and no SQL is written
above it. A new backend is one module (or package) here plus a fixture in
``tests/origin/storage/``, whose contract suite every backend passes.

Protocols (:mod:`.protocols`): :class:`MetadataStore` (registry rows, the feed, tokens, the fleet, built
resolutions, co-usage, a mirror's applies), :class:`MirrorWriter` (what one bundle's apply
may do inside its transaction), :class:`PackageSnapshot` (what a resolver worker reads), and
:class:`BlobStore`. Values that cross the seam are in :mod:`.records`.
"""

from __future__ import annotations

from .blobs import FileBlobStore
from .protocols import BlobStore, MetadataStore, MirrorWriter, PackageSnapshot
from .records import (
    SEVERITIES,
    Advisory,
    AdvisoryRecord,
    EdgeRecord,
    Lookup,
    MirrorState,
    NewVersion,
    PackageRows,
    PackageState,
    PulledPackage,
    SearchHit,
    SearchQuery,
    StoredDoc,
    StoredResolution,
    TarballRecord,
    TokenRecord,
    UplinkState,
    VersionRow,
    VersionState,
)
from .sqlite import DB_FILE, SqliteMetadataStore, SqliteSnapshot, build_mirror_database, committed_audit_head, iso
from .visibility import EVERYTHING, NameFilter

__all__ = [
    "DB_FILE",
    "EVERYTHING",
    "SEVERITIES",
    "Advisory",
    "AdvisoryRecord",
    "BlobStore",
    "EdgeRecord",
    "FileBlobStore",
    "Lookup",
    "MetadataStore",
    "MirrorState",
    "MirrorWriter",
    "NameFilter",
    "NewVersion",
    "PackageRows",
    "PackageSnapshot",
    "PackageState",
    "PulledPackage",
    "SearchHit",
    "SearchQuery",
    "SqliteMetadataStore",
    "SqliteSnapshot",
    "StoredDoc",
    "StoredResolution",
    "TarballRecord",
    "TokenRecord",
    "UplinkState",
    "VersionRow",
    "VersionState",
    "build_mirror_database",
    "committed_audit_head",
    "iso",
]
