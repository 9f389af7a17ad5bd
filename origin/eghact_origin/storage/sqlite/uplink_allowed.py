"""The admin's per-version overrides of the uplinks' pull policy: versions shown although the
cooldown or an advisory would hide them. Each change is sealed with its audit record in the
transaction that makes it; a change that changes nothing records nothing."""

from __future__ import annotations

import sqlite3

from .outbox import Outbox


class UplinkAllowedRows(Outbox):
    async def uplink_allow(self, name: str, version: str, *, actor: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            now = self.now()
            added = conn.execute(
                "INSERT INTO uplink_allowed (name, version, actor, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(name, version) DO NOTHING", (name, version, actor, now)).rowcount > 0
            if added:
                self.record_audit(conn, "uplink-allow", actor, name, {"version": version}, now)
            return added

        return await self.write(run)

    async def uplink_disallow(self, name: str, version: str, *, actor: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            removed = conn.execute("DELETE FROM uplink_allowed WHERE name=? AND version=?",
                                   (name, version)).rowcount > 0
            if removed:
                self.record_audit(conn, "uplink-disallow", actor, name, {"version": version})
            return removed

        return await self.write(run)

    async def uplink_allowed(self, name: str) -> set[str]:
        def run(conn: sqlite3.Connection) -> set[str]:
            return {row[0] for row in conn.execute("SELECT version FROM uplink_allowed WHERE name=?", (name,))}

        return await self.read(run)
