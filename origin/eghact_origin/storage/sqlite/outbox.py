"""The audit outbox: an audit record is sealed into ``audit_outbox`` inside the write
transaction it describes, and appended to ``audit.jsonl`` after the commit.

Why an outbox: the record must exist exactly when the change does. Appending to the file
inside the transaction would leave a record of a change that rolled back; appending after
it would lose the record of a change if the process died between. Rows leave the outbox
only once the file holds them, durably, so a crash at any point is repaired by the next
:meth:`Outbox.flush_audit` (any process: it takes a file lock).
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
from pathlib import Path
from typing import Any

from ... import audit
from .connection import DB_FILE, Connections


def seal(conn: sqlite3.Connection, action: str, actor: str, subject: str, data: dict[str, Any], now: str) -> None:
    """Seal one record after the chain's head into the outbox, in the caller's transaction."""
    row = conn.execute("SELECT value FROM meta WHERE key='audit_head'").fetchone()
    last_id, last_hash = (json.loads(row[0]) if row else (0, audit.GENESIS))
    sealed = audit.seal(
        {"id": last_id + 1, "time": now, "action": action, "actor": actor, "subject": subject, "data": data},
        last_hash,
    )
    conn.execute("INSERT INTO audit_outbox (id, line) VALUES (?, ?)", (sealed["id"], audit.canonical_line(sealed)))
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('audit_head', ?)",
                 (json.dumps([sealed["id"], sealed["hash"]]),))


def committed_audit_head(data_dir: Path) -> int:
    """The id of the last audit record the registry in ``data_dir`` committed and that must be
    in audit.jsonl by now (records still in the outbox are appended by the next open); 0 when
    there is no registry. Read-only: it neither creates nor migrates a database."""
    db = data_dir / DB_FILE
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='audit_head'").fetchone()
        outbox = conn.execute("SELECT COUNT(*) FROM audit_outbox").fetchone()[0]
    finally:
        conn.close()
    # Records still in the outbox were committed but not yet appended (a crash between the
    # two); the next start appends them, so they do not count as missing.
    return int(json.loads(row[0])[0] - outbox) if row else 0


class Outbox(Connections):
    def record_audit(self, conn: sqlite3.Connection, action: str, actor: str | None, subject: str,
                     data: dict[str, Any], now: str | None = None) -> None:
        """Seal an audit record into the outbox, inside the caller's write transaction."""
        seal(conn, action, actor or self._default_actor, subject, data, now or self.now())

    def flush_audit(self) -> int:
        """Append committed audit records to audit.jsonl; safe across processes and crashes."""
        lock_path = self.data_dir / "audit.lock"
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                # A crash mid-append leaves a torn last line; its record is still in the
                # outbox (rows are deleted only after the append is synced), so cut and redo.
                audit.repair_tail(self.audit_path)
                last_id, _ = audit.tail(self.audit_path)
                rows = self._writer_thread.submit(
                    lambda: self._writer.execute(
                        "SELECT id, line FROM audit_outbox ORDER BY id").fetchall()
                ).result()
                pending = [json.loads(line) for rid, line in rows if rid > last_id]
                if pending:
                    audit.append(self.audit_path, pending)
                if rows:
                    top = max(rows[-1][0], last_id)
                    self._writer_thread.submit(
                        self._transaction,
                        lambda conn: conn.execute("DELETE FROM audit_outbox WHERE id <= ?", (top,)),
                    ).result()
                return len(pending)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def audit_head(self) -> int:
        """The id of the last audit record this registry committed (the file must reach it)."""
        with self.read_sync() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='audit_head'").fetchone()
        return int(json.loads(row[0])[0]) if row else 0
