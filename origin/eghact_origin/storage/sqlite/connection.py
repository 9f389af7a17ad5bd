"""Connection plumbing of the embedded store: one SQLite file in WAL mode.

Concurrency model: SQLite has one writer at a time, so every write runs on one dedicated
thread that owns the write connection (:class:`~eghact_common.blocking.SerialExecutor`)
inside ``BEGIN IMMEDIATE`` ... ``COMMIT``. Reads run on the default thread pool, each
thread with its own connection; WAL lets them proceed while a write is in flight, and
each read sees one committed snapshot.

``synchronous=FULL``: a 201 means the commit reached the disk, not only the OS.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from eghact_common.blocking import SerialExecutor, run_blocking

from ..schema import migrate

T = TypeVar("T")
Clock = Callable[[], datetime]

DB_FILE = "registry.sqlite3"
READER_MMAP_BYTES = 1 << 30


def iso(moment: datetime) -> str:
    """npm's time format: ISO-8601 UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def last_seq(conn: sqlite3.Connection) -> int:
    """The registry's seq: the last one ``changes`` handed out (pruned or not)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='changes'").fetchone()
    return int(row[0]) if row else 0


class Connections:
    """The writer thread and its connection, the per-thread readers, and the transaction
    helpers every other part of :class:`SqliteMetadataStore` runs its SQL through."""

    def __init__(self, data_dir: Path, *, clock: Clock | None = None, audit_actor_default: str = "system"):
        self.data_dir = data_dir
        self.path = data_dir / DB_FILE
        self.audit_path = data_dir / "audit.jsonl"
        self._clock = clock or (lambda: datetime.now(UTC))
        self._writer_thread = SerialExecutor("sqlite-writer")
        self._writer = connect(self.path)
        migrate(self._writer)
        self._readers = threading.local()
        self._all_readers: list[tuple[sqlite3.Connection, threading.Lock]] = []
        self._closed = False
        self._readers_lock = threading.Lock()
        self._default_actor = audit_actor_default
        self.registry_id = self._transaction(_ensure_registry_id)

    def now(self) -> str:
        return iso(self._clock())

    def close(self) -> None:
        self._writer_thread.shutdown()
        with self._readers_lock:
            self._closed = True
            readers, self._all_readers = self._all_readers, []
        for conn, lock in readers:
            # A read cancelled on the event loop may still run in its pool thread: closing
            # its connection under it would crash SQLite, so wait for it to finish.
            with lock:
                conn.close()
        self._writer.close()

    def _reader(self) -> tuple[sqlite3.Connection, threading.Lock]:
        pair = getattr(self._readers, "pair", None)
        if pair is None:
            conn = connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            # Readers map the database instead of reading it a page per pread() into a 2 MB
            # cache: a bulk read (a mirror export reads every packument) spent a third of its
            # system time copying pages. The mapping is virtual; the pages are the OS's cache.
            conn.execute(f"PRAGMA mmap_size={READER_MMAP_BYTES}")
            pair = (conn, threading.Lock())
            with self._readers_lock:
                if self._closed:
                    conn.close()
                    raise RuntimeError("the store is closed")
                self._all_readers.append(pair)
            self._readers.pair = pair
        return pair

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on a reader thread inside one snapshot. For this package's modules
        (and tests that look at rows): nothing above ``storage/`` sees a connection."""
        def call() -> T:
            with self.read_sync() as conn:
                return fn(conn)

        return await run_blocking(call)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in one write transaction on the single writer thread."""
        result = await self._writer_thread.run(self._transaction, fn)
        await run_blocking(self.flush_audit)
        return result

    def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """For the CLI and seeding: the same single writer thread, waited on synchronously."""
        result = self._writer_thread.submit(self._transaction, fn).result()
        self.flush_audit()
        return result

    def flush_audit(self) -> int:  # the outbox (outbox.py) overrides it
        return 0

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    @contextlib.contextmanager
    def read_sync(self) -> Iterator[sqlite3.Connection]:
        """This thread's reader connection inside one snapshot (several SELECTs, one state)."""
        conn, lock = self._reader()
        with lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")


def _ensure_registry_id(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE key='registry_id'").fetchone()
    if row:
        return str(row[0])
    value = uuid.uuid4().hex
    conn.execute("INSERT INTO meta (key, value) VALUES ('registry_id', ?)", (value,))
    return value
