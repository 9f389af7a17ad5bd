"""Registry writes: publish (one or a batch), deprecate, unpublish, dist-tags, advisories.

Every state change writes, in one transaction: the rows it changes (through :mod:`.rows`),
the re-rendered packuments (:mod:`.render`), one event in ``changes`` (its seq), and the
sealed audit record in the outbox.
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future
from typing import Any

from eghact_common import wire
from eghact_common.errors import BadRequest, NotFound, UplinkedPackage, VersionExists

from ... import packument
from ..records import AdvisoryRecord, NewVersion, VersionRow
from .feed import Feed
from .render import repair_latest, rerender
from .rows import delete_dist_tags, write_advisory, write_dist_tags, write_versions


class Writes(Feed):
    async def publish(self, new: NewVersion, *, actor: str) -> wire.ChangeEvent:
        """Commit one version: row, dist-tags, packuments, event, audit. Raises VersionExists."""
        return await self.write(lambda conn: self._publish(conn, new, actor))

    def ingest_sync(self, batch: list[NewVersion], *, actor: str) -> list[wire.ChangeEvent]:
        """Bulk commit of many versions (seeding) in one transaction.

        Packuments are rendered once per package at the end rather than once per version:
        a package with thousands of versions would otherwise cost O(n²) bytes.
        """
        events = self.ingest_submit(batch, actor=actor).result()
        self.flush_audit()
        return events

    def ingest_submit(self, batch: list[NewVersion], *, actor: str) -> Future[list[wire.ChangeEvent]]:
        """Queue a bulk commit on the writer thread; the caller prepares the next batch
        meanwhile and calls ``flush_audit`` when done. A package must not span batches
        that are in flight at once (each batch renders its packages from what is committed)."""
        def run(conn: sqlite3.Connection) -> list[wire.ChangeEvent]:
            events = [self._publish(conn, new, actor, render=False) for new in batch]
            last_by_name = {e.name: e for e in events}
            for name, event in last_by_name.items():
                rerender(conn, name, event.seq, event.time)
            return events

        return self._writer_thread.submit(self._transaction, run)

    def _publish(self, conn: sqlite3.Connection, new: NewVersion, actor: str,
                 render: bool = True) -> wire.ChangeEvent:
        now = new.published or self.now()
        existing = conn.execute("SELECT unpublished FROM versions WHERE name=? AND version=?",
                                (new.name, new.version)).fetchone()
        if existing is not None:
            # npm's rule: a version number is used once, even after an unpublish.
            raise VersionExists(
                f"{new.name}@{new.version} already exists" + (" (unpublished; versions are never reused)"
                                                              if existing[0] else ""),
                detail={"name": new.name, "version": new.version},
            )
        if conn.execute("SELECT 1 FROM uplink_packages WHERE name=?", (new.name,)).fetchone() is not None:
            # Checked in the transaction: a pull committed after the caller looked still wins.
            raise UplinkedPackage.of(new.name)
        conn.execute("INSERT OR IGNORE INTO packages (name, created, modified, seq) VALUES (?, ?, ?, 0)",
                     (new.name, now, now))
        rendered = packument.render_version(
            new.doc, name=new.name, version=new.version, filename=new.filename,
            dist={"integrity": new.integrity, "shasum": new.shasum, "fileCount": new.file_count,
                  "unpackedSize": new.unpacked_size},
            publisher=actor,
        )
        write_versions(conn, [VersionRow(new.name, new.version, new.filename, now, rendered.full,
                                         rendered.abbreviated, new.blob_digest, new.integrity, new.shasum,
                                         new.size, new.deprecated or None)])
        tags = [(new.name, tag, new.version) for tag in new.tags]
        if "latest" not in new.tags and conn.execute(
                "SELECT 1 FROM dist_tags WHERE name=? AND tag='latest'", (new.name,)).fetchone() is None:
            # npm: a package always has a latest tag once it has a version.
            tags.append((new.name, "latest", new.version))
        write_dist_tags(conn, tags)
        event = self.append_event(
            conn, wire.PUBLISH, new.name, new.version,
            [wire.package_key(new.name), wire.SEARCH_KEY], now,
            {"integrity": new.integrity, "tags": list(new.tags)},
        )
        self.record_audit(conn, "publish", actor, f"{new.name}@{new.version}",
                          {"integrity": new.integrity, "size": new.size, "tags": list(new.tags), "seq": event.seq},
                          now)
        if render:
            rerender(conn, new.name, event.seq, now)
        return event

    async def deprecate(self, name: str, messages: dict[str, str], *, actor: str) -> list[wire.ChangeEvent]:
        """Set (or clear, with "") the deprecation message of versions; one event per change."""
        def run(conn: sqlite3.Connection) -> list[wire.ChangeEvent]:
            now = self.now()
            events = []
            for version, message in sorted(messages.items()):
                row = conn.execute("SELECT deprecated, unpublished FROM versions WHERE name=? AND version=?",
                                   (name, version)).fetchone()
                if row is None or row[1]:
                    raise NotFound(f"{name}@{version} does not exist", detail={"name": name, "version": version})
                if (row[0] or "") == message:
                    continue
                conn.execute("UPDATE versions SET deprecated=? WHERE name=? AND version=?",
                             (message or None, name, version))
                events.append(self.append_event(conn, wire.DEPRECATE, name, version, [wire.package_key(name)], now,
                                                {"message": message}))
                self.record_audit(conn, "deprecate", actor, f"{name}@{version}", {"message": message}, now)
            if events:
                rerender(conn, name, events[-1].seq, now)
            return events

        return await self.write(run)

    async def unpublish(self, name: str, versions: list[str], *, reason: str,
                        actor: str) -> tuple[list[wire.ChangeEvent], list[str]]:
        """Tombstone versions. Returns the events and the blob digests no live version uses."""
        def run(conn: sqlite3.Connection) -> tuple[list[wire.ChangeEvent], list[str]]:
            now = self.now()
            events, digests = [], []
            for version in versions:
                row = conn.execute("SELECT unpublished, blob_digest FROM versions WHERE name=? AND version=?",
                                   (name, version)).fetchone()
                if row is None:
                    raise NotFound(f"{name}@{version} does not exist", detail={"name": name, "version": version})
                if row[0]:
                    continue
                conn.execute("UPDATE versions SET unpublished=?, unpublish_reason=? WHERE name=? AND version=?",
                             (now, reason, name, version))
                delete_dist_tags(conn, name, version=version)
                digests.append(row[1])
                events.append(self.append_event(
                    conn, wire.UNPUBLISH, name, version,
                    [wire.package_key(name), wire.tarball_key(name, version), wire.SEARCH_KEY], now,
                    {"reason": reason}))
                self.record_audit(conn, "unpublish", actor, f"{name}@{version}", {"reason": reason}, now)
            if events:
                repair_latest(conn, name)
                rerender(conn, name, events[-1].seq, now)
            unused = [d for d in digests if conn.execute(
                "SELECT 1 FROM versions WHERE blob_digest=? AND unpublished IS NULL", (d,)).fetchone() is None]
            return events, unused

        return await self.write(run)

    async def set_dist_tag(self, name: str, tag: str, version: str | None, *, actor: str) -> wire.ChangeEvent:
        """Point ``tag`` at ``version``, or delete it when ``version`` is None."""
        def run(conn: sqlite3.Connection) -> wire.ChangeEvent:
            now = self.now()
            if conn.execute("SELECT 1 FROM packages WHERE name=?", (name,)).fetchone() is None:
                raise NotFound(f"package {name} does not exist", detail={"name": name})
            if version is None:
                if tag == "latest":
                    raise BadRequest("the latest tag cannot be removed; point it at another version",
                                     code="latest_tag_required")
                if delete_dist_tags(conn, name, tag=tag) == 0:
                    raise NotFound(f"{name} has no dist-tag {tag!r}", detail={"name": name, "tag": tag})
            else:
                row = conn.execute("SELECT unpublished FROM versions WHERE name=? AND version=?",
                                   (name, version)).fetchone()
                if row is None or row[0]:
                    raise NotFound(f"{name}@{version} does not exist", detail={"name": name, "version": version})
                write_dist_tags(conn, [(name, tag, version)])
            event = self.append_event(conn, wire.DIST_TAG, name, version, [wire.package_key(name)], now,
                                            {"tag": tag})
            self.record_audit(conn, "dist-tag", actor, name, {"tag": tag, "version": version}, now)
            rerender(conn, name, event.seq, now)
            return event

        return await self.write(run)

    def add_advisory_sync(self, advisory: dict[str, Any], *, actor: str) -> wire.ChangeEvent:
        """Store an advisory ({name, vulnerable_versions, severity, title, url?, cwe?, cvss?}) and
        its event, which carries the whole advisory so that a follower or a bundle can copy it."""
        def run(conn: sqlite3.Connection) -> wire.ChangeEvent:
            now = self.now()
            record = AdvisoryRecord(advisory["name"], advisory["vulnerable_versions"], advisory["severity"],
                                    advisory["title"], advisory.get("url", ""), tuple(advisory.get("cwe", ())),
                                    advisory.get("cvss"), now)
            advisory_id = write_advisory(conn, record)
            carried = {"id": advisory_id, "name": record.name, "vulnerable_versions": record.vulnerable_versions,
                       "severity": record.severity, "title": record.title, "url": record.url,
                       "cwe": list(record.cwe), "cvss": record.cvss, "created": now}
            event = self.append_event(conn, wire.ADVISORY, record.name, None,
                                      [wire.advisory_key(record.name)], now, {"advisory": carried})
            self.record_audit(conn, "advisory", actor, record.name, {"id": advisory_id, **advisory}, now)
            return event

        return self.write_sync(run)
