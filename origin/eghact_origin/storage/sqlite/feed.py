"""The changes feed in SQLite: appending events, reading pages of them in either numbering.

Seqs are allocated under the write lock and commits are serialised, so a reader that saw
seq N can never later see a new event below N: the feed has no gaps and no reordering,
even with writers in several processes (CLI, server, mirror-apply).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from eghact_common import wire

from .. import public_feed
from .connection import last_seq
from .outbox import Outbox

# ChangeEvent.to_json rendered by SQLite: the fixed fields, then the extra ones of ``data``
# (any that repeat a fixed one dropped, as to_json drops them). A full export reads the whole
# feed, and parsing and re-encoding every event in Python was most of a page's cost.
_CHANGE_JSON = """
    SELECT @N@, name, CAST('{"seq":' || @N@ || ',"type":' || json_quote(type) || ',"name":' || json_quote(name)
        || ',"version":' || json_quote(version) || ',"keys":' || json(keys) || ',"time":' || json_quote(time)
        || CASE WHEN data = '{}' THEN '}' ELSE coalesce(',' || nullif(substr(json_remove(data, '$.seq', '$.type',
           '$.name', '$.version', '$.keys', '$.time'), 2), '}'), '}') END AS BLOB)
    FROM changes WHERE @N@ > ? ORDER BY @N@ LIMIT ?"""  # @N@: the numbering column (public_feed.column)

_EVENT_COLUMNS = frozenset(("seq", "time", "type", "name", "version", "keys"))


def append_event(conn: sqlite3.Connection, type_: str, name: str, version: str | None,
                 keys: list[str], now: str, data: dict[str, Any] | None = None) -> wire.ChangeEvent:
    """One new event (the next seq) in the caller's write transaction, numbered publicly."""
    cur = conn.execute(
        "INSERT INTO changes (time, type, name, version, keys, data) VALUES (?, ?, ?, ?, ?, ?)",
        (now, type_, name, version, json.dumps(keys), json.dumps(data or {})),
    )
    seq = int(cur.lastrowid or 0)
    public_feed.number(conn)
    return wire.ChangeEvent(seq=seq, type=type_, name=name, version=version, keys=tuple(keys),
                            time=now, data=data or {})


def insert_foreign_events(conn: sqlite3.Connection, events: Iterable[dict[str, Any]], to_seq: int) -> None:
    """Events another registry numbered (a mirror bundle's, as ``ChangeEvent.to_json`` wrote
    them), with their seqs; the feed's position moves to ``to_seq`` even when the bundle's
    filter left no event here. Numbered publicly by the server that next opens the store.
    ``events`` is read once, as it comes (a full bundle's can be millions: never a list)."""
    conn.executemany(
        "INSERT INTO changes (seq, time, type, name, version, keys, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((event["seq"], event["time"], event["type"], event["name"], event.get("version"), json.dumps(event["keys"]),
          json.dumps({k: v for k, v in event.items() if k not in _EVENT_COLUMNS}))
         for event in events))
    # sqlite_sequence has no key on name: INSERT OR REPLACE added a second 'changes' row beside
    # the one the INSERTs above made, and the feed's head stayed at the last event's seq.
    if to_seq > 0 and conn.execute("UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name='changes'",
                                   (to_seq,)).rowcount == 0:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('changes', ?)", (to_seq,))


def changes_page(conn: sqlite3.Connection, since: int, limit: int, public: bool = False) -> list[wire.ChangeEvent]:
    n = public_feed.column(conn, public)
    rows = conn.execute(
        f"SELECT {n}, time, type, name, version, keys, data FROM changes WHERE {n} > ? ORDER BY {n} LIMIT ?",
        (since, limit)).fetchall()
    return [wire.ChangeEvent(seq=r[0], time=r[1], type=r[2], name=r[3], version=r[4],
                             keys=tuple(json.loads(r[5])), data=json.loads(r[6])) for r in rows]


def heads(conn: sqlite3.Connection) -> tuple[int, int]:
    """The registry's seq and the public seq of one snapshot: what a document reflects."""
    return last_seq(conn), public_feed.head(conn)


class Feed(Outbox):
    def append_event(self, conn: sqlite3.Connection, type_: str, name: str, version: str | None,
                     keys: list[str], now: str, data: dict[str, Any] | None = None) -> wire.ChangeEvent:
        return append_event(conn, type_, name, version, keys, now, data)

    async def changes(self, since: int, limit: int, *, public: bool = False) -> list[wire.ChangeEvent]:
        """``public``: the public view, numbered by public seq (storage/public_feed.py)."""
        return await self.read(lambda conn: changes_page(conn, since, limit, public))

    async def changes_json(self, since: int, limit: int, *, public: bool = False) -> list[tuple[int, str, bytes]]:
        def run(conn: sqlite3.Connection) -> list[tuple[int, str, bytes]]:
            return conn.execute(_CHANGE_JSON.replace("@N@", public_feed.column(conn, public)),
                                (since, limit)).fetchall()

        return await self.read(run)

    def changes_sync(self, since: int, limit: int) -> list[wire.ChangeEvent]:
        with self.read_sync() as conn:
            return changes_page(conn, since, limit)

    async def last_seq(self, *, public: bool = False) -> int:
        return await self.read(public_feed.head if public else last_seq)

    async def feed_extent(self, *, public: bool = False) -> dict[str, Any]:
        """``{registry_id, first_seq, last_seq}`` of the caller's numbering."""
        def run(conn: sqlite3.Connection) -> dict[str, Any]:
            if public:
                return {"registry_id": public_feed.registry_id(conn, self.registry_id),
                        "first_seq": public_feed.first(conn), "last_seq": public_feed.head(conn)}
            first = conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
            last = last_seq(conn)
            return {"registry_id": self.registry_id, "first_seq": int(first) if first is not None else last + 1,
                    "last_seq": last}

        return await self.read(run)

    async def public_registry_id(self) -> str:
        return await self.read(lambda conn: public_feed.registry_id(conn, self.registry_id))

    async def public_seq_at(self, seq: int) -> int:
        return await self.read(lambda conn: public_feed.at(conn, seq))

    async def configure_public_view(self, private_scopes: tuple[str, ...]) -> None:
        """Number the public view for the server's private scopes (at start)."""
        await self.write(lambda conn: public_feed.configure(conn, private_scopes))

    async def number_public(self) -> None:
        """Number events other processes appended (mirror-apply), if any."""
        if await self.read(public_feed.behind):
            await self.write(public_feed.number)
