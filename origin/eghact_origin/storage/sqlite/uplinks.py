"""Packages pulled from an uplink: their rows (through the one row writer, :func:`.rows.write_served`,
as a mirror stores its origin's packages), their fetch state and their tarballs' upstream URLs.

A package is local when it has a ``packages`` row and no ``uplink_packages`` row; every check
that keeps an uplink from overwriting a local name is made inside the write transaction here,
so no interleaving of a publish and a pull can mix the two.
"""

from __future__ import annotations

import json
import sqlite3

from eghact_common import wire
from eghact_common.errors import UplinkedPackage

from ..records import PulledPackage, UplinkState
from .feed import Feed
from .render import repair_latest, rerender
from .rows import delete_dist_tags, write_served

LOCAL = "local"


def source(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT p.name IS NOT NULL, u.uplink FROM (SELECT ? AS n) LEFT JOIN packages p ON p.name = n"
                       " LEFT JOIN uplink_packages u ON u.name = n", (name,)).fetchone()
    if row[1] is not None:
        return str(row[1])
    return LOCAL if row[0] else None


def _live(conn: sqlite3.Connection, name: str) -> dict[str, tuple[bytes, bytes, str | None, str, str, str, int]]:
    return {v: (bytes(d), bytes(a), dep, f, i, b, s) for v, d, a, dep, f, i, b, s in conn.execute(
        "SELECT version, doc, abbrev, deprecated, tarball_file, integrity, blob_digest, size FROM versions"
        " WHERE name=? AND unpublished IS NULL", (name,))}


class UplinkRows(Feed):
    async def package_source(self, name: str) -> str | None:
        return await self.read(lambda conn: source(conn, name))

    async def uplink_state(self, name: str) -> UplinkState | None:
        def run(conn: sqlite3.Connection) -> UplinkState | None:
            row = conn.execute("SELECT uplink, etag, last_modified, fetched, raw, hidden, reveal_at"
                               " FROM uplink_packages WHERE name=?", (name,)).fetchone()
            if row is None:
                return None
            return UplinkState(name, row[0], row[1], row[2], float(row[3]), bytes(row[4]), json.loads(row[5]),
                               None if row[6] is None else float(row[6]))

        return await self.read(run)

    async def uplink_save(self, pulled: PulledPackage, *, actor: str) -> tuple[list[wire.ChangeEvent], list[str]]:
        return await self.write(lambda conn: self._save(conn, pulled, actor))

    def _save(self, conn: sqlite3.Connection, pulled: PulledPackage,
              actor: str) -> tuple[list[wire.ChangeEvent], list[str]]:
        name, now = pulled.name, self.now()
        where = source(conn, name)
        if where == LOCAL:
            raise UplinkedPackage(f"{name} is published here: it is never pulled from an uplink",
                                  code="local_package", detail={"name": name})
        before = _live(conn, name)
        # A tarball already fetched stays: its digest and size are facts about the same bytes.
        versions = [row._replace(blob_digest=old[5], size=old[6])
                    if (old := before.get(row.version)) is not None and old[4] == row.integrity and old[6] else row
                    for row in pulled.versions]
        tags_before = dict(conn.execute("SELECT tag, version FROM dist_tags WHERE name=?", (name,)).fetchall())
        after = {r.version: (r.doc, r.abbrev, r.deprecated, r.tarball_file) for r in versions}
        changed = where is None or dict(pulled.tags) != tags_before or \
            after != {v: old[:4] for v, old in before.items()}
        conn.execute("INSERT INTO uplink_packages (name, uplink, etag, last_modified, fetched, raw, hidden, reveal_at)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET uplink=excluded.uplink,"
                     " etag=excluded.etag, last_modified=excluded.last_modified, fetched=excluded.fetched,"
                     " raw=excluded.raw, hidden=excluded.hidden, reveal_at=excluded.reveal_at",
                     (name, pulled.uplink, pulled.etag, pulled.last_modified, pulled.fetched, pulled.raw,
                      json.dumps(pulled.hidden), pulled.reveal_at))
        if not changed:
            return [], []
        conn.execute("INSERT OR IGNORE INTO packages (name, created, modified, seq) VALUES (?, ?, ?, 0)",
                     (name, pulled.created or now, now))
        freed = write_served(conn, name, versions, pulled.tags, existed=where is not None, when=now,
                             reason=f"no longer served by uplink {pulled.uplink}")
        conn.execute("DELETE FROM uplink_tarballs WHERE name=?", (name,))
        conn.executemany("INSERT INTO uplink_tarballs (name, filename, url) VALUES (?, ?, ?)",
                         [(name, filename, url) for filename, url in pulled.tarball_urls.items()])
        repair_latest(conn, name)
        first = where is None
        data = {"uplink": pulled.uplink, "versions": len(versions), "first": first}
        # A version no longer served (gone upstream, or hidden by the pull policy now) takes its
        # tarball with it: caches that hold the tarball drop it, as after an unpublish.
        dropped = [wire.tarball_key(name, version) for version in before if version not in after]
        event = self.append_event(conn, wire.UPLINK, name, None, [wire.package_key(name), wire.SEARCH_KEY, *dropped],
                                  now, data)
        self.record_audit(conn, "uplink-pull" if first else "uplink-refresh", actor, name,
                          {**data, "hidden": pulled.hidden, "seq": event.seq}, now)
        rerender(conn, name, event.seq, now)
        unused = [d for d in freed if d and conn.execute(
            "SELECT 1 FROM versions WHERE blob_digest=? AND unpublished IS NULL", (d,)).fetchone() is None]
        return [event], unused

    async def uplink_touch(self, name: str, *, fetched: float, etag: str | None,
                           last_modified: str | None) -> None:
        await self.write(lambda conn: conn.execute(
            "UPDATE uplink_packages SET fetched=?, etag=COALESCE(?, etag), last_modified=COALESCE(?, last_modified)"
            " WHERE name=?", (fetched, etag, last_modified, name)))

    async def uplink_due(self, uplink: str, before: float, limit: int) -> list[tuple[str, float]]:
        return await self.read(lambda conn: [(str(n), float(f)) for n, f in conn.execute(
            "SELECT name, fetched FROM uplink_packages WHERE uplink=? AND fetched<? ORDER BY fetched, name LIMIT ?",
            (uplink, before, max(0, limit)))])

    async def uplink_reveals(self, before: float, limit: int) -> list[tuple[str, float]]:
        return await self.read(lambda conn: [(str(n), float(r)) for n, r in conn.execute(
            "SELECT name, reveal_at FROM uplink_packages WHERE reveal_at IS NOT NULL AND reveal_at<?"
            " ORDER BY reveal_at, name LIMIT ?", (before, max(0, limit)))])

    async def uplink_tarball_url(self, name: str, filename: str) -> str | None:
        row = await self.read(lambda conn: conn.execute(
            "SELECT url FROM uplink_tarballs WHERE name=? AND filename=?", (name, filename)).fetchone())
        return None if row is None else str(row[0])

    async def uplink_tarball_stored(self, name: str, version: str, *, digest: str, size: int,
                                    integrity: str) -> None:
        await self.write(lambda conn: conn.execute(
            "UPDATE versions SET blob_digest=?, size=?, integrity=? WHERE name=? AND version=?"
            " AND name IN (SELECT name FROM uplink_packages)", (digest, size, integrity, name, version)))

    async def uplink_takeover(self, name: str, *, actor: str) -> tuple[list[wire.ChangeEvent], list[str]]:
        def run(conn: sqlite3.Connection) -> tuple[list[wire.ChangeEvent], list[str]]:
            row = conn.execute("SELECT uplink FROM uplink_packages WHERE name=?", (name,)).fetchone()
            if row is None:
                return [], []
            now = self.now()
            reason = f"taken over from uplink {row[0]}"
            live = conn.execute("SELECT version, blob_digest FROM versions WHERE name=? AND unpublished IS NULL",
                                (name,)).fetchall()
            conn.execute("UPDATE versions SET unpublished=?, unpublish_reason=? WHERE name=? AND unpublished IS NULL",
                         (now, reason, name))
            delete_dist_tags(conn, name)
            conn.execute("DELETE FROM uplink_packages WHERE name=?", (name,))
            conn.execute("DELETE FROM uplink_tarballs WHERE name=?", (name,))
            events = [self.append_event(conn, wire.UNPUBLISH, name, version,
                                        [wire.package_key(name), wire.tarball_key(name, version), wire.SEARCH_KEY],
                                        now, {"reason": reason}) for version, _ in live]
            self.record_audit(conn, "uplink-takeover", actor, name, {"uplink": row[0], "versions": len(live)}, now)
            if events:
                rerender(conn, name, events[-1].seq, now)
            unused = [d for _, d in live if d and conn.execute(
                "SELECT 1 FROM versions WHERE blob_digest=? AND unpublished IS NULL", (d,)).fetchone() is None]
            return events, unused

        return await self.write(run)
