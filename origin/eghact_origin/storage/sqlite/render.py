"""Rendering a package's stored packuments from its rows, inside the write that changed them.

A read is then one row read and no JSON work: the full and abbreviated packuments are kept
rendered (with the base mark, packument.py) in ``packages``, together with the search row of
the latest version.
"""

from __future__ import annotations

import json
import sqlite3

from eghact_common import semver

from ... import packument
from .. import public_feed
from ..search import update_search_row
from .rows import write_dist_tags


def unmark(stored: bytes) -> bytes:
    return packument.materialize(stored, "")


def rerender(conn: sqlite3.Connection, name: str, seq: int, now: str) -> None:
    """Render ``name``'s packuments (and search row) from its live versions and tags."""
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
    latest_doc = json.loads(unmark(next(f.full for f in fragments if f.version == latest)))
    full, abbrev = packument.render_packuments(
        name, versions=fragments, dist_tags=tags, created=created, modified=now,
        seq=public_feed.seq_of(conn, name, seq),  # its _rev: no registry seq in a public document
        latest_doc=latest_doc,
    )
    conn.execute("UPDATE packages SET full_doc=?, abbrev_doc=?, modified=?, seq=?, latest=? WHERE name=?",
                 (full, abbrev, now, seq, latest, name))
    update_search_row(conn, name, latest_doc)


def repair_latest(conn: sqlite3.Connection, name: str) -> None:
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
    write_dist_tags(conn, [(name, "latest", best)])
