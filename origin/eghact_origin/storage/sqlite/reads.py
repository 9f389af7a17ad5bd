"""Registry reads: documents, tarball records, package state, advisories, search, counts.

A document read is one indexed row read of bytes rendered at the last write (:mod:`.render`),
answered with the seqs (registry and public) of the same snapshot.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from eghact_common.errors import EghactError, NotFound, Unpublished

from ... import packument
from .. import public_feed
from ..records import Advisory, Lookup, PackageState, SearchHit, SearchQuery, StoredDoc, TarballRecord, VersionState
from ..search import search_packages
from ..visibility import EVERYTHING, NameFilter, clause
from .connection import Connections, last_seq
from .feed import heads

_CHUNK = 500  # names per IN (...): SQLite's default variable limit is 32,766, be modest


def packument_doc(conn: sqlite3.Connection, name: str, abbreviated: bool,
                  seq: tuple[int, int] | None = None) -> StoredDoc:
    column = "abbrev_doc" if abbreviated else "full_doc"
    row = conn.execute(f"SELECT {column} FROM packages WHERE name=?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"package {name} not found", detail={"name": name})
    if row[0] is None:
        raise Unpublished(f"every version of {name} has been unpublished", detail={"name": name})
    return StoredDoc(bytes(row[0]), *(seq or heads(conn)))


def dists(conn: sqlite3.Connection, name: str, seq: tuple[int, int] | None = None) -> StoredDoc:
    """The tarballs the packument lists, as ``dists_body``: what the packument's live versions
    are, read from the same rows the packument was rendered from (in the same snapshot)."""
    row = conn.execute("SELECT p.full_doc IS NULL, u.uplink FROM packages p LEFT JOIN uplink_packages u"
                       " ON u.name = p.name WHERE p.name=?", (name,)).fetchone()
    if row is None:
        raise NotFound(f"package {name} not found", detail={"name": name})
    if row[0]:
        raise Unpublished(f"every version of {name} has been unpublished", detail={"name": name})
    rows = conn.execute("SELECT version, tarball_file, blob_digest, size FROM versions "
                        "WHERE name=? AND unpublished IS NULL ORDER BY rowid", (name,)).fetchall()
    return StoredDoc(dists_body(name, rows, uplink=row[1]), *(seq or heads(conn)))


def dists_body(name: str, rows: list[tuple[str, str, str, int]], *, uplink: str | None = None) -> bytes:
    """``{"name": NAME, "dists": [[version, tarball file, sha512 hex, size], ...]}``: a list of
    lists, which parses several times faster than the packument it summarises. A package pulled
    from an uplink also has ``"uplink": NAME``, and size 0 (sha512 hex "" for an old package
    with only a sha1 ``shasum``) for a tarball not fetched yet: a mirror exporter carries only
    the versions its selection needs of such a package (mirror-sync/eghact_mirror/collect.py)."""
    body: dict[str, object] = {"name": name, "dists": rows}
    if uplink is not None:
        body["uplink"] = uplink
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def version_doc(conn: sqlite3.Connection, name: str, spec: str, seq: tuple[int, int] | None = None) -> StoredDoc:
    version = spec
    tagged = conn.execute("SELECT version FROM dist_tags WHERE name=? AND tag=?", (name, spec)).fetchone()
    if tagged:
        version = tagged[0]
    row = conn.execute("SELECT doc, deprecated, unpublished FROM versions WHERE name=? AND version=?",
                       (name, version)).fetchone()
    if row is None:
        raise NotFound(f"{name}@{spec} not found", detail={"name": name, "version": spec})
    if row[2]:
        raise Unpublished(f"{name}@{version} has been unpublished", detail={"name": name, "version": version})
    return StoredDoc(packument.with_deprecation(bytes(row[0]), row[1]), *(seq or heads(conn)))


def tarball(conn: sqlite3.Connection, name: str, filename: str) -> TarballRecord:
    row = conn.execute(
        "SELECT version, blob_digest, integrity, shasum, size, unpublished FROM versions "
        "WHERE name=? AND tarball_file=?", (name, filename)).fetchone()
    if row is None:
        raise NotFound(f"no tarball {filename} for {name}", detail={"name": name, "file": filename})
    return TarballRecord(name, row[0], row[1], row[2], row[3], row[4], bool(row[5]))


def _advisory(row: tuple[Any, ...]) -> Advisory:
    return Advisory(row[0], row[1], row[2], row[3], row[4], row[5], tuple(json.loads(row[6])), row[7], row[8])


class Reads(Connections):
    async def packument(self, name: str, *, abbreviated: bool) -> StoredDoc:
        return await self.read(lambda conn: packument_doc(conn, name, abbreviated))

    async def version_doc(self, name: str, spec: str) -> StoredDoc:
        """One version's document; ``spec`` is a version or a dist-tag."""
        return await self.read(lambda conn: version_doc(conn, name, spec))

    async def tarball(self, name: str, filename: str) -> TarballRecord:
        return await self.read(lambda conn: tarball(conn, name, filename))

    async def lookup_many(self, lookups: list[Lookup]) -> list[StoredDoc | TarballRecord | EghactError]:
        """Several reads in one snapshot and one thread hop; each answer or its error, in order."""
        def run(conn: sqlite3.Connection) -> list[StoredDoc | TarballRecord | EghactError]:
            seq = heads(conn)  # one snapshot: the same for every document in it

            def packument_or_dists(c: sqlite3.Connection, name: str, form: str) -> StoredDoc:
                return dists(c, name, seq) if form == "dists" else packument_doc(c, name, form == "abbreviated", seq)

            def one_version(c: sqlite3.Connection, name: str, spec: str) -> StoredDoc:
                return version_doc(c, name, spec, seq)

            readers: dict[str, Callable[[sqlite3.Connection, str, str], StoredDoc | TarballRecord]] = {
                "packument": packument_or_dists, "version": one_version, "tarball": tarball}
            found: list[StoredDoc | TarballRecord | EghactError] = []
            for kind, name, arg in lookups:
                try:
                    found.append(readers[kind](conn, name, arg))
                except EghactError as error:
                    found.append(error)
            return found

        return await self.read(run)

    async def package_state(self, name: str) -> PackageState:
        def run(conn: sqlite3.Connection) -> PackageState:
            row = conn.execute("SELECT seq FROM packages WHERE name=?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"package {name} not found", detail={"name": name})
            versions = {
                v: VersionState(v, d, bool(u))
                for v, d, u in conn.execute(
                    "SELECT version, deprecated, unpublished FROM versions WHERE name=?", (name,))
            }
            tags = dict(conn.execute("SELECT tag, version FROM dist_tags WHERE name=?", (name,)).fetchall())
            return PackageState(name, row[0], versions, tags)

        return await self.read(run)

    async def digest_in_use(self, digest: str) -> bool:
        return await self.read(lambda conn: conn.execute(
            "SELECT 1 FROM versions WHERE blob_digest=? LIMIT 1", (digest,)).fetchone() is not None)

    async def dist_tags(self, name: str) -> dict[str, str]:
        return (await self.package_state(name)).dist_tags

    async def advisories_for(self, names: list[str]) -> list[Advisory]:
        def run(conn: sqlite3.Connection) -> list[Advisory]:
            found: list[Advisory] = []
            for start in range(0, len(names), _CHUNK):
                chunk = names[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                found.extend(_advisory(r) for r in conn.execute(
                    f"SELECT id, name, vulnerable_versions, severity, title, url, cwe, cvss, created "
                    f"FROM advisories WHERE name IN ({marks}) ORDER BY id", chunk))
            return found

        return await self.read(run)

    async def search(self, query: SearchQuery) -> tuple[int, list[SearchHit]]:
        return await self.read(lambda conn: search_packages(conn, query))

    async def stats(self, names: NameFilter = EVERYTHING, *, public: bool = False) -> dict[str, int]:
        """Counts of what ``names`` lets the caller see, and the head of its numbering."""
        def run(conn: sqlite3.Connection) -> dict[str, int]:
            visible, args = clause(names, "name", conn)
            packages = conn.execute(f"SELECT COUNT(*) FROM packages WHERE full_doc IS NOT NULL AND {visible}",
                                    args).fetchone()[0]
            versions = conn.execute(f"SELECT COUNT(*) FROM versions WHERE unpublished IS NULL AND {visible}",
                                    args).fetchone()[0]
            seq = public_feed.head(conn) if public else last_seq(conn)
            return {"packages": packages, "versions": versions, "seq": seq}

        return await self.read(run)
