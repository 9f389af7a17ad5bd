"""API tokens: stored as SHA-256 only; revocation is a timestamp, never a delete (the audit
log and edge registrations refer to token ids)."""

from __future__ import annotations

import json
import sqlite3

from eghact_common.blocking import run_blocking

from ..records import TokenRecord
from .outbox import Outbox

_COLUMNS = "id, name, scopes, created, revoked"


def _record(row: tuple[int, str, str, str, str | None]) -> TokenRecord:
    return TokenRecord(row[0], row[1], tuple(json.loads(row[2])), row[3], row[4])


class Tokens(Outbox):
    def create_token_sync(self, name: str, token_hash: str, scopes: list[str], *, actor: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            now = self.now()
            cur = conn.execute("INSERT INTO tokens (name, hash, scopes, created) VALUES (?, ?, ?, ?)",
                               (name, token_hash, json.dumps(scopes), now))
            token_id = int(cur.lastrowid or 0)
            self.record_audit(conn, "token-create", actor, name, {"id": token_id, "scopes": scopes}, now)
            return token_id

        return self.write_sync(run)

    def revoke_token_sync(self, token_id: int | None, name: str | None, *, actor: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            now = self.now()
            rows = conn.execute(
                "SELECT id, name FROM tokens WHERE revoked IS NULL AND (id=? OR name=?)", (token_id, name)
            ).fetchall()
            for rid, rname in rows:
                conn.execute("UPDATE tokens SET revoked=? WHERE id=?", (now, rid))
                self.record_audit(conn, "token-revoke", actor, rname, {"id": rid}, now)
            return len(rows)

        return self.write_sync(run)

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        return await run_blocking(self.token_by_hash_sync, token_hash)

    def token_by_hash_sync(self, token_hash: str) -> TokenRecord | None:
        """The token with this SHA-256 (revoked ones too), for the CLI's checks."""
        with self.read_sync() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM tokens WHERE hash=?", (token_hash,)).fetchone()
        return None if row is None else _record(row)

    def tokens_sync(self) -> list[TokenRecord]:
        with self.read_sync() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM tokens ORDER BY id").fetchall()
        return [_record(r) for r in rows]
