"""The fleet's rows: global popularity (forward-decayed, :mod:`.decay`), each edge token's
capped share of it, and the registered edges. What may be counted is decided above
(``eghact_origin.fleet_registry``); this module only stores and ranks it."""

from __future__ import annotations

import json
import sqlite3

from ..records import EdgeRecord
from ..visibility import NameFilter, clause
from .connection import Connections
from .decay import ForwardDecay


def _popularity(half_life: float) -> ForwardDecay:
    # A token's share decays with the scores it capped, so both tables rebase together.
    return ForwardDecay("popularity_epoch", ("popularity", "popularity_shares"), half_life)


class FleetRows(Connections):
    async def popularity_add(self, owner: int | None, edge_id: str, hits: dict[str, tuple[str, int]], *,
                             now: float, half_life: float, share_cap: float) -> tuple[int, int] | None:
        def run(conn: sqlite3.Connection) -> tuple[int, int] | None:
            row = conn.execute("SELECT owner FROM edges WHERE id=?", (edge_id,)).fetchone()
            if row is None or row[0] != owner:
                return None
            weight = _popularity(half_life).weight(conn, now)
            cap = share_cap * weight
            rows, capped = [], 0
            for key, (name, count) in hits.items():
                share = conn.execute("SELECT score FROM popularity_shares WHERE owner=? AND key=?",
                                     (owner, key)).fetchone()
                before = share[0] if share else 0.0
                after = min(before + count * weight, cap)
                capped += after < before + count * weight
                if after > before:
                    rows.append((key, name, after - before, now, after))
            conn.executemany("INSERT OR REPLACE INTO popularity_shares (owner, key, score) VALUES (?, ?, ?)",
                             [(owner, key, after) for key, _, _, _, after in rows])
            conn.executemany(
                "INSERT INTO popularity (key, name, score, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET score = score + excluded.score, updated = excluded.updated",
                [row[:4] for row in rows],
            )
            return len(rows), int(capped)

        return await self.write(run)

    async def popularity_top(self, limit: int, names: NameFilter, *, now: float,
                             half_life: float) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        def run(conn: sqlite3.Connection) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
            scale = _popularity(half_life).scale(conn, now)
            visible, args = clause(names, "name", conn)
            where = (f"name IS NOT NULL AND {visible} AND name IN "
                     "(SELECT name FROM packages WHERE full_doc IS NOT NULL)")
            keys = conn.execute(f"SELECT key, score FROM popularity WHERE {where} ORDER BY score DESC LIMIT ?",
                                (*args, limit)).fetchall()
            packages = conn.execute(
                f"SELECT name, SUM(score) AS s FROM popularity WHERE {where} GROUP BY name "
                "ORDER BY s DESC LIMIT ?", (*args, limit)).fetchall()
            return [(k, s * scale) for k, s in keys], [(n, s * scale) for n, s in packages]

        return await self.read(run)

    async def edge_register(self, edge: EdgeRecord, owner: int | None, *, admin: bool) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT e.owner, t.revoked IS NULL AND t.id IS NOT NULL FROM edges e "
                               "LEFT JOIN tokens t ON t.id = e.owner WHERE e.id=?", (edge.id,)).fetchone()
            if row is not None and row[0] != owner and row[1] and not admin:
                return False
            conn.execute(
                "INSERT INTO edges (id, region, url, health, registered, last_seen, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET region=excluded.region, url=excluded.url, health=excluded.health, "
                "last_seen=excluded.last_seen, owner=excluded.owner",
                (edge.id, edge.region, edge.url, json.dumps(edge.health), edge.registered, edge.last_seen, owner))
            return True

        return await self.write(run)

    async def edge_list(self) -> list[EdgeRecord]:
        def run(conn: sqlite3.Connection) -> list[EdgeRecord]:
            rows = conn.execute("SELECT id, region, url, health, registered, last_seen FROM edges "
                                "ORDER BY region, id").fetchall()
            return [EdgeRecord(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

        return await self.read(run)
