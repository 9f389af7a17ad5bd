"""A mirror's writes: packages stored as the origin served them, the origin's events with their
seqs, and the mirror's place in the origin's chain of bundles.

Two ways reach the same rows: :class:`SqliteMirrorWriter` inside one write transaction of an open
store (every bundle after the first), and :mod:`.fresh` (a first bundle, built aside). Both
hand version, dist-tag and advisory rows to :mod:`.rows`, as publish does, and package rows
to :func:`package_values`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from ..records import AdvisoryRecord, MirrorState, PackageRows, VersionRow
from ..search import SEARCH_COLUMNS, index_search_row, search_fields, update_search_row
from .feed import insert_foreign_events
from .outbox import Outbox
from .rows import write_advisory, write_served

T = TypeVar("T")

_PACKAGE_COLUMNS = ("name", "created", "modified", "seq", "full_doc", "abbrev_doc", "latest")
_CHUNK = 500  # digests per IN (...)


def package_values(rows: PackageRows) -> tuple[tuple[str, ...], tuple[Any, ...], tuple[Any, ...] | None]:
    """The packages row's columns and values, and the search fields (None: no latest version).
    The search columns go in with the packuments: updating them afterwards would write the
    whole row (packuments and all) a second time."""
    fields = None if rows.latest_doc is None else search_fields(rows.latest_doc)
    columns = _PACKAGE_COLUMNS + (SEARCH_COLUMNS if fields else ())
    values = (rows.name, rows.created, rows.modified, rows.seq, rows.full_doc, rows.abbrev_doc, rows.latest,
              *(fields or ()))
    return columns, values, fields


def read_state(conn: sqlite3.Connection) -> MirrorState:
    row = conn.execute("SELECT value FROM meta WHERE key='mirror'").fetchone()
    if row is None:
        return MirrorState()
    raw = json.loads(row[0])
    return MirrorState(raw["origin_id"], int(raw["seq"]), raw["digest"], tuple(raw["chain"]))


def write_state(conn: sqlite3.Connection, state: MirrorState) -> None:
    value = json.dumps({"origin_id": state.origin_id, "seq": state.seq, "digest": state.digest,
                        "chain": list(state.chain)})
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('mirror', ?)", (value,))


def write_foreign_events(conn: sqlite3.Connection, events: Iterable[dict[str, Any]], to_seq: int) -> None:
    """The bundle's change events (origin seqs), the advisories they carry, and the feed's
    position. ``events`` is read once, as it comes; only the advisory events are kept aside."""
    carrying: list[dict[str, Any]] = []

    def noting(events: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for event in events:
            if event["type"] == "advisory" and isinstance(event.get("advisory"), dict):
                carrying.append(event)
            yield event

    insert_foreign_events(conn, noting(events), to_seq)
    for event in carrying:
        advisory = event["advisory"]
        write_advisory(conn, AdvisoryRecord(
            advisory["name"], advisory["vulnerable_versions"], advisory["severity"], advisory["title"],
            advisory.get("url", ""), tuple(advisory.get("cwe", [])), advisory.get("cvss"),
            advisory.get("created", event["time"]), id=advisory["id"]))


class SqliteMirrorWriter:
    """What one bundle's apply may do, inside its single write transaction."""

    def __init__(self, conn: sqlite3.Connection, store: Outbox):
        self._conn = conn
        self._store = store

    def state(self) -> MirrorState:
        return read_state(self._conn)

    def blob_sizes(self) -> dict[str, int]:
        """Every blob a version names, with its size: blobs already here satisfy versions too."""
        return dict(self._conn.execute("SELECT blob_digest, size FROM versions"))

    def package_names(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT name FROM packages")}

    def live_versions(self, name: str) -> list[VersionRow]:
        return [VersionRow(name, v, file, published, bytes(doc), bytes(abbrev), blob, sri, shasum, size, deprecated)
                for v, file, published, doc, abbrev, blob, sri, shasum, size, deprecated in self._conn.execute(
                    "SELECT version, tarball_file, published, doc, abbrev, blob_digest, integrity, shasum, size,"
                    " deprecated FROM versions WHERE name=? AND unpublished IS NULL ORDER BY rowid", (name,))]

    def write_package(self, rows: PackageRows, existed: bool) -> list[str]:
        """Store one package as served; returns blob digests of versions it no longer lists."""
        conn, name = self._conn, rows.name
        freed = write_served(conn, name, rows.versions, rows.tags, existed=existed, when=rows.modified,
                             reason="unpublished at the origin")
        # created is kept from the first time the mirror saw the package, as the origin keeps it.
        columns, values, fields = package_values(rows)
        updated = ", ".join(f"{column}=excluded.{column}" for column in columns[2:])  # all but name, created
        cursor = conn.execute(f"INSERT INTO packages ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                              f" ON CONFLICT (name) DO UPDATE SET {updated}", values)
        rowid = None if existed else cursor.lastrowid
        if rowid is None:  # an upsert that updated leaves lastrowid as it was: ask for the row
            rowid = conn.execute("SELECT rowid FROM packages WHERE name=?", (name,)).fetchone()[0]
        index_search_row(conn, rowid, name, fields, replace=existed)
        return freed

    def remove_package(self, name: str) -> list[str]:
        """Every version of ``name`` unpublished at the origin; returns the digests they named."""
        conn = self._conn
        freed = [r[0] for r in conn.execute(
            "SELECT blob_digest FROM versions WHERE name=? AND unpublished IS NULL", (name,))]
        conn.execute("UPDATE versions SET unpublished='mirror', unpublish_reason='unpublished at the origin' "
                     "WHERE name=? AND unpublished IS NULL", (name,))
        conn.execute("UPDATE packages SET full_doc=NULL, abbrev_doc=NULL WHERE name=?", (name,))
        if conn.execute("SELECT rowid FROM packages WHERE name=?", (name,)).fetchone():
            update_search_row(conn, name, None)
        return freed

    def write_events(self, events: Iterable[dict[str, Any]], to_seq: int) -> None:
        write_foreign_events(self._conn, events, to_seq)

    def set_state(self, state: MirrorState) -> None:
        write_state(self._conn, state)

    def audit(self, action: str, actor: str, subject: str, data: dict[str, Any]) -> None:
        self._store.record_audit(self._conn, action, actor, subject, data)

    def live_digests(self, digests: list[str]) -> set[str]:
        """Those of ``digests`` a live version still names: asked of the digest index for those
        few, not by reading every digest of the mirror (a full bundle frees nothing at all)."""
        live: set[str] = set()
        unique = sorted(set(digests))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start:start + _CHUNK]
            live.update(r[0] for r in self._conn.execute(
                f"SELECT DISTINCT blob_digest FROM versions WHERE unpublished IS NULL AND blob_digest IN "
                f"({','.join('?' * len(chunk))})", chunk))
        return live


class MirrorRows(Outbox):
    def mirror_state_sync(self) -> MirrorState:
        with self.read_sync() as conn:
            return read_state(conn)

    def mirror_apply_sync(self, fn: Callable[[SqliteMirrorWriter], T]) -> T:
        """Run ``fn`` in one write transaction (it commits when ``fn`` returns, rolls back when it
        raises), then append the audit record it made."""
        def run(conn: sqlite3.Connection) -> T:
            # A full bundle writes a few hundred MB in this one transaction: with SQLite's default
            # 2 MB page cache, pages are spilled to the WAL and written there again as they fill
            # up. 64 MB (for this short-lived process) keeps index pages in memory until the commit.
            conn.execute("PRAGMA cache_size=-65536")
            return fn(SqliteMirrorWriter(conn, self))

        return self.write_sync(run)

