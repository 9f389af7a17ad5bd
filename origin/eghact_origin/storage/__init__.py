"""Storage seams of the origin: metadata and blobs.

The embedded default is :class:`SqliteMetadataStore` + :class:`FileBlobStore`. Another
backend (PostgreSQL for metadata, S3-compatible storage for blobs) implements these two
protocols; nothing above this package knows which one it talks to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from eghact_common import wire
from eghact_common.errors import EghactError

from .blobs import FileBlobStore
from .records import (
    Advisory,
    Lookup,
    NewVersion,
    PackageState,
    SearchHit,
    SearchQuery,
    StoredDoc,
    TarballRecord,
    TokenRecord,
    VersionState,
)
from .sqlite import SqliteMetadataStore
from .visibility import NameFilter

__all__ = [
    "Advisory",
    "BlobStore",
    "FileBlobStore",
    "Lookup",
    "MetadataStore",
    "NameFilter",
    "NewVersion",
    "PackageState",
    "SearchHit",
    "SearchQuery",
    "SqliteMetadataStore",
    "StoredDoc",
    "TarballRecord",
    "TokenRecord",
    "VersionState",
]


class BlobStore(Protocol):
    """Immutable content-addressed bytes. Blocking; callers run it off the event loop."""

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data`` durably (fsync before returning); returns its sha512 hex. Idempotent.
        ``durable=False`` skips the syncs: bulk seeding syncs once at the end."""

    def get(self, sha512_hex: str, size: int | None = None) -> bytes:
        """The whole blob. Raises FileNotFoundError, or OSError when ``size`` (what the
        metadata says, when the caller has it) is not what the store holds. Cost: one file read."""

    def path_for(self, sha512_hex: str) -> Path:
        """A local path to stream from (file backends) — lets aiohttp use sendfile."""

    def exists(self, sha512_hex: str) -> bool: ...

    def delete(self, sha512_hex: str) -> None:
        """Remove a blob no live version references (after an unpublish). Idempotent."""


class MetadataStore(Protocol):
    """Registry metadata. Every write is one atomic transaction that also appends its
    change event (the feed) and its audit record; every read sees one committed state."""

    registry_id: str

    async def publish(self, new: NewVersion, *, actor: str) -> wire.ChangeEvent:
        """Commit a version (raises VersionExists). Cost: O(bytes of the packument) to re-render."""

    async def deprecate(self, name: str, messages: dict[str, str], *, actor: str) -> list[wire.ChangeEvent]:
        """Set or clear ("") deprecation messages; one event per version that changed."""

    async def unpublish(self, name: str, versions: list[str], *, reason: str,
                        actor: str) -> tuple[list[wire.ChangeEvent], list[str]]:
        """Tombstone versions; returns events and blob digests now unreferenced."""

    async def set_dist_tag(self, name: str, tag: str, version: str | None, *, actor: str) -> wire.ChangeEvent:
        """Set or (version None) delete a dist-tag."""

    async def packument(self, name: str, *, abbreviated: bool) -> StoredDoc:
        """Stored packument bytes (with the base mark). Cost: one indexed row read."""

    async def version_doc(self, name: str, spec: str) -> StoredDoc:
        """One version document by version or dist-tag."""

    async def tarball(self, name: str, filename: str) -> TarballRecord:
        """Where a tarball lives and what it must hash to."""

    async def lookup_many(self, lookups: list[Lookup]) -> list[StoredDoc | TarballRecord | EghactError]:
        """Many packument / version / tarball look-ups in one consistent snapshot, each answered
        by what the single method returns or by the error it raises (NotFound, Unpublished),
        in order. Cost: one indexed row read per look-up, one thread hop for them all."""

    async def package_state(self, name: str) -> PackageState: ...

    async def dist_tags(self, name: str) -> dict[str, str]: ...

    async def digest_in_use(self, digest: str) -> bool:
        """Whether any version (live or tombstoned) references this blob."""

    async def changes(self, since: int, limit: int, *, public: bool = False) -> list[wire.ChangeEvent]:
        """Events with seq > since, in seq order, at most ``limit``. ``public``: only events on
        public names, numbered (``seq``) and chosen by their public seq (``public_feed.py``)."""

    async def changes_json(self, since: int, limit: int, *, public: bool = False) -> list[tuple[int, str, bytes]]:
        """The same events as (seq, name, the event's JSON as ``ChangeEvent.to_json`` renders
        it): the feed's page, without an object per event on the way."""

    async def last_seq(self, *, public: bool = False) -> int: ...

    async def feed_extent(self, *, public: bool = False) -> dict[str, Any]:
        """``{registry_id, first_seq, last_seq}`` of the registry's or the public numbering."""

    async def public_registry_id(self) -> str:
        """The public numbering's registry id (``<registry_id>.<epoch>`` once private scopes
        renumbered it). Cost: one read."""

    async def public_seq_at(self, seq: int) -> int:
        """The public seq a public reader saw when the registry was at ``seq``."""

    async def configure_public_view(self, private_scopes: tuple[str, ...]) -> None:
        """Make the public numbering follow the server's private scopes (renumbers when they changed)."""

    async def number_public(self) -> None:
        """Number, in the public numbering, events another process appended. One read when none."""

    async def advisories_for(self, names: list[str]) -> list[Advisory]: ...

    async def search(self, query: SearchQuery) -> tuple[int, list[SearchHit]]: ...

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None: ...

    async def stats(self, names: NameFilter = ..., *, public: bool = False) -> dict[str, Any]:
        """Package and version counts of what ``names`` shows, and the head of the numbering."""

    def close(self) -> None: ...
