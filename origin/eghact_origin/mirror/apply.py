"""Applying a verified mirror bundle to an origin data dir (``eghact-origin mirror-apply``).

The origin owns its data-dir format; the mirror tool (which may not import the origin)
verifies a bundle's signature and digests, unpacks it into a *staged* directory, and runs
this command. Staged layout (a contract with ``eghact_mirror``, format 3: ``eghact_common.wire.STAGE_FORMAT``)::

    STAGE/stage.json   {"format": 3, "origin_id", "from_seq", "to_seq", "bundle_digest",
                        "previous_digest", "base_url", "packuments": "packuments.pack",
                        "packages": [{"name", "full": [OFFSET, LENGTH],
                                      "abbreviated": [OFFSET, LENGTH]} ...],
                        "removed": [names every version of which is unpublished],
                        "tarballs": {"<sha512 hex>": SIZE, ...},
                        "events": [change events, origin seqs, in order]}
    STAGE/packuments.pack               the packuments exactly as the origin served them
    STAGE/tarballs/<ab>/<sha512>        each tarball ``tarballs`` lists, named by its sha512

The stager vouches for the tarballs' names — eghact-mirror checked every byte against the
signed index (import) or each tarball against its packument's integrity (sync) — so they are
renamed into the blob store, not re-read (``FileBlobStore.adopt``): a full bundle's tens of
thousands of blobs move in a few hundred renames, and are synced once.

Packuments are stored as the origin served them (only the base URL of tarball links is
put back to the mark), so a mirror answers byte for byte what the origin answered; the
origin's seqs are kept, so an edge can follow a mirror's feed as it follows an origin's.
The metadata is written in one transaction, which commits only once the blobs are durable
(they are moved in and synced beside it): a crash leaves the mirror before the bundle or
after it, never between (blobs moved in before a crash are invisible until metadata names
them). Continuity is checked again inside that transaction,
whatever the caller checked before.

A first bundle into an empty mirror takes another way to the same result (:mod:`.fresh`):
the database is built aside as a new file, with no journal, and linked into place once it
and the blobs are durable — writing a few hundred MB once instead of twice (WAL, then
checkpoint). Both ways write the same rows (:func:`package_rows`, :func:`write_events`).
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from eghact_common.durable import write_atomic
from eghact_common.wire import STAGE_FORMAT

from ..storage import FileBlobStore, SqliteMetadataStore
from ..storage.search import index_search_row, update_search_row
from . import fresh
from .errors import MirrorApplyError
from .rows import package_rows, read_at, write_events

_HEX512 = re.compile(r"^[0-9a-f]{128}$")


@dataclass(frozen=True)
class ApplyReport:
    applied: bool
    packages: int
    tarballs: int
    events: int
    to_seq: int


def mirror_state(conn: sqlite3.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT value FROM meta WHERE key='mirror'").fetchone()
    return json.loads(row[0]) if row else {"origin_id": None, "seq": 0, "digest": None, "chain": []}


def _check_continuity(state: dict[str, Any], stage: dict[str, Any]) -> bool:
    """True to apply, False when the bundle is the one last applied (a no-op); raises otherwise."""
    if stage["bundle_digest"] == state["digest"]:
        return False
    if stage["bundle_digest"] in state["chain"]:
        raise MirrorApplyError("the bundle was applied before and has been superseded: a replay",
                               code="replay", exit_code=16)
    if state["origin_id"] not in (None, stage["origin_id"]):
        raise MirrorApplyError(f"the bundle comes from origin {stage['origin_id']}, this mirror follows "
                               f"{state['origin_id']}", code="wrong_origin", exit_code=11)
    if stage["to_seq"] <= state["seq"] and state["chain"]:
        raise MirrorApplyError(f"the bundle ends at seq {stage['to_seq']}, the mirror is already at {state['seq']}",
                               code="downgrade", exit_code=12)
    if stage["from_seq"] != state["seq"] or stage.get("previous_digest") != state["digest"]:
        raise MirrorApplyError(
            f"the bundle starts at seq {stage['from_seq']} after {stage.get('previous_digest')}, the mirror is at "
            f"seq {state['seq']} after {state['digest']}: apply the bundles in order", code="out_of_order",
            exit_code=13)
    return True


def _apply_package(conn: sqlite3.Connection, name: str, full: bytes, abbreviated: bytes, base_url: str,
                   seq: int, sizes: dict[str, int], existed: bool) -> list[str]:
    """Store one package's packuments as served; returns blob digests it no longer uses."""
    rows = package_rows(name, full, abbreviated, base_url, seq, sizes)
    conn.executemany(
        "INSERT OR REPLACE INTO versions (name, version, tarball_file, published, doc, abbrev, blob_digest,"
        " integrity, shasum, size, deprecated, unpublished, unpublish_reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)", rows.versions)
    freed = []
    if existed:
        live = {row[1] for row in rows.versions}
        gone = conn.execute("SELECT version, blob_digest FROM versions WHERE name=? AND unpublished IS NULL",
                            (name,)).fetchall()
        for version, blob in gone:
            if version not in live:
                conn.execute("UPDATE versions SET unpublished=?, unpublish_reason='unpublished at the origin' "
                             "WHERE name=? AND version=?", (rows.modified, name, version))
                freed.append(blob)
        conn.execute("DELETE FROM dist_tags WHERE name=?", (name,))
    conn.executemany("INSERT INTO dist_tags (name, tag, version) VALUES (?, ?, ?)", rows.tags)
    # created is kept from the first time the mirror saw the package, as the origin keeps it.
    columns = rows.columns
    updated = ", ".join(f"{column}=excluded.{column}" for column in columns[2:])  # all but name, created
    cursor = conn.execute(f"INSERT INTO packages ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                          f" ON CONFLICT (name) DO UPDATE SET {updated}", rows.values)
    rowid = conn.execute("SELECT rowid FROM packages WHERE name=?", (name,)).fetchone()[0] if existed \
        else cursor.lastrowid
    index_search_row(conn, rowid, name, rows.fields, replace=existed)
    return freed


def apply_staged(data_dir: Path, stage_dir: Path) -> ApplyReport:
    stage = json.loads((stage_dir / "stage.json").read_bytes())
    if stage.get("format") != STAGE_FORMAT:
        raise MirrorApplyError(f"staged format {stage.get('format')} is not {STAGE_FORMAT}", code="bad_stage",
                               exit_code=10)
    staged: dict[str, int] = stage.get("tarballs") or {}
    if not all(_HEX512.match(digest) and isinstance(size, int) for digest, size in staged.items()):
        raise MirrorApplyError("the staged tarball list names something that is not a sha512", code="bad_stage",
                               exit_code=10)
    report = ApplyReport(True, len(stage["packages"]), len(staged), len(stage["events"]), stage["to_seq"])
    if _apply_fresh(data_dir, stage_dir, stage, staged):
        return report
    data_dir.mkdir(parents=True, exist_ok=True)
    blobs = FileBlobStore(data_dir / "blobs")
    store = SqliteMetadataStore(data_dir)
    try:
        with store.read_sync() as conn:
            state = mirror_state(conn)
            if not _check_continuity(state, stage):
                # Also heals a mirror.json left one bundle behind by a crash after the commit.
                _write_mirror_json(data_dir, state)
                return ApplyReport(False, 0, 0, 0, stage["to_seq"])
        # No fsync per blob (tens of thousands in a full bundle): one sync covers them all. It
        # runs beside the metadata writes (flushing a few hundred MB takes a while) and the
        # transaction waits for it before it commits: nothing points at a blob not yet durable.
        durable = _Durable(blobs, stage_dir / "tarballs") if staged else None
        try:
            with open(stage_dir / stage["packuments"], "rb") if stage["packages"] else io.BytesIO() as pack:
                freed = store.write_sync(lambda conn: _apply(conn, store, stage, pack, staged,
                                                             durable.wait if durable else lambda: None))
        finally:
            if durable is not None:
                durable.thread.join()
        for blob in freed:
            blobs.delete(blob)
        with store.read_sync() as conn:
            _write_mirror_json(data_dir, mirror_state(conn))
        return report
    finally:
        store.close()


def _apply_fresh(data_dir: Path, stage_dir: Path, stage: dict[str, Any], staged: dict[str, int]) -> bool:
    """A first bundle into an empty mirror, built aside (:mod:`.fresh`); False when the mirror
    is not empty. Continuity is checked first, against an empty mirror: a refusal changes nothing."""
    if not fresh.possible(data_dir, stage):
        return False
    _check_continuity({"origin_id": None, "seq": 0, "digest": None, "chain": []}, stage)
    if not fresh.apply(data_dir, stage_dir, stage, staged):
        return False
    store = SqliteMetadataStore(data_dir)  # appends the outbox's audit record to audit.jsonl
    try:
        with store.read_sync() as conn:
            _write_mirror_json(data_dir, mirror_state(conn))
    finally:
        store.close()
    return True


def _apply(conn: sqlite3.Connection, store: SqliteMetadataStore, stage: dict[str, Any], pack: BinaryIO,
           staged: dict[str, int], before_commit: Callable[[], None]) -> list[str]:
    state = mirror_state(conn)
    if not _check_continuity(state, stage):  # re-checked under the write lock
        return []
    # A full bundle writes a few hundred MB in this one transaction: with SQLite's default
    # 2 MB page cache, pages are spilled to the WAL and written there again as they fill up.
    # 64 MB (for this short-lived process) keeps index pages in memory until the commit.
    conn.execute("PRAGMA cache_size=-65536")
    # Blobs already in the mirror also satisfy versions (incremental bundles carry only new
    # tarballs); their sizes are known from the versions that brought them.
    sizes = dict(conn.execute("SELECT blob_digest, size FROM versions"))
    sizes.update(staged)
    existing = {row[0] for row in conn.execute("SELECT name FROM packages")}
    freed: list[str] = []
    base = stage["base_url"]
    for entry in stage["packages"]:
        full, short = read_at(pack, entry["full"]), read_at(pack, entry["abbreviated"])
        freed += _apply_package(conn, entry["name"], full, short, base, stage["to_seq"], sizes,
                                entry["name"] in existing)
    for name in stage.get("removed", []):
        rows = conn.execute("SELECT blob_digest FROM versions WHERE name=? AND unpublished IS NULL", (name,))
        freed += [r[0] for r in rows]
        conn.execute("UPDATE versions SET unpublished='mirror', unpublish_reason='unpublished at the origin' "
                     "WHERE name=? AND unpublished IS NULL", (name,))
        conn.execute("UPDATE packages SET full_doc=NULL, abbrev_doc=NULL WHERE name=?", (name,))
        if conn.execute("SELECT rowid FROM packages WHERE name=?", (name,)).fetchone():
            update_search_row(conn, name, None)
    write_events(conn, stage)
    state = {"origin_id": stage["origin_id"], "seq": stage["to_seq"], "digest": stage["bundle_digest"],
             "chain": [*state["chain"], stage["bundle_digest"]]}
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('mirror', ?)", (json.dumps(state),))
    store.record_audit(conn, "mirror-apply", "mirror", stage["bundle_digest"],
                       {"origin_id": stage["origin_id"], "from_seq": stage["from_seq"], "to_seq": stage["to_seq"],
                        "packages": len(stage["packages"]), "events": len(stage["events"])})
    # Only blobs no live version still names are freed: asked of the digest index for those
    # few, not by reading every digest of the mirror (a full bundle frees nothing at all).
    live: set[str] = set()
    unique = sorted(set(freed))
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        live.update(r[0] for r in conn.execute(
            f"SELECT DISTINCT blob_digest FROM versions WHERE unpublished IS NULL AND blob_digest IN "
            f"({','.join('?' * len(chunk))})", chunk))
    before_commit()
    return [d for d in freed if d not in live]


class _Durable:
    """The staged blobs moved into the store and synced to disk, on a thread; :meth:`wait`
    returns once they are durable, or raises what failed."""

    def __init__(self, blobs: FileBlobStore, tree: Path):
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(blobs, tree), name="blobs-durable")
        self.thread.start()

    def _run(self, blobs: FileBlobStore, tree: Path) -> None:
        try:
            blobs.adopt(tree)
            os.sync()
        except BaseException as exc:  # raised again by wait(), in the transaction
            self._error = exc

    def wait(self) -> None:
        self.thread.join()
        if self._error is not None:
            raise self._error


def _write_mirror_json(data_dir: Path, state: dict[str, Any]) -> None:
    """A human-readable copy of the mirror's position (the database holds the truth)."""
    body = {"source_origin_id": state["origin_id"], "applied_seq": state["seq"], "last_bundle": state["digest"],
            "bundle_chain": state["chain"]}
    write_atomic(data_dir / "mirror.json", json.dumps(body, indent=2).encode(), mode=0o600)  # 0600: as mkstemp made it
