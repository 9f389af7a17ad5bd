"""Co-usage rows: per root name, its ``top`` most co-used names with forward-decayed scores
(:mod:`.decay`). What counts as a use is decided above (``eghact_origin.resolution.cousage``)."""

from __future__ import annotations

import heapq
import sqlite3

from .connection import Connections
from .decay import ForwardDecay

_CHUNK = 500  # names per IN (...): SQLite's default variable limit is 32,766, be modest


class CoUsageRows(Connections):
    async def co_usage_top(self, names: list[str]) -> dict[str, list[str]]:
        def run(conn: sqlite3.Connection) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {}
            for start in range(0, len(names), _CHUNK):
                chunk = names[start:start + _CHUNK]
                rows = conn.execute(
                    f"SELECT name, other FROM co_usage WHERE name IN ({','.join('?' * len(chunk))}) "
                    "ORDER BY name, score DESC, other", chunk)
                for name, other in rows:
                    found.setdefault(name, []).append(other)
            return found

        return await self.read(run)

    async def co_usage_add(self, increments: dict[str, dict[str, float]], *, now: float, half_life: float,
                           top: int, floor: float) -> None:
        def run(conn: sqlite3.Connection) -> None:
            unit = ForwardDecay("co_usage_epoch", ("co_usage",), half_life).weight(conn, now)
            for name, added in increments.items():
                stored = dict(conn.execute("SELECT other, score FROM co_usage WHERE name=?", (name,)).fetchall())
                merged = dict(stored)
                for other, units in added.items():
                    merged[other] = merged.get(other, 0.0) + units * unit
                keep = heapq.nsmallest(top, merged.items(), key=lambda item: (-item[1], item[0]))
                kept = {other for other, _ in keep}
                conn.executemany("DELETE FROM co_usage WHERE name=? AND other=?",
                                 [(name, other) for other in stored if other not in kept])
                conn.executemany(
                    "INSERT INTO co_usage (name, other, score) VALUES (?, ?, ?) "
                    "ON CONFLICT(name, other) DO UPDATE SET score=excluded.score",
                    [(name, other, score) for other, score in keep if stored.get(other) != score])
            conn.execute("DELETE FROM co_usage WHERE score < ?", (floor * unit,))

        await self.write(run)
