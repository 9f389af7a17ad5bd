"""A read-only snapshot reader for the resolver's worker processes.

A worker opens the registry file read-only (no writer thread, no migration) and reads each
resolution inside one snapshot, so it sees one committed state. It is made in the worker by
calling what :meth:`SqliteMetadataStore.snapshot_opener` returned (picklable: the pool is
spawned), so the service that starts the pool never learns which backend it is.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .connection import last_seq


class SqliteSnapshot:
    """The embedded :class:`~eghact_origin.storage.PackageSnapshot`."""

    def __init__(self, db_path: Path):
        self._conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=30000")

    def begin(self) -> tuple[int, Any]:
        self._conn.execute("BEGIN")
        mark = self._conn.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM advisories").fetchone()
        return last_seq(self._conn), tuple(mark)

    def end(self) -> None:
        self._conn.execute("COMMIT")

    def package_seq(self, name: str) -> int | None:
        row = self._conn.execute("SELECT seq FROM packages WHERE name=? AND abbrev_doc IS NOT NULL",
                                 (name,)).fetchone()
        return None if row is None else int(row[0])

    def abbreviated(self, name: str) -> bytes:
        (body,) = self._conn.execute("SELECT abbrev_doc FROM packages WHERE name=?", (name,)).fetchone()
        return bytes(body)

    def advisories(self, name: str) -> list[dict[str, Any]]:
        return [{"id": r[0], "vulnerable_versions": r[1], "severity": r[2], "title": r[3], "url": r[4]}
                for r in self._conn.execute(
                    "SELECT id, vulnerable_versions, severity, title, url FROM advisories WHERE name=? ORDER BY id",
                    (name,))]

    def close(self) -> None:
        self._conn.close()
