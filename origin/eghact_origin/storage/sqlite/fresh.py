"""A first mirror bundle's database, built aside as a new file (``eghact_origin.mirror.fresh`` links it
into place): no journal (``journal_mode=OFF``, ``synchronous=OFF``), bigger pages (16 KiB:
a version row of 2-4 KB takes a whole 4 KiB page, which doubled the size of the versions
table), and the secondary indexes created after their rows — writing a few hundred MB once
instead of twice (WAL, then checkpoint). Nothing here is durable until the caller syncs and
links the file; a crash leaves a stray file in the staging dir, never a half database.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..records import MirrorState, PackageRows
from ..schema import migrate
from ..search import index_search_row
from .mirror import package_values, write_foreign_events, write_state
from .outbox import seal
from .rows import write_dist_tags, write_versions

# A 16 MiB page cache: the build appends (rows in key order, indexes made after them), so a
# bigger cache only holds dirty pages longer. 128 MiB made the mirror import's peak RSS 322 MB
# for a 10,000-plugin bundle (16 MiB: 208 MB) for the same CPU seconds.
_PRAGMAS = ("page_size=16384", "journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE",
            "cache_size=-16384", "temp_store=MEMORY")


def build_mirror_database(path: Path, batches: Iterable[list[PackageRows]], events: Iterable[dict[str, Any]],
                          state: MirrorState, audit: tuple[str, str, str, dict[str, Any], str]) -> None:
    """Write a whole new database at ``path``: the packages (in batches, bounded memory), the
    events (and the advisories they carry), the mirror's ``state`` and one audit record
    ``(action, actor, subject, data, time)``, the first of its chain (appended to audit.jsonl
    when the origin first opens the database). Raises what the rows refuse."""
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
        for batch in batches:
            rowid = _insert(conn, batch, rowid)
        write_foreign_events(conn, events, state.seq)
        for _, sql in deferred:
            conn.execute(sql)
        write_state(conn, state)
        seal(conn, *audit)
        conn.execute("COMMIT")
        # What the origin opens it with; the header says so from now on.
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def _insert(conn: sqlite3.Connection, batch: list[PackageRows], rowid: int) -> int:
    write_versions(conn, [row for rows in batch for row in rows.versions])
    write_dist_tags(conn, [(rows.name, tag, version) for rows in batch for tag, version in rows.tags])
    by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    fields = []
    for rows in batch:
        rowid += 1
        columns, values, searched = package_values(rows)
        by_columns.setdefault(columns, []).append((rowid, *values))
        fields.append(searched)
    for columns, rows_of in by_columns.items():
        conn.executemany(f"INSERT INTO packages (rowid, {', '.join(columns)})"
                         f" VALUES ({', '.join('?' * (len(columns) + 1))})", rows_of)
    for first, (rows, searched) in enumerate(zip(batch, fields, strict=True), start=rowid - len(batch) + 1):
        index_search_row(conn, first, rows.name, searched, replace=False)
    return rowid
