"""The one writer of version, dist-tag and advisory rows.

Publish (and seeding), ``mirror.apply`` and ``mirror.fresh`` all store these rows; they used
to spell their own INSERTs, and a column added on one path was missed on another. Each path
decides *what* to write (a rendered publish, packuments as the origin served them) and hands
the rows here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence

from ..records import AdvisoryRecord, VersionRow

_VERSION_COLUMNS = ", ".join(VersionRow._fields)
_VERSION_MARKS = ", ".join("?" * len(VersionRow._fields))


def write_versions(conn: sqlite3.Connection, rows: Sequence[VersionRow], *, replace: bool = False) -> None:
    """Live version rows. ``replace``: a row of the same name and version is overwritten and
    live again (a mirror takes the origin's word); otherwise it must be new (publish checks)."""
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    conn.executemany(f"{verb} INTO versions ({_VERSION_COLUMNS}, unpublished, unpublish_reason)"
                     f" VALUES ({_VERSION_MARKS}, NULL, NULL)", rows)


def write_served(conn: sqlite3.Connection, name: str, versions: Sequence[VersionRow],
                 tags: Iterable[tuple[str, str]], *, existed: bool, when: str, reason: str) -> list[str]:
    """Store ``name``'s versions and tags as another registry serves them (a mirror's origin,
    an uplink): its rows live (overwritten), versions it no longer lists unpublished at ``when``
    for ``reason``, its tags replaced. Returns the blob digests of versions it unpublished."""
    write_versions(conn, versions, replace=True)
    freed = []
    if existed:
        live = {row.version for row in versions}
        rows = conn.execute("SELECT version, blob_digest FROM versions WHERE name=? AND unpublished IS NULL",
                            (name,)).fetchall()
        for version, blob in rows:
            if version not in live:
                conn.execute("UPDATE versions SET unpublished=?, unpublish_reason=? WHERE name=? AND version=?",
                             (when, reason, name, version))
                freed.append(blob)
        delete_dist_tags(conn, name)
    write_dist_tags(conn, [(name, tag, version) for tag, version in tags])
    return freed


def write_dist_tags(conn: sqlite3.Connection, tags: Iterable[tuple[str, str, str]]) -> None:
    """Point each (name, tag, version), replacing where the tag pointed before."""
    conn.executemany("INSERT OR REPLACE INTO dist_tags (name, tag, version) VALUES (?, ?, ?)", tags)


def delete_dist_tags(conn: sqlite3.Connection, name: str, *, tag: str | None = None,
                     version: str | None = None) -> int:
    """Remove ``name``'s tags: one ``tag``, those pointing at ``version``, or (neither) all."""
    if tag is not None:
        return conn.execute("DELETE FROM dist_tags WHERE name=? AND tag=?", (name, tag)).rowcount
    if version is not None:
        return conn.execute("DELETE FROM dist_tags WHERE name=? AND version=?", (name, version)).rowcount
    return conn.execute("DELETE FROM dist_tags WHERE name=?", (name,)).rowcount


def write_advisory(conn: sqlite3.Connection, advisory: AdvisoryRecord) -> int:
    """Store an advisory (a new id when it has none, else replacing that id); returns its id."""
    cur = conn.execute(
        "INSERT OR REPLACE INTO advisories (id, name, vulnerable_versions, severity, title, url, cwe, cvss, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (advisory.id, advisory.name, advisory.vulnerable_versions, advisory.severity, advisory.title,
         advisory.url, json.dumps(list(advisory.cwe)), advisory.cvss, advisory.created))
    return advisory.id if advisory.id is not None else int(cur.lastrowid or 0)
