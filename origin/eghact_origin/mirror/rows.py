"""The rows a staged bundle writes, shared by both ways of applying it (:mod:`.apply` through
the usual WAL transaction, :mod:`.fresh` into a database built aside): one package's rows from
its packuments as served, a staged packument read from the pack, and the bundle's change events.
It lives apart from both so that neither imports the other for them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, BinaryIO

from eghact_common import integrity

from ..storage.search import SEARCH_COLUMNS, search_fields
from . import fragments
from .errors import MirrorApplyError


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



def read_at(pack: BinaryIO, where: list[int]) -> bytes:
    """The staged packument at ``where`` ([offset, length]) in the pack."""
    offset, length = where
    pack.seek(offset)
    data = pack.read(length)
    if len(data) != length:
        raise MirrorApplyError("the staged packuments end before a packument does", code="bad_stage", exit_code=10)
    return data



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
