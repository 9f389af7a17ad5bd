"""A first bundle into an empty mirror (the usual air-gap start): the database is built aside
as a new file and linked into place, instead of written through one huge WAL transaction.

Why: a full bundle's database is a few hundred MB. Through the usual path every page goes to
the WAL, is synced there, and is copied into the database again at the checkpoint; here it
is written once, with no journal (``journal_mode=OFF``, ``synchronous=OFF``), in bigger
pages (16 KiB: a version row of 2-4 KB takes a whole 4 KiB page, which doubled the size of
the versions table), with the secondary indexes created after their rows.

Why it is crash-safe: nothing in the data dir changes until the database is complete and
durable, and then it becomes visible in one step. The order:

1. continuity is checked against an empty mirror (:mod:`.apply` does it before calling us);
2. the database is built in the staging dir, while a thread flushes the staged tarballs to
   disk (they were written without a sync);
3. the staged tarballs are moved into the blob store (renames, ``FileBlobStore.adopt``),
   then the database file is fsynced and everything synced — the blobs' directory entries
   included;
4. the database is hard-linked to ``registry.sqlite3``: a link never replaces an existing
   name, so a database another writer created meanwhile is never clobbered (we then apply
   the usual way). Its ``meta`` row ``mirror`` is what marks the bundle applied, so the link
   is the commit: a crash before it leaves an empty mirror (with some invisible blobs, which
   the rerun adopts again), a crash after it a mirror with the bundle (the rerun is a no-op
   that heals ``mirror.json`` and the audit log from the outbox).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eghact_common.durable import fsync_dir

from .. import audit
from ..storage import FileBlobStore
from ..storage.schema import migrate
from ..storage.search import index_search_row
from ..storage.sqlite import iso
from .rows import PackageRows, package_rows, read_at, write_events

DB = "registry.sqlite3"
_BUILDING = "registry.sqlite3.building"
_BATCH = 256  # packages per executemany: bounded memory, few statements
_PRAGMAS = ("page_size=16384", "journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE",
            "cache_size=-131072", "temp_store=MEMORY")


def possible(data_dir: Path, stage: dict[str, Any]) -> bool:
    """Whether the mirror is empty: no database (nor a journal a database would replay)."""
    if any(os.path.lexists(f"{data_dir / DB}{suffix}") for suffix in ("", "-wal", "-journal")):
        return False
    # A package both carried and removed is an odd bundle: the usual path knows what to do.
    return not set(stage.get("removed") or ()) & {entry["name"] for entry in stage["packages"]}


def apply(data_dir: Path, stage_dir: Path, stage: dict[str, Any], staged: dict[str, int]) -> bool:
    """Build, make durable, link. False when a database appeared meanwhile (the blobs are then
    already in the store; the caller applies the usual way). Raises what the rows refuse."""
    building = stage_dir / _BUILDING
    with contextlib.suppress(FileNotFoundError):
        building.unlink()
    # The staged tarballs are dirty in the page cache: flushing them now overlaps the disk
    # with the CPU-bound build, and leaves the final sync little to write.
    flush = threading.Thread(target=os.sync, name="flush-staged")
    flush.start()
    try:
        _build(building, stage, stage_dir / stage["packuments"], staged)
    finally:
        flush.join()
    data_dir.mkdir(parents=True, exist_ok=True)
    FileBlobStore(data_dir / "blobs").adopt(stage_dir / "tarballs")
    with open(building, "rb+") as db:
        os.fsync(db.fileno())
    os.sync()  # the blobs' renames, the data dir and its blob folders
    target = data_dir / DB
    try:
        _link(building, target, data_dir)
    except FileExistsError:
        return False
    fsync_dir(data_dir)
    with contextlib.suppress(FileNotFoundError):
        building.unlink()
    return True


def _link(source: Path, target: Path, data_dir: Path) -> None:
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # The staging dir is on another file system: copy into the data dir first, durably,
        # under a name the origin never opens, then link that.
        copy = data_dir / f".{DB}.{os.getpid()}"
        shutil.copyfile(source, copy)
        try:
            with open(copy, "rb+") as db:
                os.fsync(db.fileno())
            os.link(copy, target)
        finally:
            copy.unlink()


def _build(path: Path, stage: dict[str, Any], pack_path: Path, sizes: dict[str, int]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in _PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        migrate(conn)
        # Secondary indexes are dropped and created again after the rows, from their own SQL
        # (the schema ends up as the migrations wrote it): one sort instead of a random
        # B-tree insert per row.
        deferred = conn.execute("SELECT name, sql FROM sqlite_schema WHERE type='index' AND sql IS NOT NULL"
                                " ORDER BY rowid").fetchall()
        for name, _ in deferred:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute("BEGIN")
        conn.execute("INSERT INTO meta (key, value) VALUES ('registry_id', ?)", (uuid.uuid4().hex,))
        rowid = 0
        for batch in _package_batches(stage, pack_path, sizes):
            rowid = _insert(conn, batch, rowid)
        write_events(conn, stage)
        for _, sql in deferred:
            conn.execute(sql)
        state = {"origin_id": stage["origin_id"], "seq": stage["to_seq"], "digest": stage["bundle_digest"],
                 "chain": [stage["bundle_digest"]]}
        conn.execute("INSERT INTO meta (key, value) VALUES ('mirror', ?)", (json.dumps(state),))
        _record_audit(conn, stage)
        conn.execute("COMMIT")
        # What the origin opens it with; the header says so from now on.
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def _package_batches(stage: dict[str, Any], pack_path: Path, sizes: dict[str, int]) -> Iterator[list[PackageRows]]:
    """The packages' rows, a batch at a time, in the stage's order (bounded memory)."""
    entries = stage["packages"]
    if not entries:
        return
    base, seq = stage["base_url"], stage["to_seq"]
    with open(pack_path, "rb") as pack:
        for start in range(0, len(entries), _BATCH):
            yield [package_rows(e["name"], read_at(pack, e["full"]), read_at(pack, e["abbreviated"]), base, seq, sizes)
                   for e in entries[start:start + _BATCH]]


def _insert(conn: sqlite3.Connection, batch: list[PackageRows], rowid: int) -> int:
    conn.executemany(
        "INSERT INTO versions (name, version, tarball_file, published, doc, abbrev, blob_digest, integrity,"
        " shasum, size, deprecated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [row for rows in batch for row in rows.versions])
    conn.executemany("INSERT INTO dist_tags (name, tag, version) VALUES (?, ?, ?)",
                     [tag for rows in batch for tag in rows.tags])
    by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for rows in batch:
        rowid += 1
        by_columns.setdefault(rows.columns, []).append((rowid, *rows.values))
    for columns, values in by_columns.items():
        conn.executemany(f"INSERT INTO packages (rowid, {', '.join(columns)})"
                         f" VALUES ({', '.join('?' * (len(columns) + 1))})", values)
    for first, rows in enumerate(batch, start=rowid - len(batch) + 1):
        index_search_row(conn, first, rows.name, rows.fields, replace=False)
    return rowid


def _record_audit(conn: sqlite3.Connection, stage: dict[str, Any]) -> None:
    """The audit record of the apply, as ``SqliteMetadataStore.record_audit`` seals it: the first
    of a new database (the outbox is appended to audit.jsonl when the origin first opens it)."""
    sealed = audit.seal(
        {"id": 1, "time": iso(datetime.now(UTC)), "action": "mirror-apply", "actor": "mirror",
         "subject": stage["bundle_digest"],
         "data": {"origin_id": stage["origin_id"], "from_seq": stage["from_seq"], "to_seq": stage["to_seq"],
                  "packages": len(stage["packages"]), "events": len(stage["events"])}},
        audit.GENESIS)
    conn.execute("INSERT INTO audit_outbox (id, line) VALUES (?, ?)", (sealed["id"], audit.canonical_line(sealed)))
    conn.execute("INSERT INTO meta (key, value) VALUES ('audit_head', ?)",
                 (json.dumps([sealed["id"], sealed["hash"]]),))
