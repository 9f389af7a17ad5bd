"""Applying a verified mirror bundle to an origin data dir (``eghact-origin mirror-apply``).

The origin owns its data-dir format; the mirror tool (which may not import the origin)
verifies a bundle's signature and digests, unpacks it into a *staged* directory, and runs
this command. Staged layout (a contract with ``eghact_mirror``, format 3)::

    STAGE/stage.json   {"format": 3, "origin_id", "from_seq", "to_seq", "bundle_digest",
                        "previous_digest", "base_url", "packuments": "packuments.pack",
                        "packages": [{"name", "full": [OFFSET, LENGTH],
                                      "abbreviated": [OFFSET, LENGTH]} ...],
                        "removed": [names every version of which is unpublished],
                        "tarballs": {"<sha512 hex>": SIZE, ...},
                        "events": [change events, origin seqs, in order]}
    STAGE/packuments.pack               the packuments exactly as the origin served them
    STAGE/tarballs/<ab>/<sha512>        each tarball ``tarballs`` lists, named by its sha512

The stager vouches for the tarballs' names — eghact-mirror checked every byte against the
signed index (import) or each tarball against its packument's integrity (sync) — so they are
renamed into the blob store, not re-read (``FileBlobStore.adopt``): a full bundle's tens of
thousands of blobs move in a few hundred renames, and are synced once.

Packuments are stored as the origin served them (only the base URL of tarball links is
put back to the mark), so a mirror answers byte for byte what the origin answered; the
origin's seqs are kept, so an edge can follow a mirror's feed as it follows an origin's.
The metadata is written in one transaction, which commits only once the blobs are durable
(they are moved in and synced beside it): a crash leaves the mirror before the bundle or
after it, never between (blobs moved in before a crash are invisible until metadata names
them). Continuity is checked again inside that transaction,
whatever the caller checked before.

A first bundle into an empty mirror takes another way to the same result (``mirror_fresh``):
the database is built aside as a new file, with no journal, and linked into place once it
and the blobs are durable — writing a few hundred MB once instead of twice (WAL, then
checkpoint). Both ways write the same rows (:func:`package_rows`, :func:`write_events`).
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from eghact_common import integrity
from eghact_common.errors import EghactError

from . import mirror_fragments as fragments
from .storage import FileBlobStore, SqliteMetadataStore
from .storage.search import SEARCH_COLUMNS, index_search_row, search_fields, update_search_row

FORMAT = 3
_HEX512 = re.compile(r"^[0-9a-f]{128}$")


class MirrorApplyError(EghactError):
    """A staged bundle that does not fit this mirror. ``exit_code`` is stable per cause."""

    status = 409

    def __init__(self, message: str, *, code: str, exit_code: int):
        super().__init__(message, code=code)
        self.exit_code = exit_code


@dataclass(frozen=True)
class ApplyReport:
    applied: bool
    packages: int
    tarballs: int
    events: int
    to_seq: int


def mirror_state(conn: sqlite3.Connection) -> dict[str, Any]:
    row = conn.execute("SELECT value FROM meta WHERE key='mirror'").fetchone()
    return json.loads(row[0]) if row else {"origin_id": None, "seq": 0, "digest": None, "chain": []}


def _check_continuity(state: dict[str, Any], stage: dict[str, Any]) -> bool:
    """True to apply, False when the bundle is the one last applied (a no-op); raises otherwise."""
    if stage["bundle_digest"] == state["digest"]:
        return False
    if stage["bundle_digest"] in state["chain"]:
        raise MirrorApplyError("the bundle was applied before and has been superseded: a replay",
                               code="replay", exit_code=16)
    if state["origin_id"] not in (None, stage["origin_id"]):
        raise MirrorApplyError(f"the bundle comes from origin {stage['origin_id']}, this mirror follows "
                               f"{state['origin_id']}", code="wrong_origin", exit_code=11)
    if stage["to_seq"] <= state["seq"] and state["chain"]:
        raise MirrorApplyError(f"the bundle ends at seq {stage['to_seq']}, the mirror is already at {state['seq']}",
                               code="downgrade", exit_code=12)
    if stage["from_seq"] != state["seq"] or stage.get("previous_digest") != state["digest"]:
        raise MirrorApplyError(
            f"the bundle starts at seq {stage['from_seq']} after {stage.get('previous_digest')}, the mirror is at "
            f"seq {state['seq']} after {state['digest']}: apply the bundles in order", code="out_of_order",
            exit_code=13)
    return True


@dataclass(frozen=True)
class PackageRows:
    """One package's rows, as both ways of applying write them."""

    name: str
    versions: list[tuple[Any, ...]]  # the versions table's columns, in the packument's order
    tags: list[tuple[str, str, str]]
    columns: tuple[str, ...]  # of the packages row (the search columns only with a latest version)
    values: tuple[Any, ...]
    fields: tuple[Any, ...] | None  # search_fields of the latest version
    modified: str


_PACKAGE_COLUMNS = ("name", "created", "modified", "seq", "full_doc", "abbrev_doc", "latest")


def package_rows(name: str, full: bytes, abbreviated: bytes, base_url: str, seq: int,
                 sizes: dict[str, int]) -> PackageRows:
    """One package's rows from its packuments as served; raises ``missing_tarball``."""
    head, versions = fragments.versions(full, abbreviated, base_url)
    times = head.get("time") or {}
    rows = []
    for version, vdoc, stored, short in versions:
        dist = vdoc["dist"]
        digest = integrity.parse_sri(dist["integrity"])
        sha512 = next((d.hex() for algo, d in digest if algo == "sha512"), None)
        if sha512 is None or sha512 not in sizes:
            raise MirrorApplyError(f"{name}@{version}: its tarball is not in the bundle", code="missing_tarball",
                                   exit_code=14)
        rows.append((name, version, dist["tarball"].rsplit("/", 1)[-1], times.get(version, ""), stored, short,
                     sha512, dist["integrity"], dist.get("shasum", ""), sizes[sha512], vdoc.get("deprecated")))
    tags = head.get("dist-tags") or {}
    latest = tags.get("latest")
    latest_doc = next((doc for version, doc, _, _ in versions if version == latest), None) if latest else None
    # The search columns go in with the packuments: updating them afterwards would write the
    # whole row (packuments and all) a second time.
    fields = None if latest_doc is None else search_fields(latest_doc)
    columns = _PACKAGE_COLUMNS + (SEARCH_COLUMNS if fields else ())
    values = (name, times.get("created", ""), times.get("modified", ""), seq, fragments.marked(full, base_url),
              fragments.marked(abbreviated, base_url), latest, *(fields or ()))
    return PackageRows(name, rows, [(name, tag, version) for tag, version in tags.items()], columns, values,
                       fields, times.get("modified", ""))


def _apply_package(conn: sqlite3.Connection, name: str, full: bytes, abbreviated: bytes, base_url: str,
                   seq: int, sizes: dict[str, int], existed: bool) -> list[str]:
    """Store one package's packuments as served; returns blob digests it no longer uses."""
    rows = package_rows(name, full, abbreviated, base_url, seq, sizes)
    conn.executemany(
        "INSERT OR REPLACE INTO versions (name, version, tarball_file, published, doc, abbrev, blob_digest,"
        " integrity, shasum, size, deprecated, unpublished, unpublish_reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)", rows.versions)
    freed = []
    if existed:
        live = {row[1] for row in rows.versions}
        gone = conn.execute("SELECT version, blob_digest FROM versions WHERE name=? AND unpublished IS NULL",
                            (name,)).fetchall()
        for version, blob in gone:
            if version not in live:
                conn.execute("UPDATE versions SET unpublished=?, unpublish_reason='unpublished at the origin' "
                             "WHERE name=? AND version=?", (rows.modified, name, version))
                freed.append(blob)
        conn.execute("DELETE FROM dist_tags WHERE name=?", (name,))
    conn.executemany("INSERT INTO dist_tags (name, tag, version) VALUES (?, ?, ?)", rows.tags)
    # created is kept from the first time the mirror saw the package, as the origin keeps it.
    columns = rows.columns
    updated = ", ".join(f"{column}=excluded.{column}" for column in columns[2:])  # all but name, created
    cursor = conn.execute(f"INSERT INTO packages ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                          f" ON CONFLICT (name) DO UPDATE SET {updated}", rows.values)
    rowid = None if existed else cursor.lastrowid
    if rowid is None:  # an upsert that updated leaves lastrowid as it was: ask for the row
        rowid = conn.execute("SELECT rowid FROM packages WHERE name=?", (name,)).fetchone()[0]
    index_search_row(conn, rowid, name, rows.fields, replace=existed)
    return freed


def apply_staged(data_dir: Path, stage_dir: Path) -> ApplyReport:
    stage = json.loads((stage_dir / "stage.json").read_bytes())
    if stage.get("format") != FORMAT:
        raise MirrorApplyError(f"staged format {stage.get('format')} is not {FORMAT}", code="bad_stage", exit_code=10)
    staged: dict[str, int] = stage.get("tarballs") or {}
    if not all(_HEX512.match(digest) and isinstance(size, int) for digest, size in staged.items()):
        raise MirrorApplyError("the staged tarball list names something that is not a sha512", code="bad_stage",
                               exit_code=10)
    report = ApplyReport(True, len(stage["packages"]), len(staged), len(stage["events"]), stage["to_seq"])
    if _apply_fresh(data_dir, stage_dir, stage, staged):
        return report
    data_dir.mkdir(parents=True, exist_ok=True)
    blobs = FileBlobStore(data_dir / "blobs")
    store = SqliteMetadataStore(data_dir)
    try:
        with store.read_sync() as conn:
            state = mirror_state(conn)
            if not _check_continuity(state, stage):
                # Also heals a mirror.json left one bundle behind by a crash after the commit.
                _write_mirror_json(data_dir, state)
                return ApplyReport(False, 0, 0, 0, stage["to_seq"])
        # No fsync per blob (tens of thousands in a full bundle): one sync covers them all. It
        # runs beside the metadata writes (flushing a few hundred MB takes a while) and the
        # transaction waits for it before it commits: nothing points at a blob not yet durable.
        durable = _Durable(blobs, stage_dir / "tarballs") if staged else None
        try:
            with open(stage_dir / stage["packuments"], "rb") if stage["packages"] else io.BytesIO() as pack:
                freed = store.write_sync(lambda conn: _apply(conn, store, stage, pack, staged,
                                                             durable.wait if durable else lambda: None))
        finally:
            if durable is not None:
                durable.thread.join()
        for blob in freed:
            blobs.delete(blob)
        with store.read_sync() as conn:
            _write_mirror_json(data_dir, mirror_state(conn))
        return report
    finally:
        store.close()


def _apply_fresh(data_dir: Path, stage_dir: Path, stage: dict[str, Any], staged: dict[str, int]) -> bool:
    """A first bundle into an empty mirror, built aside (``mirror_fresh``); False when the mirror
    is not empty. Continuity is checked first, against an empty mirror: a refusal changes nothing."""
    from . import mirror_fresh  # it builds on this module's rows

    if not mirror_fresh.possible(data_dir, stage):
        return False
    _check_continuity({"origin_id": None, "seq": 0, "digest": None, "chain": []}, stage)
    if not mirror_fresh.apply(data_dir, stage_dir, stage, staged):
        return False
    store = SqliteMetadataStore(data_dir)  # appends the outbox's audit record to audit.jsonl
    try:
        with store.read_sync() as conn:
            _write_mirror_json(data_dir, mirror_state(conn))
    finally:
        store.close()
    return True


def read_at(pack: BinaryIO, where: list[int]) -> bytes:
    """The staged packument at ``where`` ([offset, length]) in the pack."""
    offset, length = where
    pack.seek(offset)
    data = pack.read(length)
    if len(data) != length:
        raise MirrorApplyError("the staged packuments end before a packument does", code="bad_stage", exit_code=10)
    return data


def _apply(conn: sqlite3.Connection, store: SqliteMetadataStore, stage: dict[str, Any], pack: BinaryIO,
           staged: dict[str, int], before_commit: Callable[[], None]) -> list[str]:
    state = mirror_state(conn)
    if not _check_continuity(state, stage):  # re-checked under the write lock
        return []
    # A full bundle writes a few hundred MB in this one transaction: with SQLite's default
    # 2 MB page cache, pages are spilled to the WAL and written there again as they fill up.
    # 64 MB (for this short-lived process) keeps index pages in memory until the commit.
    conn.execute("PRAGMA cache_size=-65536")
    # Blobs already in the mirror also satisfy versions (incremental bundles carry only new
    # tarballs); their sizes are known from the versions that brought them.
    sizes = dict(conn.execute("SELECT blob_digest, size FROM versions"))
    sizes.update(staged)
    existing = {row[0] for row in conn.execute("SELECT name FROM packages")}
    freed: list[str] = []
    base = stage["base_url"]
    for entry in stage["packages"]:
        full, short = read_at(pack, entry["full"]), read_at(pack, entry["abbreviated"])
        freed += _apply_package(conn, entry["name"], full, short, base, stage["to_seq"], sizes,
                                entry["name"] in existing)
    for name in stage.get("removed", []):
        rows = conn.execute("SELECT blob_digest FROM versions WHERE name=? AND unpublished IS NULL", (name,))
        freed += [r[0] for r in rows]
        conn.execute("UPDATE versions SET unpublished='mirror', unpublish_reason='unpublished at the origin' "
                     "WHERE name=? AND unpublished IS NULL", (name,))
        conn.execute("UPDATE packages SET full_doc=NULL, abbrev_doc=NULL WHERE name=?", (name,))
        if conn.execute("SELECT rowid FROM packages WHERE name=?", (name,)).fetchone():
            update_search_row(conn, name, None)
    write_events(conn, stage)
    state = {"origin_id": stage["origin_id"], "seq": stage["to_seq"], "digest": stage["bundle_digest"],
             "chain": [*state["chain"], stage["bundle_digest"]]}
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('mirror', ?)", (json.dumps(state),))
    store.record_audit(conn, "mirror-apply", "mirror", stage["bundle_digest"],
                       {"origin_id": stage["origin_id"], "from_seq": stage["from_seq"], "to_seq": stage["to_seq"],
                        "packages": len(stage["packages"]), "events": len(stage["events"])})
    # Only blobs no live version still names are freed: asked of the digest index for those
    # few, not by reading every digest of the mirror (a full bundle frees nothing at all).
    live: set[str] = set()
    unique = sorted(set(freed))
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        live.update(r[0] for r in conn.execute(
            f"SELECT DISTINCT blob_digest FROM versions WHERE unpublished IS NULL AND blob_digest IN "
            f"({','.join('?' * len(chunk))})", chunk))
    before_commit()
    return [d for d in freed if d not in live]


def write_events(conn: sqlite3.Connection, stage: dict[str, Any]) -> None:
    """The bundle's change events (origin seqs), the advisories they carry, and the feed's position."""
    conn.executemany(
        "INSERT INTO changes (seq, time, type, name, version, keys, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(event["seq"], event["time"], event["type"], event["name"], event.get("version"), json.dumps(event["keys"]),
          json.dumps({k: v for k, v in event.items() if k not in _EVENT_COLUMNS}))
         for event in stage["events"]])
    for event in stage["events"]:
        advisory = event.get("advisory")
        if event["type"] == "advisory" and isinstance(advisory, dict):
            conn.execute(
                "INSERT OR REPLACE INTO advisories (id, name, vulnerable_versions, severity, title, url, cwe, cvss,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (advisory["id"], advisory["name"], advisory["vulnerable_versions"], advisory["severity"],
                 advisory["title"], advisory.get("url", ""), json.dumps(advisory.get("cwe", [])),
                 advisory.get("cvss"), advisory.get("created", event["time"])))
    if stage["to_seq"] > 0:
        # Keep the feed's position at the origin's even when the filter left no event here.
        conn.execute("INSERT OR REPLACE INTO sqlite_sequence (name, seq) VALUES ('changes', "
                     "MAX(?, COALESCE((SELECT seq FROM sqlite_sequence WHERE name='changes'), 0)))",
                     (stage["to_seq"],))


_EVENT_COLUMNS = frozenset(("seq", "time", "type", "name", "version", "keys"))


class _Durable:
    """The staged blobs moved into the store and synced to disk, on a thread; :meth:`wait`
    returns once they are durable, or raises what failed."""

    def __init__(self, blobs: FileBlobStore, tree: Path):
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(blobs, tree), name="blobs-durable")
        self.thread.start()

    def _run(self, blobs: FileBlobStore, tree: Path) -> None:
        try:
            blobs.adopt(tree)
            os.sync()
        except BaseException as exc:  # raised again by wait(), in the transaction
            self._error = exc

    def wait(self) -> None:
        self.thread.join()
        if self._error is not None:
            raise self._error


def _write_mirror_json(data_dir: Path, state: dict[str, Any]) -> None:
    """A human-readable copy of the mirror's position (the database holds the truth)."""
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".mirror-")
    with os.fdopen(fd, "w") as out:
        json.dump({"source_origin_id": state["origin_id"], "applied_seq": state["seq"],
                   "last_bundle": state["digest"], "bundle_chain": state["chain"]}, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, data_dir / "mirror.json")
