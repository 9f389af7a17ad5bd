"""Versioned schema migrations of the SQLite metadata store.

Each migration is applied once, in order, inside one transaction together with its row in
``schema_migrations``; a store opened by older code on a newer schema refuses to start
rather than guess. Append new migrations; never edit an applied one.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

MIGRATIONS: tuple[str, ...] = (
    # 1: the registry
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

    -- One row per package. full_doc/abbrev_doc are the packuments rendered at the last
    -- change, with \x01 where the public base URL goes (see packument.py), so a read is a
    -- byte copy, never a JSON parse.
    CREATE TABLE packages (
        name        TEXT PRIMARY KEY,
        created     TEXT NOT NULL,
        modified    TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        full_doc    BLOB,
        abbrev_doc  BLOB,
        latest      TEXT,
        description TEXT NOT NULL DEFAULT '',
        keywords    TEXT NOT NULL DEFAULT '',
        type        TEXT,
        category    TEXT,
        capabilities TEXT NOT NULL DEFAULT '',
        license     TEXT,
        summary     TEXT
    );

    CREATE TABLE versions (
        name         TEXT NOT NULL,
        version      TEXT NOT NULL,
        tarball_file TEXT NOT NULL,
        published    TEXT NOT NULL,
        doc          BLOB NOT NULL,
        abbrev       BLOB NOT NULL,
        blob_digest  TEXT NOT NULL,
        integrity    TEXT NOT NULL,
        shasum       TEXT NOT NULL,
        size         INTEGER NOT NULL,
        deprecated   TEXT,
        unpublished  TEXT,
        unpublish_reason TEXT,
        PRIMARY KEY (name, version)
    );
    CREATE UNIQUE INDEX versions_by_file ON versions (name, tarball_file);
    CREATE INDEX versions_by_digest ON versions (blob_digest);

    CREATE TABLE dist_tags (
        name    TEXT NOT NULL,
        tag     TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (name, tag)
    );

    -- The changes feed. AUTOINCREMENT: a seq is never reused, even after the last row
    -- is gone, so a follower's position stays meaningful forever.
    CREATE TABLE changes (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        time    TEXT NOT NULL,
        type    TEXT NOT NULL,
        name    TEXT NOT NULL,
        version TEXT,
        keys    TEXT NOT NULL,
        data    TEXT NOT NULL
    );

    CREATE TABLE tokens (
        id      INTEGER PRIMARY KEY,
        name    TEXT NOT NULL,
        hash    TEXT NOT NULL UNIQUE,
        scopes  TEXT NOT NULL,
        created TEXT NOT NULL,
        revoked TEXT
    );

    CREATE TABLE advisories (
        id       INTEGER PRIMARY KEY,
        name     TEXT NOT NULL,
        vulnerable_versions TEXT NOT NULL,
        severity TEXT NOT NULL,
        title    TEXT NOT NULL,
        url      TEXT NOT NULL,
        cwe      TEXT NOT NULL,
        cvss     REAL,
        created  TEXT NOT NULL
    );
    CREATE INDEX advisories_by_name ON advisories (name);

    -- Sealed audit records written in the same transaction as the change they record,
    -- appended to audit.jsonl after commit and then removed (an outbox).
    CREATE TABLE audit_outbox (id INTEGER PRIMARY KEY, line BLOB NOT NULL);

    CREATE VIRTUAL TABLE search_fts USING fts5 (name, description, keywords, tokenize = 'unicode61');
    """,
    # 2: built resolutions (POST /-/v1/resolve, GET /-/v1/resolutions/{hash}); each is tagged
    # with every package name whose versions were considered, for invalidation.
    """
    CREATE TABLE resolutions (
        hash       TEXT PRIMARY KEY,
        request    TEXT NOT NULL,
        status     INTEGER NOT NULL,
        body       BLOB NOT NULL,
        built_seq  INTEGER NOT NULL,
        built      TEXT NOT NULL,
        hits       INTEGER NOT NULL DEFAULT 0,
        stale      INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE resolution_names (
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (name, hash)
    );
    CREATE INDEX resolution_names_by_hash ON resolution_names (hash);
    -- "has anything this resolution considered changed since it was built?" is one probe.
    CREATE INDEX changes_by_name ON changes (name, seq);
    """,
    # 3: the fleet (issue 4): global popularity from edges' batched hit counts, and the
    # registered edges. Scores use forward decay (see fleet_registry.py), so ordering by the stored
    # value is ordering by the decayed one.
    """
    CREATE TABLE popularity (
        key     TEXT PRIMARY KEY,
        name    TEXT,
        score   REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX popularity_by_score ON popularity (score DESC);
    CREATE TABLE edges (
        id         TEXT PRIMARY KEY,
        region     TEXT NOT NULL,
        url        TEXT NOT NULL,
        health     TEXT NOT NULL,
        registered TEXT NOT NULL,
        last_seen  REAL NOT NULL
    );
    """,
    # 4: no private trace in public answers (issue 11). ``public_seq`` numbers the events a
    # caller who may read no private package sees (storage/public_feed.py); an edge
    # registration belongs to the token that made it; each edge token's share of a key's
    # popularity is kept, so that it can be capped.
    """
    ALTER TABLE changes ADD COLUMN public_seq INTEGER;
    CREATE UNIQUE INDEX changes_by_public_seq ON changes (public_seq) WHERE public_seq IS NOT NULL;
    ALTER TABLE edges ADD COLUMN owner INTEGER;
    CREATE TABLE popularity_shares (
        owner INTEGER NOT NULL,
        key   TEXT NOT NULL,
        score REAL NOT NULL,
        PRIMARY KEY (owner, key)
    );
    """,
    # 5: co-usage statistics for load-plan prefetch hints (cousage.py): per root, its top-K
    # co-used roots with forward-decayed scores (the epoch is meta 'co_usage_epoch'). They
    # were counters in memory per pair of names, relearnt at start from every stored request
    # (issue 11); the new table starts empty: the hints are advice and relearn as apps resolve.
    """
    CREATE TABLE co_usage (
        name  TEXT NOT NULL,
        other TEXT NOT NULL,
        score REAL NOT NULL,
        PRIMARY KEY (name, other)
    );
    CREATE INDEX co_usage_by_score ON co_usage (score);
    """,
    # 6: uplinks (issue 14). A package with a row here was pulled from an uplink and is
    # read-only (a copy); every other package is local forever. ``raw`` is the upstream
    # document as fetched (zstd), so that the pull policy can be re-applied as time passes
    # without a refetch; ``hidden`` what the policy hid (JSON). ``uplink_tarballs`` keeps the
    # upstream URL of each tarball, fetched on its first request.
    """
    CREATE TABLE uplink_packages (
        name          TEXT PRIMARY KEY,
        uplink        TEXT NOT NULL,
        etag          TEXT,
        last_modified TEXT,
        fetched       REAL NOT NULL,
        raw           BLOB NOT NULL,
        hidden        TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE uplink_tarballs (
        name     TEXT NOT NULL,
        filename TEXT NOT NULL,
        url      TEXT NOT NULL,
        PRIMARY KEY (name, filename)
    );
    """,
    # 7: the admin's per-version overrides of the uplinks' pull policy (issue 14): a version
    # listed here is shown even when the cooldown or an advisory would hide it.
    """
    CREATE TABLE uplink_allowed (
        name    TEXT NOT NULL,
        version TEXT NOT NULL,
        actor   TEXT NOT NULL,
        created TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    """,
    # 8: the uplinks' background refresher (issue 14). ``reveal_at``: the earliest moment a
    # version the cooldown hides becomes visible (epoch seconds; NULL: time changes nothing),
    # so the policy is re-applied then with no upstream request. The two indexes serve the
    # refresher's questions: the pulled packages of one uplink fetched longest ago, and the
    # next reveals (partial: most packages have none).
    """
    ALTER TABLE uplink_packages ADD COLUMN reveal_at REAL;
    CREATE INDEX uplink_packages_due ON uplink_packages (uplink, fetched);
    CREATE INDEX uplink_packages_reveal ON uplink_packages (reveal_at) WHERE reveal_at IS NOT NULL;
    """,
    # Next migration: append here as 9 (never edit an applied one).
)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the schema version. ``conn`` is in autocommit."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)"
    )
    current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"the data dir has schema version {current}, newer than this code knows ({len(MIGRATIONS)})"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, applied) VALUES (?, ?)",
                (version, datetime.now(UTC).isoformat()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    # executescript() would commit implicitly; splitting keeps the migration in our transaction.
    # Comments are removed first, as they may contain semicolons.
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
