"""Built resolutions: their answers under the request's hash, the names each considered, and
their hit counts. A stored resolution is current while none of the names it considered has
had an event after the seq it was built at: one indexed probe of the feed itself."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from eghact_common import wire

from ..records import StoredResolution
from .feed import Feed


def _fold_hits(conn: sqlite3.Connection, hits: Mapping[str, int]) -> None:
    conn.executemany("UPDATE resolutions SET hits = hits + ? WHERE hash=?",
                     [(count, digest) for digest, count in hits.items()])


class ResolutionRows(Feed):
    async def resolution_request(self, digest: str) -> str | None:
        row = await self.read(lambda conn: conn.execute(
            "SELECT request FROM resolutions WHERE hash=?", (digest,)).fetchone())
        return None if row is None else str(row[0])

    async def resolution_current(self, digest: str) -> StoredResolution | None:
        def load(conn: sqlite3.Connection) -> StoredResolution | None:
            row = conn.execute("SELECT status, body, built_seq, stale FROM resolutions WHERE hash=?",
                               (digest,)).fetchone()
            if row is None or row[3]:
                return None
            changed = conn.execute(
                "SELECT MAX(c.seq) FROM resolution_names r JOIN changes c ON c.name = r.name "
                "WHERE r.hash=? AND c.type != 'resolution'", (digest,)).fetchone()[0]
            if changed is not None and changed > row[2]:
                return None
            names = tuple(n for (n,) in conn.execute(
                "SELECT name FROM resolution_names WHERE hash=? ORDER BY name", (digest,)))
            return StoredResolution(digest, row[0], bytes(row[1]), names, row[2])

        return await self.read(load)

    async def resolution_save(self, request: str, built: StoredResolution, *, keep: int | None = None) -> None:
        def save(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO resolutions (hash, request, status, body, built_seq, built, stale) "
                "VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT(hash) DO UPDATE SET status=excluded.status, "
                "body=excluded.body, built_seq=excluded.built_seq, built=excluded.built, stale=0",
                (built.hash, request, built.status, built.body, built.seq, self.now()))
            conn.execute("DELETE FROM resolution_names WHERE hash=?", (built.hash,))
            conn.executemany("INSERT INTO resolution_names (name, hash) VALUES (?, ?)",
                             [(name, built.hash) for name in built.considered])
            if keep is not None:
                _keep_most_used(conn, keep, built.hash)

        await self.write(save)

    async def resolution_hits(self, hits: Mapping[str, int]) -> None:
        await self.write(lambda conn: _fold_hits(conn, hits))

    async def resolutions_stale(self, names: list[str], hits: Mapping[str, int]) -> list[tuple[str, int]]:
        def mark(conn: sqlite3.Connection) -> list[tuple[str, int]]:
            _fold_hits(conn, hits)
            marks = ",".join("?" * len(names))
            rows = conn.execute(
                f"SELECT DISTINCT r.hash, r.hits, n.name FROM resolution_names n JOIN resolutions r ON r.hash = n.hash "
                f"WHERE n.name IN ({marks}) AND r.stale = 0", names).fetchall()
            now = self.now()
            seen: dict[str, tuple[int, str]] = {}
            for digest, count, cause in rows:
                seen.setdefault(digest, (count, cause))
            for digest, (_, cause) in seen.items():
                conn.execute("UPDATE resolutions SET stale=1 WHERE hash=?", (digest,))
                self.append_event(conn, wire.RESOLUTION, cause, None, [wire.resolution_key(digest)], now,
                                  {"hash": digest, "cause": cause})
            return [(digest, count) for digest, (count, _) in seen.items()]

        return await self.write(mark)


def _keep_most_used(conn: sqlite3.Connection, keep: int, saved: str) -> None:
    """Every distinct request is stored, so without a bound anyone could grow the table by
    asking for made-up trees (issue 11). Beyond ``keep``, the least fetched (then the oldest)
    go; one that is gone is answered 404 and rebuilt when its request is POSTed again. The
    one just saved stays: its answer is being handed out now."""
    over = conn.execute("SELECT count(*) FROM resolutions").fetchone()[0] - keep
    if over <= 0:
        return
    doomed = [row[0] for row in conn.execute(
        "SELECT hash FROM resolutions WHERE hash != ? ORDER BY hits, built LIMIT ?", (saved, over))]
    conn.executemany("DELETE FROM resolution_names WHERE hash=?", [(d,) for d in doomed])
    conn.executemany("DELETE FROM resolutions WHERE hash=?", [(d,) for d in doomed])
