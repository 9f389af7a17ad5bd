"""Applying a verified mirror bundle to an origin data dir (``eghact-origin mirror-apply``).

The origin owns its data-dir format; the mirror tool (which may not import the origin)
verifies a bundle's signature and digests, unpacks it into a *staged* directory, and runs
this command. Staged layout (a contract with ``eghact_mirror``)::

    STAGE/stage.json   {"format": 1, "origin_id", "from_seq", "to_seq", "bundle_digest",
                        "previous_digest", "base_url",
                        "packages": [{"name", "full": PATH, "abbreviated": PATH} ...],
                        "removed": [names every version of which is unpublished],
                        "events": [change events, origin seqs, in order]}
    STAGE/<PATH>       packuments exactly as the origin served them
    STAGE/tarballs/<sha512 hex>

Packuments are stored as the origin served them (only the base URL of tarball links is
put back to the mark), so a mirror answers byte for byte what the origin answered; the
origin's seqs are kept, so an edge can follow a mirror's feed as it follows an origin's.
Everything happens in one transaction after the blobs are durable: a crash leaves the
mirror before the bundle or after it, never between. Continuity is checked again inside
that transaction, whatever the caller checked before.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eghact_common import integrity
from eghact_common.errors import EghactError

from . import packument
from .storage import FileBlobStore, SqliteMetadataStore
from .storage.search import update_search_row

FORMAT = 1


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


def _marked(body: bytes, base_url: str) -> bytes:
    # Only the tarball links carry the base: `"tarball":"` can never occur unescaped inside a
    # JSON string, so this touches nothing else.
    base = json.dumps(base_url.rstrip("/"))[1:-1].encode()
    return body.replace(b'"tarball":"' + base, b'"tarball":"' + packument.BASE_MARK)


def _fragment(doc: dict[str, Any], base_url: str) -> bytes:
    # The stored fragment never carries `deprecated` (it is spliced in at render) and keeps
    # dist last with tarball last, exactly as render_version wrote it at the origin.
    clean = {k: v for k, v in doc.items() if k != "deprecated"}
    return _marked(packument._dumps(clean), base_url)


def _apply_package(conn: sqlite3.Connection, name: str, full: bytes, abbreviated: bytes, base_url: str,
                   seq: int, digests: dict[str, str]) -> list[str]:
    """Store one package's packuments as served; returns blob digests it no longer uses."""
    doc = json.loads(full)
    short = json.loads(abbreviated)
    times = doc.get("time", {})
    conn.execute("INSERT OR IGNORE INTO packages (name, created, modified, seq) VALUES (?, ?, ?, ?)",
                 (name, times.get("created", ""), times.get("modified", ""), seq))
    live = set(doc.get("versions", {}))
    for version, vdoc in doc.get("versions", {}).items():
        dist = vdoc["dist"]
        digest = integrity.parse_sri(dist["integrity"])
        sha512 = next((d.hex() for algo, d in digest if algo == "sha512"), None)
        if sha512 is None or sha512 not in digests:
            raise MirrorApplyError(f"{name}@{version}: its tarball is not in the bundle", code="missing_tarball",
                                   exit_code=14)
        conn.execute(
            "INSERT OR REPLACE INTO versions (name, version, tarball_file, published, doc, abbrev, blob_digest,"
            " integrity, shasum, size, deprecated, unpublished, unpublish_reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            (name, version, dist["tarball"].rsplit("/", 1)[-1], times.get(version, ""),
             _fragment(vdoc, base_url), _fragment(short["versions"][version], base_url), sha512,
             dist["integrity"], dist.get("shasum", ""), os.path.getsize(digests[sha512]), vdoc.get("deprecated")),
        )
    gone = conn.execute("SELECT version, blob_digest FROM versions WHERE name=? AND unpublished IS NULL",
                        (name,)).fetchall()
    freed = []
    for version, blob in gone:
        if version not in live:
            conn.execute("UPDATE versions SET unpublished=?, unpublish_reason='unpublished at the origin' "
                         "WHERE name=? AND version=?", (times.get("modified", ""), name, version))
            freed.append(blob)
    conn.execute("DELETE FROM dist_tags WHERE name=?", (name,))
    for tag, version in doc.get("dist-tags", {}).items():
        conn.execute("INSERT INTO dist_tags (name, tag, version) VALUES (?, ?, ?)", (name, tag, version))
    latest = doc.get("dist-tags", {}).get("latest")
    conn.execute("UPDATE packages SET full_doc=?, abbrev_doc=?, modified=?, seq=?, latest=? WHERE name=?",
                 (_marked(full, base_url), _marked(abbreviated, base_url), times.get("modified", ""), seq, latest,
                  name))
    update_search_row(conn, name, doc["versions"].get(latest) if latest else None)
    return freed


def apply_staged(data_dir: Path, stage_dir: Path) -> ApplyReport:
    stage = json.loads((stage_dir / "stage.json").read_text())
    if stage.get("format") != FORMAT:
        raise MirrorApplyError(f"staged format {stage.get('format')} is not {FORMAT}", code="bad_stage", exit_code=10)
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
        digests: dict[str, str] = {}
        tarball_dir = stage_dir / "tarballs"
        for path in sorted(tarball_dir.iterdir()) if tarball_dir.exists() else []:
            # put() re-hashes: a blob is stored under the digest of its bytes, whatever its name says.
            # No fsync per blob (tens of thousands in a full bundle): one sync below covers them all.
            if blobs.put(path.read_bytes(), durable=False) != path.name:
                raise MirrorApplyError(f"tarball {path.name} does not match its digest", code="digest_mismatch",
                                       exit_code=15)
            digests[path.name] = str(blobs.path_for(path.name))
        if digests:
            os.sync()  # every blob durable before the metadata that points at them commits
        freed = store.write_sync(lambda conn: _apply(conn, store, stage, stage_dir, digests, blobs))
        for blob in freed:
            blobs.delete(blob)
        with store.read_sync() as conn:
            _write_mirror_json(data_dir, mirror_state(conn))
        return ApplyReport(True, len(stage["packages"]), len(digests), len(stage["events"]), stage["to_seq"])
    finally:
        store.close()


def _apply(conn: sqlite3.Connection, store: SqliteMetadataStore, stage: dict[str, Any], stage_dir: Path,
           digests: dict[str, str], blobs: FileBlobStore) -> list[str]:
    state = mirror_state(conn)
    if not _check_continuity(state, stage):  # re-checked under the write lock
        return []
    # Digests of blobs already in the mirror also satisfy versions (incremental bundles carry
    # only new tarballs).
    for (digest,) in conn.execute("SELECT DISTINCT blob_digest FROM versions"):
        digests.setdefault(digest, str(blobs.path_for(digest)))
    freed: list[str] = []
    base = stage["base_url"]
    for entry in stage["packages"]:
        full = (stage_dir / entry["full"]).read_bytes()
        short = (stage_dir / entry["abbreviated"]).read_bytes()
        freed += _apply_package(conn, entry["name"], full, short, base, stage["to_seq"], digests)
    for name in stage.get("removed", []):
        rows = conn.execute("SELECT blob_digest FROM versions WHERE name=? AND unpublished IS NULL", (name,))
        freed += [r[0] for r in rows]
        conn.execute("UPDATE versions SET unpublished='mirror', unpublish_reason='unpublished at the origin' "
                     "WHERE name=? AND unpublished IS NULL", (name,))
        conn.execute("UPDATE packages SET full_doc=NULL, abbrev_doc=NULL WHERE name=?", (name,))
        if conn.execute("SELECT rowid FROM packages WHERE name=?", (name,)).fetchone():
            update_search_row(conn, name, None)
    for event in stage["events"]:
        conn.execute("INSERT INTO changes (seq, time, type, name, version, keys, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (event["seq"], event["time"], event["type"], event["name"], event.get("version"),
                      json.dumps(event["keys"]), json.dumps({k: v for k, v in event.items() if k not in (
                          "seq", "time", "type", "name", "version", "keys")})))
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
    state = {"origin_id": stage["origin_id"], "seq": stage["to_seq"], "digest": stage["bundle_digest"],
             "chain": [*state["chain"], stage["bundle_digest"]]}
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('mirror', ?)", (json.dumps(state),))
    store.record_audit(conn, "mirror-apply", "mirror", stage["bundle_digest"],
                       {"origin_id": stage["origin_id"], "from_seq": stage["from_seq"], "to_seq": stage["to_seq"],
                        "packages": len(stage["packages"]), "events": len(stage["events"])})
    live = {r[0] for r in conn.execute("SELECT DISTINCT blob_digest FROM versions WHERE unpublished IS NULL")}
    return [d for d in freed if d not in live]


def _write_mirror_json(data_dir: Path, state: dict[str, Any]) -> None:
    """A human-readable copy of the mirror's position (the database holds the truth)."""
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".mirror-")
    with os.fdopen(fd, "w") as out:
        json.dump({"source_origin_id": state["origin_id"], "applied_seq": state["seq"],
                   "last_bundle": state["digest"], "bundle_chain": state["chain"]}, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, data_dir / "mirror.json")
