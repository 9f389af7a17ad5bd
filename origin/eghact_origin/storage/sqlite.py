"""The embedded metadata store: one SQLite file in WAL mode.

Concurrency model: SQLite has one writer at a time, so every write runs on one dedicated
thread that owns the write connection (:class:`~eghact_common.blocking.SerialExecutor`)
inside ``BEGIN IMMEDIATE`` ... ``COMMIT``. Reads run on the default thread pool, each
thread with its own connection; WAL lets them proceed while a write is in flight, and
each read sees one committed snapshot.

Every state change writes, in the same transaction: the rows it changes, the re-rendered
packuments, one event in ``changes`` (its seq), and the sealed audit record in the
outbox. Seqs are allocated under the write lock and commits are serialised, so a reader
that saw seq N can never later see a new event below N: the feed has no gaps and no
reordering, even with writers in several processes (CLI and server).

``synchronous=FULL``: a 201 means the commit reached the disk, not only the OS.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from eghact_common import semver, wire
from eghact_common.blocking import SerialExecutor, run_blocking
from eghact_common.errors import BadRequest, EghactError, NotFound, Unpublished, VersionExists

from .. import audit, packument
from . import public_feed
from .records import (
    Advisory,
    Lookup,
    NewVersion,
    PackageState,
    StoredDoc,
    TarballRecord,
    TokenRecord,
    VersionState,
)
from .schema import migrate
from .search import search_packages, update_search_row
from .visibility import EVERYTHING, NameFilter, clause

T = TypeVar("T")
Clock = Callable[[], datetime]


def iso(moment: datetime) -> str:
    """npm's time format: ISO-8601 UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


READER_MMAP_BYTES = 1 << 30


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class SqliteMetadataStore:
    """The embedded :class:`~eghact_origin.storage.MetadataStore`."""

    def __init__(self, data_dir: Path, *, clock: Clock | None = None, audit_actor_default: str = "system"):
        self.data_dir = data_dir
        self.path = data_dir / "registry.sqlite3"
        self.audit_path = data_dir / "audit.jsonl"
        self._clock = clock or (lambda: datetime.now(UTC))
        self._writer_thread = SerialExecutor("sqlite-writer")
        self._writer = _connect(self.path)
        migrate(self._writer)
        self._readers = threading.local()
        self._all_readers: list[tuple[sqlite3.Connection, threading.Lock]] = []
        self._closed = False
        self._readers_lock = threading.Lock()
        self._default_actor = audit_actor_default
        self.registry_id = self._ensure_registry_id()
        self.flush_audit()

    # -- plumbing -------------------------------------------------------------------

    def close(self) -> None:
        self._writer_thread.shutdown()
        with self._readers_lock:
            self._closed = True
            readers, self._all_readers = self._all_readers, []
        for conn, lock in readers:
            # A read cancelled on the event loop may still run in its pool thread: closing
            # its connection under it would crash SQLite, so wait for it to finish.
            with lock:
                conn.close()
        self._writer.close()

    def _reader(self) -> tuple[sqlite3.Connection, threading.Lock]:
        pair = getattr(self._readers, "pair", None)
        if pair is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            # Readers map the database instead of reading it a page per pread() into a 2 MB
            # cache: a bulk read (a mirror export reads every packument) spent a third of its
            # system time copying pages. The mapping is virtual; the pages are the OS's cache.
            conn.execute(f"PRAGMA mmap_size={READER_MMAP_BYTES}")
            pair = (conn, threading.Lock())
            with self._readers_lock:
                if self._closed:
                    conn.close()
                    raise RuntimeError("the store is closed")
                self._all_readers.append(pair)
            self._readers.pair = pair
        return pair

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on a reader thread inside one snapshot. Feature modules that keep
        their own tables (popularity, resolutions) use this and :meth:`write`."""
        def call() -> T:
            with self.read_sync() as conn:
                return fn(conn)

        return await run_blocking(call)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one write transaction on the single writer thread."""
        result = await self._writer_thread.run(self._transaction, fn)
        await run_blocking(self.flush_audit)
        return result

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """For the CLI and seeding: the same single writer thread, waited on synchronously."""
        result = self._writer_thread.submit(self._transaction, fn).result()
        self.flush_audit()
        return result

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    def _ensure_registry_id(self) -> str:
        import uuid

        def ensure(conn: sqlite3.Connection) -> str:
            row = conn.execute("SELECT value FROM meta WHERE key='registry_id'").fetchone()
            if row:
                return str(row[0])
            value = uuid.uuid4().hex
            conn.execute("INSERT INTO meta (key, value) VALUES ('registry_id', ?)", (value,))
            return value

        return self._transaction(ensure)

    # -- audit outbox ---------------------------------------------------------------

    def record_audit(self, conn: sqlite3.Connection, action: str, actor: str | None, subject: str,
                     data: dict[str, Any], now: str | None = None) -> None:
        """Seal an audit record into the outbox, inside the caller's write transaction."""
        now = now or iso(self._clock())
        row = conn.execute("SELECT value FROM meta WHERE key='audit_head'").fetchone()
        last_id, last_hash = (json.loads(row[0]) if row else (0, audit.GENESIS))
        sealed = audit.seal(
            {"id": last_id + 1, "time": now, "action": action, "actor": actor or self._default_actor,
             "subject": subject, "data": data},
            last_hash,
        )
        conn.execute("INSERT INTO audit_outbox (id, line) VALUES (?, ?)",
                     (sealed["id"], audit.canonical_line(sealed)))
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('audit_head', ?)",
                     (json.dumps([sealed["id"], sealed["hash"]]),))

    def flush_audit(self) -> int:
        """Append committed audit records to audit.jsonl; safe across processes and crashes."""
        lock_path = self.data_dir / "audit.lock"
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                # A crash mid-append leaves a torn last line; its record is still in the
                # outbox (rows are deleted only after the append is synced), so cut and redo.
                audit.repair_tail(self.audit_path)
                last_id, _ = audit.tail(self.audit_path)
                rows = self._writer_thread.submit(
                    lambda: self._writer.execute(
                        "SELECT id, line FROM audit_outbox ORDER BY id").fetchall()
                ).result()
                pending = [json.loads(line) for rid, line in rows if rid > last_id]
                if pending:
                    audit.append(self.audit_path, pending)
                if rows:
                    top = max(rows[-1][0], last_id)
                    self._writer_thread.submit(
                        self._transaction,
                        lambda conn: conn.execute("DELETE FROM audit_outbox WHERE id <= ?", (top,)),
                    ).result()
                return len(pending)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- events ---------------------------------------------------------------------

    def append_event(self, conn: sqlite3.Connection, type_: str, name: str, version: str | None,
               keys: list[str], now: str, data: dict[str, Any] | None = None) -> wire.ChangeEvent:
        cur = conn.execute(
            "INSERT INTO changes (time, type, name, version, keys, data) VALUES (?, ?, ?, ?, ?, ?)",
            (now, type_, name, version, json.dumps(keys), json.dumps(data or {})),
        )
        seq = int(cur.lastrowid or 0)
        public_feed.number(conn)
        return wire.ChangeEvent(seq=seq, type=type_, name=name, version=version, keys=tuple(keys),
                                time=now, data=data or {})

    async def changes(self, since: int, limit: int, *, public: bool = False) -> list[wire.ChangeEvent]:
        """``public``: the public view, numbered by public seq (storage/public_feed.py)."""
        return await self.read(lambda conn: _changes(conn, since, limit, public))

    async def changes_json(self, since: int, limit: int, *, public: bool = False) -> list[tuple[int, str, bytes]]:
        def run(conn: sqlite3.Connection) -> list[tuple[int, str, bytes]]:
            return conn.execute(_CHANGE_JSON.replace("@N@", public_feed.column(conn, public)),
                                (since, limit)).fetchall()

        return await self.read(run)

    def changes_sync(self, since: int, limit: int) -> list[wire.ChangeEvent]:
        with self.read_sync() as conn:
            return _changes(conn, since, limit)

    async def last_seq(self, *, public: bool = False) -> int:
        return await self.read(public_feed.head if public else _last_seq)

    async def feed_extent(self, *, public: bool = False) -> dict[str, Any]:
        """``{registry_id, first_seq, last_seq}`` of the caller's numbering."""
        def run(conn: sqlite3.Connection) -> dict[str, Any]:
            if public:
                return {"registry_id": public_feed.registry_id(conn, self.registry_id),
                        "first_seq": public_feed.first(conn), "last_seq": public_feed.head(conn)}
            first = conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
            last = _last_seq(conn)
            return {"registry_id": self.registry_id, "first_seq": int(first) if first is not None else last + 1,
                    "last_seq": last}

        return await self.read(run)

    async def public_registry_id(self) -> str:
        return await self.read(lambda conn: public_feed.registry_id(conn, self.registry_id))

    async def public_seq_at(self, seq: int) -> int:
        return await self.read(lambda conn: public_feed.at(conn, seq))

    async def configure_public_view(self, private_scopes: tuple[str, ...]) -> None:
        """Number the public view for the server's private scopes (at start)."""
        await self.write(lambda conn: public_feed.configure(conn, private_scopes))

    async def number_public(self) -> None:
        """Number events other processes appended (mirror-apply), if any."""
        if await self.read(public_feed.behind):
            await self.write(public_feed.number)

    # -- rendering ------------------------------------------------------------------

    def _rerender(self, conn: sqlite3.Connection, name: str, seq: int, now: str) -> None:
        rows = conn.execute(
            "SELECT version, doc, abbrev, published, deprecated FROM versions "
            "WHERE name=? AND unpublished IS NULL ORDER BY rowid",
            (name,),
        ).fetchall()
        tags = dict(conn.execute("SELECT tag, version FROM dist_tags WHERE name=?", (name,)).fetchall())
        created = conn.execute("SELECT created FROM packages WHERE name=?", (name,)).fetchone()[0]
        if not rows:
            conn.execute("UPDATE packages SET full_doc=NULL, abbrev_doc=NULL, modified=?, seq=?, latest=NULL "
                         "WHERE name=?", (now, seq, name))
            update_search_row(conn, name, None)
            return
        fragments = [packument.VersionFragment(v, bytes(d), bytes(a), p, dep) for v, d, a, p, dep in rows]
        latest = tags.get("latest") or fragments[-1].version
        latest_doc = json.loads(_unmark(next(f.full for f in fragments if f.version == latest)))
        full, abbrev = packument.render_packuments(
            name, versions=fragments, dist_tags=tags, created=created, modified=now,
            seq=public_feed.seq_of(conn, name, seq),  # its _rev: no registry seq in a public document
            latest_doc=latest_doc,
        )
        conn.execute("UPDATE packages SET full_doc=?, abbrev_doc=?, modified=?, seq=?, latest=? WHERE name=?",
                     (full, abbrev, now, seq, latest, name))
        update_search_row(conn, name, latest_doc)

    # -- writes ---------------------------------------------------------------------

    async def publish(self, new: NewVersion, *, actor: str) -> wire.ChangeEvent:
        """Commit one version: row, dist-tags, packuments, event, audit. Raises VersionExists."""
        return await self.write(lambda conn: self._publish(conn, new, actor))

    def ingest_sync(self, batch: list[NewVersion], *, actor: str) -> list[wire.ChangeEvent]:
        """Bulk commit of many versions (seeding, mirror import) in one transaction.

        Packuments are rendered once per package at the end rather than once per version:
        a package with thousands of versions would otherwise cost O(n²) bytes.
        """
        events = self.ingest_submit(batch, actor=actor).result()
        self.flush_audit()
        return events

    def ingest_submit(self, batch: list[NewVersion], *, actor: str) -> Future[list[wire.ChangeEvent]]:
        """Queue a bulk commit on the writer thread; the caller prepares the next batch
        meanwhile and calls ``flush_audit`` when done. A package must not span batches
        that are in flight at once (each batch renders its packages from what is committed)."""
        def run(conn: sqlite3.Connection) -> list[wire.ChangeEvent]:
            events = [self._publish(conn, new, actor, render=False) for new in batch]
            last_by_name = {e.name: e for e in events}
            for name, event in last_by_name.items():
                self._rerender(conn, name, event.seq, event.time)
            return events

        return self._writer_thread.submit(self._transaction, run)

    def _publish(self, conn: sqlite3.Connection, new: NewVersion, actor: str,
                 render: bool = True) -> wire.ChangeEvent:
        now = new.published or iso(self._clock())
        existing = conn.execute("SELECT unpublished FROM versions WHERE name=? AND version=?",
                                (new.name, new.version)).fetchone()
        if existing is not None:
            # npm's rule: a version number is used once, even after an unpublish.
            raise VersionExists(
                f"{new.name}@{new.version} already exists" + (" (unpublished; versions are never reused)"
                                                              if existing[0] else ""),
                detail={"name": new.name, "version": new.version},
            )
        conn.execute("INSERT OR IGNORE INTO packages (name, created, modified, seq) VALUES (?, ?, ?, 0)",
                     (new.name, now, now))
        rendered = packument.render_version(
            new.doc, name=new.name, version=new.version, filename=new.filename,
            dist={"integrity": new.integrity, "shasum": new.shasum, "fileCount": new.file_count,
                  "unpackedSize": new.unpacked_size},
            publisher=actor,
        )
        conn.execute(
            "INSERT INTO versions (name, version, tarball_file, published, doc, abbrev, blob_digest, integrity,"
            " shasum, size, deprecated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new.name, new.version, new.filename, now, rendered.full, rendered.abbreviated, new.blob_digest,
             new.integrity, new.shasum, new.size, new.deprecated or None),
        )
        for tag in new.tags:
            conn.execute("INSERT OR REPLACE INTO dist_tags (name, tag, version) VALUES (?, ?, ?)",
                         (new.name, tag, new.version))
        if "latest" not in new.tags and conn.execute(
                "SELECT 1 FROM dist_tags WHERE name=? AND tag='latest'", (new.name,)).fetchone() is None:
            # npm: a package always has a latest tag once it has a version.
            conn.execute("INSERT INTO dist_tags (name, tag, version) VALUES (?, 'latest', ?)",
                         (new.name, new.version))
        event = self.append_event(
            conn, wire.PUBLISH, new.name, new.version,
            [wire.package_key(new.name), wire.SEARCH_KEY], now,
            {"integrity": new.integrity, "tags": list(new.tags)},
        )
        self.record_audit(conn, "publish", actor, f"{new.name}@{new.version}",
                    {"integrity": new.integrity, "size": new.size, "tags": list(new.tags), "seq": event.seq}, now)
        if render:
            self._rerender(conn, new.name, event.seq, now)
        return event

    async def deprecate(self, name: str, messages: dict[str, str], *, actor: str) -> list[wire.ChangeEvent]:
        """Set (or clear, with "") the deprecation message of versions; one event per change."""
        def run(conn: sqlite3.Connection) -> list[wire.ChangeEvent]:
            now = iso(self._clock())
            events = []
            for version, message in sorted(messages.items()):
                row = conn.execute("SELECT deprecated, unpublished FROM versions WHERE name=? AND version=?",
                                   (name, version)).fetchone()
                if row is None or row[1]:
                    raise NotFound(f"{name}@{version} does not exist", detail={"name": name, "version": version})
                if (row[0] or "") == message:
                    continue
                conn.execute("UPDATE versions SET deprecated=? WHERE name=? AND version=?",
                             (message or None, name, version))
                events.append(self.append_event(conn, wire.DEPRECATE, name, version, [wire.package_key(name)], now,
                                          {"message": message}))
                self.record_audit(conn, "deprecate", actor, f"{name}@{version}", {"message": message}, now)
            if events:
                self._rerender(conn, name, events[-1].seq, now)
            return events

        return await self.write(run)

    async def unpublish(self, name: str, versions: list[str], *, reason: str,
                        actor: str) -> tuple[list[wire.ChangeEvent], list[str]]:
        """Tombstone versions. Returns the events and the blob digests no live version uses."""
        def run(conn: sqlite3.Connection) -> tuple[list[wire.ChangeEvent], list[str]]:
            now = iso(self._clock())
            events, digests = [], []
            for version in versions:
                row = conn.execute("SELECT unpublished, blob_digest FROM versions WHERE name=? AND version=?",
                                   (name, version)).fetchone()
                if row is None:
                    raise NotFound(f"{name}@{version} does not exist", detail={"name": name, "version": version})
                if row[0]:
                    continue
                conn.execute("UPDATE versions SET unpublished=?, unpublish_reason=? WHERE name=? AND version=?",
                             (now, reason, name, version))
                conn.execute("DELETE FROM dist_tags WHERE name=? AND version=?", (name, version))
                digests.append(row[1])
                events.append(self.append_event(
                    conn, wire.UNPUBLISH, name, version,
                    [wire.package_key(name), wire.tarball_key(name, version), wire.SEARCH_KEY], now,
                    {"reason": reason}))
                self.record_audit(conn, "unpublish", actor, f"{name}@{version}", {"reason": reason}, now)
            if events:
                _repair_latest(conn, name)
                self._rerender(conn, name, events[-1].seq, now)
            unused = [d for d in digests if conn.execute(
                "SELECT 1 FROM versions WHERE blob_digest=? AND unpublished IS NULL", (d,)).fetchone() is None]
            return events, unused

        return await self.write(run)

    async def set_dist_tag(self, name: str, tag: str, version: str | None, *, actor: str) -> wire.ChangeEvent:
        """Point ``tag`` at ``version``, or delete it when ``version`` is None."""
        def run(conn: sqlite3.Connection) -> wire.ChangeEvent:
            now = iso(self._clock())
            if conn.execute("SELECT 1 FROM packages WHERE name=?", (name,)).fetchone() is None:
                raise NotFound(f"package {name} does not exist", detail={"name": name})
            if version is None:
                if tag == "latest":
                    raise BadRequest("the latest tag cannot be removed; point it at another version",
                                     code="latest_tag_required")
                if conn.execute("DELETE FROM dist_tags WHERE name=? AND tag=?", (name, tag)).rowcount == 0:
                    raise NotFound(f"{name} has no dist-tag {tag!r}", detail={"name": name, "tag": tag})
            else:
                row = conn.execute("SELECT unpublished FROM versions WHERE name=? AND version=?",
                                   (name, version)).fetchone()
                if row is None or row[0]:
                    raise NotFound(f"{name}@{version} does not exist", detail={"name": name, "version": version})
                conn.execute("INSERT OR REPLACE INTO dist_tags (name, tag, version) VALUES (?, ?, ?)",
                             (name, tag, version))
            event = self.append_event(conn, wire.DIST_TAG, name, version, [wire.package_key(name)], now,
                                {"tag": tag})
            self.record_audit(conn, "dist-tag", actor, name, {"tag": tag, "version": version}, now)
            self._rerender(conn, name, event.seq, now)
            return event

        return await self.write(run)

    def add_advisory_sync(self, advisory: dict[str, Any], *, actor: str) -> wire.ChangeEvent:
        def run(conn: sqlite3.Connection) -> wire.ChangeEvent:
            now = iso(self._clock())
            cur = conn.execute(
                "INSERT INTO advisories (name, vulnerable_versions, severity, title, url, cwe, cvss, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (advisory["name"], advisory["vulnerable_versions"], advisory["severity"], advisory["title"],
                 advisory.get("url", ""), json.dumps(list(advisory.get("cwe", ()))), advisory.get("cvss"), now))
            advisory_id = int(cur.lastrowid or 0)
            # The whole advisory rides in the event, so a follower or a bundle export can
            # reproduce it without another endpoint.
            record = {"id": advisory_id, "name": advisory["name"],
                      "vulnerable_versions": advisory["vulnerable_versions"], "severity": advisory["severity"],
                      "title": advisory["title"], "url": advisory.get("url", ""),
                      "cwe": list(advisory.get("cwe", ())), "cvss": advisory.get("cvss"), "created": now}
            event = self.append_event(conn, wire.ADVISORY, advisory["name"], None,
                                      [wire.advisory_key(advisory["name"])], now, {"advisory": record})
            self.record_audit(conn, "advisory", actor, advisory["name"], {"id": advisory_id, **advisory}, now)
            return event

        return self.write_sync(run)

    def create_token_sync(self, name: str, token_hash: str, scopes: list[str], *, actor: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            now = iso(self._clock())
            cur = conn.execute("INSERT INTO tokens (name, hash, scopes, created) VALUES (?, ?, ?, ?)",
                               (name, token_hash, json.dumps(scopes), now))
            token_id = int(cur.lastrowid or 0)
            self.record_audit(conn, "token-create", actor, name, {"id": token_id, "scopes": scopes}, now)
            return token_id

        return self.write_sync(run)

    def revoke_token_sync(self, token_id: int | None, name: str | None, *, actor: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            now = iso(self._clock())
            rows = conn.execute(
                "SELECT id, name FROM tokens WHERE revoked IS NULL AND (id=? OR name=?)", (token_id, name)
            ).fetchall()
            for rid, rname in rows:
                conn.execute("UPDATE tokens SET revoked=? WHERE id=?", (now, rid))
                self.record_audit(conn, "token-revoke", actor, rname, {"id": rid}, now)
            return len(rows)

        return self.write_sync(run)

    # -- reads ----------------------------------------------------------------------

    async def packument(self, name: str, *, abbreviated: bool) -> StoredDoc:
        return await self.read(lambda conn: _packument(conn, name, abbreviated))

    async def version_doc(self, name: str, spec: str) -> StoredDoc:
        """One version's document; ``spec`` is a version or a dist-tag."""
        return await self.read(lambda conn: _version_doc(conn, name, spec))

    async def tarball(self, name: str, filename: str) -> TarballRecord:
        return await self.read(lambda conn: _tarball(conn, name, filename))

    async def lookup_many(self, lookups: list[Lookup]) -> list[StoredDoc | TarballRecord | EghactError]:
        """Several reads in one snapshot and one thread hop; each answer or its error, in order."""
        def run(conn: sqlite3.Connection) -> list[StoredDoc | TarballRecord | EghactError]:
            seq = _heads(conn)  # one snapshot: the same for every document in it

            def packument_or_dists(c: sqlite3.Connection, name: str, form: str) -> StoredDoc:
                return _dists(c, name, seq) if form == "dists" else _packument(c, name, form == "abbreviated", seq)

            def version_doc(c: sqlite3.Connection, name: str, spec: str) -> StoredDoc:
                return _version_doc(c, name, spec, seq)

            readers: dict[str, Callable[[sqlite3.Connection, str, str], StoredDoc | TarballRecord]] = {
                "packument": packument_or_dists, "version": version_doc, "tarball": _tarball}
            found: list[StoredDoc | TarballRecord | EghactError] = []
            for kind, name, arg in lookups:
                try:
                    found.append(readers[kind](conn, name, arg))
                except EghactError as error:
                    found.append(error)
            return found

        return await self.read(run)

    async def package_state(self, name: str) -> PackageState:
        def run(conn: sqlite3.Connection) -> PackageState:
            row = conn.execute("SELECT seq FROM packages WHERE name=?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"package {name} not found", detail={"name": name})
            versions = {
                v: VersionState(v, d, bool(u))
                for v, d, u in conn.execute(
                    "SELECT version, deprecated, unpublished FROM versions WHERE name=?", (name,))
            }
            tags = dict(conn.execute("SELECT tag, version FROM dist_tags WHERE name=?", (name,)).fetchall())
            return PackageState(name, row[0], versions, tags)

        return await self.read(run)

    async def digest_in_use(self, digest: str) -> bool:
        return await self.read(lambda conn: conn.execute(
            "SELECT 1 FROM versions WHERE blob_digest=? LIMIT 1", (digest,)).fetchone() is not None)

    async def dist_tags(self, name: str) -> dict[str, str]:
        return (await self.package_state(name)).dist_tags

    async def advisories_for(self, names: list[str]) -> list[Advisory]:
        def run(conn: sqlite3.Connection) -> list[Advisory]:
            found: list[Advisory] = []
            for start in range(0, len(names), 500):
                chunk = names[start:start + 500]
                marks = ",".join("?" * len(chunk))
                found.extend(_advisory(r) for r in conn.execute(
                    f"SELECT id, name, vulnerable_versions, severity, title, url, cwe, cvss, created "
                    f"FROM advisories WHERE name IN ({marks}) ORDER BY id", chunk))
            return found

        return await self.read(run)

    async def search(self, query: Any) -> tuple[int, list[Any]]:
        return await self.read(lambda conn: search_packages(conn, query))

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        return await run_blocking(self.token_by_hash_sync, token_hash)

    def token_by_hash_sync(self, token_hash: str) -> TokenRecord | None:
        """The token with this SHA-256 (revoked ones too), for the CLI's checks."""
        with self.read_sync() as conn:
            row = conn.execute("SELECT id, name, scopes, created, revoked FROM tokens WHERE hash=?",
                               (token_hash,)).fetchone()
        if row is None:
            return None
        return TokenRecord(row[0], row[1], tuple(json.loads(row[2])), row[3], row[4])

    def tokens_sync(self) -> list[TokenRecord]:
        with self.read_sync() as conn:
            rows = conn.execute("SELECT id, name, scopes, created, revoked FROM tokens ORDER BY id").fetchall()
        return [TokenRecord(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4]) for r in rows]

    async def stats(self, names: NameFilter = EVERYTHING, *, public: bool = False) -> dict[str, int]:
        """Counts of what ``names`` lets the caller see, and the head of its numbering."""
        def run(conn: sqlite3.Connection) -> dict[str, int]:
            visible, args = clause(names, "name", conn)
            packages = conn.execute(f"SELECT COUNT(*) FROM packages WHERE full_doc IS NOT NULL AND {visible}",
                                    args).fetchone()[0]
            versions = conn.execute(f"SELECT COUNT(*) FROM versions WHERE unpublished IS NULL AND {visible}",
                                    args).fetchone()[0]
            seq = public_feed.head(conn) if public else _last_seq(conn)
            return {"packages": packages, "versions": versions, "seq": seq}

        return await self.read(run)

    def audit_head(self) -> int:
        """The id of the last audit record this registry committed (the file must reach it)."""
        with self.read_sync() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='audit_head'").fetchone()
        return int(json.loads(row[0])[0]) if row else 0

    @contextlib.contextmanager
    def read_sync(self) -> Iterator[sqlite3.Connection]:
        """This thread's reader connection inside one snapshot (several SELECTs, one state)."""
        conn, lock = self._reader()
        with lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")


def _unmark(stored: bytes) -> bytes:
    return packument.materialize(stored, "")


def _last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='changes'").fetchone()
    return int(row[0]) if row else 0


def _heads(conn: sqlite3.Connection) -> tuple[int, int]:
    """The registry's seq and the public seq of one snapshot: what a document reflects."""
    return _last_seq(conn), public_feed.head(conn)


def _packument(conn: sqlite3.Connection, name: str, abbreviated: bool,
               seq: tuple[int, int] | None = None) -> StoredDoc:
    column = "abbrev_doc" if abbreviated else "full_doc"
    row = conn.execute(f"SELECT {column} FROM packages WHERE name=?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"package {name} not found", detail={"name": name})
    if row[0] is None:
        raise Unpublished(f"every version of {name} has been unpublished", detail={"name": name})
    return StoredDoc(bytes(row[0]), *(seq or _heads(conn)))


def _dists(conn: sqlite3.Connection, name: str, seq: tuple[int, int] | None = None) -> StoredDoc:
    """The tarballs the packument lists, as ``dists_body``: what the packument's live versions
    are, read from the same rows the packument was rendered from (in the same snapshot)."""
    row = conn.execute("SELECT full_doc IS NULL FROM packages WHERE name=?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"package {name} not found", detail={"name": name})
    if row[0]:
        raise Unpublished(f"every version of {name} has been unpublished", detail={"name": name})
    rows = conn.execute("SELECT version, tarball_file, blob_digest, size FROM versions "
                        "WHERE name=? AND unpublished IS NULL ORDER BY rowid", (name,)).fetchall()
    return StoredDoc(dists_body(name, rows), *(seq or _heads(conn)))


def dists_body(name: str, rows: list[tuple[str, str, str, int]]) -> bytes:
    """``{"name": NAME, "dists": [[version, tarball file, sha512 hex, size], ...]}``: a list of
    lists, which parses several times faster than the packument it summarises."""
    return json.dumps({"name": name, "dists": rows}, separators=(",", ":"), ensure_ascii=False).encode()


def _version_doc(conn: sqlite3.Connection, name: str, spec: str, seq: tuple[int, int] | None = None) -> StoredDoc:
    version = spec
    tagged = conn.execute("SELECT version FROM dist_tags WHERE name=? AND tag=?", (name, spec)).fetchone()
    if tagged:
        version = tagged[0]
    row = conn.execute("SELECT doc, deprecated, unpublished FROM versions WHERE name=? AND version=?",
                       (name, version)).fetchone()
    if row is None:
        raise NotFound(f"{name}@{spec} not found", detail={"name": name, "version": spec})
    if row[2]:
        raise Unpublished(f"{name}@{version} has been unpublished", detail={"name": name, "version": version})
    return StoredDoc(packument.with_deprecation(bytes(row[0]), row[1]), *(seq or _heads(conn)))


def _tarball(conn: sqlite3.Connection, name: str, filename: str) -> TarballRecord:
    row = conn.execute(
        "SELECT version, blob_digest, integrity, shasum, size, unpublished FROM versions "
        "WHERE name=? AND tarball_file=?", (name, filename)).fetchone()
    if row is None:
        raise NotFound(f"no tarball {filename} for {name}", detail={"name": name, "file": filename})
    return TarballRecord(name, row[0], row[1], row[2], row[3], row[4], bool(row[5]))


# ChangeEvent.to_json rendered by SQLite: the fixed fields, then the extra ones of ``data``
# (any that repeat a fixed one dropped, as to_json drops them). A full export reads the whole
# feed, and parsing and re-encoding every event in Python was most of a page's cost.
_CHANGE_JSON = """
    SELECT @N@, name, CAST('{"seq":' || @N@ || ',"type":' || json_quote(type) || ',"name":' || json_quote(name)
        || ',"version":' || json_quote(version) || ',"keys":' || json(keys) || ',"time":' || json_quote(time)
        || CASE WHEN data = '{}' THEN '}' ELSE coalesce(',' || nullif(substr(json_remove(data, '$.seq', '$.type',
           '$.name', '$.version', '$.keys', '$.time'), 2), '}'), '}') END AS BLOB)
    FROM changes WHERE @N@ > ? ORDER BY @N@ LIMIT ?"""  # @N@: the numbering column (public_feed.column)


def _changes(conn: sqlite3.Connection, since: int, limit: int, public: bool = False) -> list[wire.ChangeEvent]:
    n = public_feed.column(conn, public)
    rows = conn.execute(
        f"SELECT {n}, time, type, name, version, keys, data FROM changes WHERE {n} > ? ORDER BY {n} LIMIT ?",
        (since, limit)).fetchall()
    return [wire.ChangeEvent(seq=r[0], time=r[1], type=r[2], name=r[3], version=r[4],
                             keys=tuple(json.loads(r[5])), data=json.loads(r[6])) for r in rows]


def _advisory(row: tuple[Any, ...]) -> Advisory:
    return Advisory(row[0], row[1], row[2], row[3], row[4], row[5], tuple(json.loads(row[6])), row[7], row[8])


def _repair_latest(conn: sqlite3.Connection, name: str) -> None:
    """After an unpublish took the latest tag away, point it at the highest live release."""
    if conn.execute("SELECT 1 FROM dist_tags WHERE name=? AND tag='latest'", (name,)).fetchone():
        return
    live = [r[0] for r in conn.execute("SELECT version FROM versions WHERE name=? AND unpublished IS NULL",
                                       (name,))]
    if not live:
        return
    # Version(), not parse(): a stored version was valid when published, so None cannot happen,
    # and a row that broke that should fail here rather than be ranked as None.
    releases = [v for v in live if not semver.Version(v).prerelease] or live
    best = max(releases, key=semver.Version)
    conn.execute("INSERT INTO dist_tags (name, tag, version) VALUES (?, 'latest', ?)", (name, best))
