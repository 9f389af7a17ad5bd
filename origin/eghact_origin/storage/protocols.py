"""The storage protocols: what the origin asks of a metadata backend and a blob backend.

Each method's docstring states its contract (and its cost where a caller must know it);
``tests/origin/storage/`` checks every one of them against every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, TypeVar

from eghact_common import wire
from eghact_common.errors import EghactError

from .records import (
    Advisory,
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
)
from .visibility import EVERYTHING, NameFilter

T = TypeVar("T")


class BlobStore(Protocol):
    """Immutable content-addressed bytes. Blocking; callers run it off the event loop."""

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data`` (durably, synced before returning, unless ``durable=False``: a bulk
        writer syncs once at its end); returns its sha512 hex. Idempotent: the same bytes twice
        are one blob. Cost: one write of ``data`` (and two fsyncs)."""

    def get(self, sha512_hex: str, size: int | None = None) -> bytes:
        """The whole blob. Raises FileNotFoundError, or OSError when ``size`` (what the
        metadata says, when the caller has it) is not what the store holds. Cost: one file read."""

    def path_for(self, sha512_hex: str) -> Path:
        """A local path to stream from (file backends) — lets aiohttp use sendfile."""

    def exists(self, sha512_hex: str) -> bool:
        """Whether the blob is stored. Cost: one metadata look-up, no read."""

    def delete(self, sha512_hex: str) -> None:
        """Remove a blob no live version references (after an unpublish). Idempotent."""

    def adopt(self, tree: Path) -> int:
        """Take in a tree of blobs laid out ``ab/<sha512 hex>`` that the caller vouches for (a
        mirror's staged tarballs); returns how many entries moved. Not synced: the caller
        syncs once. Cost: a rename per directory or blob, no read."""

    def clean_temp(self) -> int:
        """Remove what a crash left half-written; at start-up. Returns how many."""


class PackageSnapshot(Protocol):
    """What a resolver worker process reads: one committed state per resolution. Made in the
    worker by calling :meth:`MetadataStore.snapshot_opener`'s result."""

    def begin(self) -> tuple[int, Any]:
        """Open a snapshot; returns the registry's seq in it and a mark that changes whenever
        an advisory is added (the worker's advisory cache is dropped when it does)."""

    def end(self) -> None:
        """Close the snapshot opened by :meth:`begin`."""

    def package_seq(self, name: str) -> int | None:
        """The seq of the last change to ``name`` (None: no live version). Cost: one indexed read."""

    def abbreviated(self, name: str) -> bytes:
        """``name``'s abbreviated packument as stored (with the base mark)."""

    def advisories(self, name: str) -> list[dict[str, Any]]:
        """``name``'s advisories, oldest first: ``{id, vulnerable_versions, severity, title, url}``."""


class MirrorWriter(Protocol):
    """What one bundle's apply may do, inside the one transaction
    :meth:`MetadataStore.mirror_apply_sync` runs it in."""

    def state(self) -> MirrorState:
        """The mirror's place in its origin's chain, as of this transaction (under the write lock)."""

    def blob_sizes(self) -> dict[str, int]:
        """Every blob digest a version names, with its size. Cost: a scan of the versions."""

    def package_names(self) -> set[str]:
        """Every package name the mirror has a row for."""

    def live_versions(self, name: str) -> list[VersionRow]:
        """The live (not unpublished) version rows of ``name``, as stored, in the order they
        were first stored; [] for a package the mirror does not have. A pulled package travels
        with some of its versions only, and the mirror keeps the union (mirror/pulled.py).
        Cost: one indexed read of the package's versions."""

    def write_package(self, rows: PackageRows, existed: bool) -> list[str]:
        """Store a package as the origin served it (versions it no longer lists are unpublished,
        its tags replaced); returns the blob digests of versions it unpublished."""

    def remove_package(self, name: str) -> list[str]:
        """Unpublish every live version of ``name``; returns the digests they named."""

    def write_events(self, events: Iterable[dict[str, Any]], to_seq: int) -> None:
        """The origin's events with their seqs (and the advisories they carry); the feed's
        position becomes at least ``to_seq``. ``events`` is read once, in order, as it comes
        (a staged file's lines): a backend keeps no more of it than one batch of rows."""

    def set_state(self, state: MirrorState) -> None: ...

    def audit(self, action: str, actor: str, subject: str, data: dict[str, Any]) -> None:
        """Seal an audit record into this transaction."""

    def live_digests(self, digests: list[str]) -> set[str]:
        """Those of ``digests`` a live version still names. Cost: one indexed probe per 500."""


class MetadataStore(Protocol):
    """Registry metadata. Every write is one atomic transaction that also appends its
    change event (the feed) and its audit record; every read sees one committed state.
    ``*_sync`` methods block (the CLI, seeding, mirror-apply); the others are coroutines
    that run the work off the event loop."""

    registry_id: str

    # -- registry writes ----------------------------------------------------------------

    async def publish(self, new: NewVersion, *, actor: str) -> wire.ChangeEvent:
        """Commit a version (raises VersionExists, also for a version once unpublished): its row,
        tags (``latest`` is set when the package has none), packuments, event, audit record.
        Cost: O(bytes of the packument) to re-render."""

    def ingest_sync(self, batch: list[NewVersion], *, actor: str) -> list[wire.ChangeEvent]:
        """Commit many versions in one transaction (seeding); packuments rendered once per package."""

    def ingest_submit(self, batch: list[NewVersion], *, actor: str) -> Future[list[wire.ChangeEvent]]:
        """:meth:`ingest_sync` queued: the caller prepares the next batch meanwhile and calls
        :meth:`flush_audit` at its end. A package must not span batches in flight at once."""

    async def deprecate(self, name: str, messages: dict[str, str], *, actor: str) -> list[wire.ChangeEvent]:
        """Set or clear ("") deprecation messages; one event per version that changed (NotFound
        for a version that does not exist or is unpublished)."""

    async def unpublish(self, name: str, versions: list[str], *, reason: str,
                        actor: str) -> tuple[list[wire.ChangeEvent], list[str]]:
        """Tombstone versions (their tags go; ``latest`` moves to the highest live release);
        returns events and blob digests now unreferenced by any live version."""

    async def set_dist_tag(self, name: str, tag: str, version: str | None, *, actor: str) -> wire.ChangeEvent:
        """Set or (version None) delete a dist-tag. NotFound for an unknown package, version or
        tag; BadRequest ``latest_tag_required`` for deleting ``latest``."""

    def add_advisory_sync(self, advisory: dict[str, Any], *, actor: str) -> wire.ChangeEvent:
        """Store an advisory ``{name, vulnerable_versions, severity, title, url?, cwe?, cvss?}``;
        its event carries the whole advisory (with its new id) so that followers can copy it."""

    # -- registry reads -------------------------------------------------------------------

    async def packument(self, name: str, *, abbreviated: bool) -> StoredDoc:
        """Stored packument bytes (with the base mark). NotFound, or Unpublished when no version
        is live. Cost: one indexed row read."""

    async def version_doc(self, name: str, spec: str) -> StoredDoc:
        """One version document by version or dist-tag (NotFound, Unpublished)."""

    async def tarball(self, name: str, filename: str) -> TarballRecord:
        """Where a tarball lives and what it must hash to (unpublished ones too, marked)."""

    async def lookup_many(self, lookups: list[Lookup]) -> list[StoredDoc | TarballRecord | EghactError]:
        """Many packument / version / tarball look-ups in one consistent snapshot, each answered
        by what the single method returns or by the error it raises (NotFound, Unpublished),
        in order. Cost: one indexed row read per look-up, one thread hop for them all."""

    async def package_state(self, name: str) -> PackageState:
        """Every version (live or not, with its deprecation) and tag of ``name`` (NotFound)."""

    async def dist_tags(self, name: str) -> dict[str, str]: ...

    async def digest_in_use(self, digest: str) -> bool:
        """Whether any version (live or tombstoned) references this blob."""

    async def advisories_for(self, names: list[str]) -> list[Advisory]:
        """Advisories of any of ``names``, oldest first. Cost: one indexed read per 500 names."""

    async def search(self, query: SearchQuery) -> tuple[int, list[SearchHit]]:
        """(total, one page of hits) over latest versions; both count only ``query.names``."""

    async def stats(self, names: NameFilter = EVERYTHING, *, public: bool = False) -> dict[str, Any]:
        """Package and version counts of what ``names`` shows, and the head of the numbering."""

    # -- the feed -------------------------------------------------------------------------

    async def changes(self, since: int, limit: int, *, public: bool = False) -> list[wire.ChangeEvent]:
        """Events with seq > since, in seq order, at most ``limit``. ``public``: only events on
        public names, numbered (``seq``) and chosen by their public seq (``public_feed.py``)."""

    async def changes_json(self, since: int, limit: int, *, public: bool = False) -> list[tuple[int, str, bytes]]:
        """The same events as (seq, name, the event's JSON as ``ChangeEvent.to_json`` renders
        it): the feed's page, without an object per event on the way."""

    def changes_sync(self, since: int, limit: int) -> list[wire.ChangeEvent]:
        """:meth:`changes` in the registry's numbering, blocking."""

    async def last_seq(self, *, public: bool = False) -> int: ...

    async def feed_extent(self, *, public: bool = False) -> dict[str, Any]:
        """``{registry_id, first_seq, last_seq}`` of the registry's or the public numbering
        (``first_seq`` is ``last_seq + 1`` when no event is kept)."""

    async def public_registry_id(self) -> str:
        """The public numbering's id: ``registry_id``, then ``<registry_id>.<epoch>`` once renumbered."""

    async def public_seq_at(self, seq: int) -> int:
        """The public seq a public reader saw when the registry was at ``seq``."""

    async def configure_public_view(self, private_scopes: tuple[str, ...]) -> None:
        """Make the public numbering follow the server's private scopes (renumbers when they changed)."""

    async def number_public(self) -> None:
        """Number, in the public numbering, events another process appended. One read when none."""

    # -- tokens and audit -----------------------------------------------------------------

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        """The token with this SHA-256, revoked ones too. Cost: one indexed read."""

    def token_by_hash_sync(self, token_hash: str) -> TokenRecord | None: ...

    def tokens_sync(self) -> list[TokenRecord]:
        """Every token, revoked ones too, by id."""

    def create_token_sync(self, name: str, token_hash: str, scopes: list[str], *, actor: str) -> int:
        """Store a token (its hash only) with an audit record; returns its id."""

    def revoke_token_sync(self, token_id: int | None, name: str | None, *, actor: str) -> int:
        """Revoke the live tokens with this id or name; returns how many."""

    def flush_audit(self) -> int:
        """Append committed audit records to audit.jsonl (any process, after a crash too);
        returns how many."""

    def audit_head(self) -> int:
        """The id of the last audit record committed (audit.jsonl must reach it)."""

    # -- the fleet ------------------------------------------------------------------------

    async def popularity_add(self, owner: int | None, edge_id: str, hits: dict[str, tuple[str, int]], *,
                             now: float, half_life: float, share_cap: float) -> tuple[int, int] | None:
        """Add forward-decayed hits ``{key: (package, count)}`` for ``edge_id``; each token's share
        of a key is capped at ``share_cap`` decayed hits. Returns (keys counted, keys capped), or
        None (nothing written) when ``edge_id`` is not registered by token ``owner``."""

    async def popularity_top(self, limit: int, names: NameFilter, *, now: float,
                             half_life: float) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """The top keys and top packages with their scores decayed to ``now``, only of packages
        that exist, have a live version and ``names`` shows."""

    async def edge_register(self, edge: EdgeRecord, owner: int | None, *, admin: bool) -> bool:
        """Register or refresh an edge for token ``owner``. False (nothing written) when another
        live token holds the id, unless ``admin``."""

    async def edge_list(self) -> list[EdgeRecord]:
        """Registered edges, by region and id."""

    # -- built resolutions and co-usage ---------------------------------------------------

    async def resolution_request(self, digest: str) -> str | None:
        """The canonical request (JSON) stored under ``digest``, current or not."""

    async def resolution_current(self, digest: str) -> StoredResolution | None:
        """The stored resolution, unless it is marked stale or a name it considered has had an
        event (other than ``resolution``) after the seq it was built at."""

    async def resolution_save(self, request: str, built: StoredResolution, *, keep: int | None = None) -> None:
        """Store (or replace) a build and the names it considered; it is current again. ``keep``:
        then hold at most that many, dropping those fetched least (then the oldest builds) with
        their names, in the same transaction. Cost: a count of the table when ``keep`` is given."""

    async def resolution_hits(self, hits: Mapping[str, int]) -> None:
        """Add counted fetches per digest (one transaction for them all)."""

    async def resolutions_stale(self, names: list[str], hits: Mapping[str, int]) -> list[tuple[str, int]]:
        """Fold ``hits``, mark stale every current resolution that considered one of ``names``,
        append a ``resolution`` event for each; returns (digest, hits) of those marked."""

    async def co_usage_top(self, names: list[str]) -> dict[str, list[str]]:
        """For each of ``names`` with any, its kept co-used names, highest score first."""

    async def co_usage_add(self, increments: dict[str, dict[str, float]], *, now: float, half_life: float,
                           top: int, floor: float) -> None:
        """Add ``{name: {other: units}}`` (forward-decayed: one unit is worth more as ``now``
        moves on), keep each name's ``top`` best, forget scores below ``floor`` units."""

    def snapshot_opener(self) -> Callable[[], PackageSnapshot]:
        """A picklable callable that opens a :class:`PackageSnapshot` (in a worker process)."""

    # -- uplinks (packages pulled from an upstream registry) ------------------------------

    async def package_source(self, name: str) -> str | None:
        """Where ``name`` comes from: ``"local"`` once any version of it was published here
        (unpublished ones too: a local name is local forever), the uplink's name for a pulled
        copy, None when the store has never heard of it. Cost: one indexed read."""

    async def uplink_state(self, name: str) -> UplinkState | None:
        """What is kept of a pulled package's last fetch (None: not a pulled package)."""

    async def uplink_save(self, pulled: PulledPackage, *, actor: str) -> tuple[list[wire.ChangeEvent], list[str]]:
        """Store a pulled package as its uplink serves it, in one transaction: versions it no
        longer lists are unpublished, its tags replaced, a version already stored with the same
        integrity keeps its fetched tarball (digest and size), its fetch state replaced. When its
        versions, documents, deprecations or tags changed (or it is new), ONE ``uplink`` event
        (keys ``pkg:<name>``, ``search``, and the tarball key of each version no longer served)
        and an audit record (``uplink-pull`` the first time,
        ``uplink-refresh`` after); otherwise no event. Returns (events, blob digests of versions
        it unpublished). Raises UplinkedPackage ``local_package`` when the name is local (nothing
        written): a local name is never overwritten by an uplink, whatever the caller checked.
        The fetch state (``fetched``, validators, ``raw``, ``hidden``, ``reveal_at``) is
        replaced even when nothing else changed."""

    async def uplink_touch(self, name: str, *, fetched: float, etag: str | None,
                           last_modified: str | None) -> None:
        """Record a revalidation that changed nothing (a 304): the fetch time and validators
        (a None validator keeps the stored one); ``hidden`` and ``reveal_at`` stay."""

    async def uplink_due(self, uplink: str, before: float, limit: int) -> list[tuple[str, float]]:
        """The pulled packages of ``uplink`` last fetched before ``before`` (epoch seconds), as
        (name, fetched), oldest first (ties by name), at most ``limit``: what the background
        refresher revalidates next. A save or a touch moves a package to the back. Cost: one
        range scan of an index on (uplink, fetched), ``limit`` rows."""

    async def uplink_reveals(self, before: float, limit: int) -> list[tuple[str, float]]:
        """The pulled packages whose ``reveal_at`` (saved with :meth:`uplink_save`: the moment
        the first version the cooldown hides becomes visible) is before ``before``, as (name,
        reveal_at), earliest first (ties by name), at most ``limit``; packages without one never
        appear. Cost: one range scan of a partial index, ``limit`` rows."""

    async def uplink_tarball_url(self, name: str, filename: str) -> str | None:
        """The upstream URL of a pulled package's tarball (None: not a pulled tarball)."""

    async def uplink_tarball_stored(self, name: str, version: str, *, digest: str, size: int,
                                    integrity: str) -> None:
        """A pulled version's tarball is now in the blob store: record its sha512 hex, size and
        integrity (an old version with a sha1 ``shasum`` only gets its sha512 here)."""

    async def uplink_takeover(self, name: str, *, actor: str) -> tuple[list[wire.ChangeEvent], list[str]]:
        """Make a pulled package local (an admin's explicit takeover): its pulled versions are
        unpublished (their numbers stay used, as npm's are), its fetch state dropped, an
        ``unpublish`` event per version and an ``uplink-takeover`` audit record. A no-op
        ([], []) when ``name`` is not a pulled package. Returns (events, unused digests)."""

    # -- uplinks: the admin's overrides of the pull policy ----------------------------------

    async def uplink_allow(self, name: str, version: str, *, actor: str) -> bool:
        """Let ``name@version`` through the uplinks' pull policy (the cooldown and advisory
        blocking hide it no more), with an audit record ``uplink-allow`` by ``actor``. The
        version need not exist yet upstream. Idempotent: False (nothing written, no audit
        record) when it was allowed already. Cost: one indexed write."""

    async def uplink_disallow(self, name: str, version: str, *, actor: str) -> bool:
        """Withdraw :meth:`uplink_allow`, with an audit record ``uplink-disallow``. False
        (nothing written) when the version was not allowed. Cost: one indexed write."""

    async def uplink_allowed(self, name: str) -> set[str]:
        """The versions of ``name`` an admin allowed (empty when none), as the policy's
        ``allowed``. Cost: one indexed read."""

    # -- mirrors --------------------------------------------------------------------------

    def mirror_state_sync(self) -> MirrorState:
        """Where this mirror is in its origin's chain (the initial state when it is none)."""

    def mirror_apply_sync(self, fn: Callable[[MirrorWriter], T]) -> T:
        """Run ``fn`` in one write transaction: it commits when ``fn`` returns, nothing of it
        remains when ``fn`` raises. Blocking; for ``eghact-origin mirror-apply``."""

    def close(self) -> None: ...
