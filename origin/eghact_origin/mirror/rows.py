"""The rows a staged bundle writes, shared by both ways of applying it (:mod:`.apply` through
the usual WAL transaction, :mod:`.fresh` into a database built aside): one package's rows from
its packuments as served, a staged packument read from the pack, the mirror's place after a
bundle and its audit record. It lives apart from both so that neither imports the other for them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from eghact_common import integrity

from ..storage import MirrorState, PackageRows, VersionRow
from . import fragments
from .errors import MirrorApplyError

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def package_rows(name: str, full: bytes, abbreviated: bytes, base_url: str, seq: int,
                 sizes: dict[str, int]) -> PackageRows:
    """One package's rows from its packuments as served; raises ``missing_tarball``."""
    head, versions = fragments.versions(full, abbreviated, base_url)
    times = head.get("time") or {}
    rows = [version_row(name, version, vdoc, stored, short, times, sizes) for version, vdoc, stored, short in versions]
    tags = head.get("dist-tags") or {}
    latest = tags.get("latest")
    latest_doc = next((doc for version, doc, _, _ in versions if version == latest), None) if latest else None
    return PackageRows(name, rows, list(tags.items()), times.get("created", ""), times.get("modified", ""), seq,
                       fragments.marked(full, base_url), fragments.marked(abbreviated, base_url), latest, latest_doc)


def version_row(name: str, version: str, vdoc: dict[str, Any], stored: bytes, short: bytes, times: dict[str, Any],
                sizes: dict[str, int]) -> VersionRow:
    """One version's row from its cut fragments (``fragments.versions``); raises ``missing_tarball``
    when neither the bundle nor the mirror has its tarball."""
    dist = vdoc["dist"]
    digest = integrity.parse_sri(dist.get("integrity") or "")
    sha512 = next((d.hex() for algo, d in digest if algo == "sha512"), None)
    if sha512 is None or sha512 not in sizes:
        raise MirrorApplyError(f"{name}@{version}: its tarball is not in the bundle", code="missing_tarball",
                               exit_code=14)
    return VersionRow(name, version, dist["tarball"].rsplit("/", 1)[-1], times.get(version, ""), stored, short,
                      sha512, dist["integrity"], dist.get("shasum", ""), sizes[sha512], vdoc.get("deprecated"))


def read_at(pack: BinaryIO, where: list[int]) -> bytes:
    """The staged packument at ``where`` ([offset, length]) in the pack."""
    offset, length = where
    pack.seek(offset)
    data = pack.read(length)
    if len(data) != length:
        raise MirrorApplyError("the staged packuments end before a packument does", code="bad_stage", exit_code=10)
    return data


def staged_events(stage_dir: Path, stage: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The range's change events, in order, read a line at a time from the staged file
    ``stage["events"]`` names (a full bundle's are tens of MB: never all in memory)."""
    name = stage["events"]
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
        raise MirrorApplyError("the staged events are not a file in the staging dir", code="bad_stage",
                               exit_code=10)
    path = stage_dir / name
    if not path.exists():  # a range whose filter kept no event
        return
    with open(path, "rb") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def applied(state: MirrorState, stage: dict[str, Any]) -> MirrorState:
    """The mirror's place once ``stage`` is applied after ``state``."""
    return MirrorState(stage["origin_id"], stage["to_seq"], stage["bundle_digest"],
                       (*state.chain, stage["bundle_digest"]))


def audit_data(stage: dict[str, Any]) -> dict[str, Any]:
    """What the audit record of an apply says (both ways write the same)."""
    return {"origin_id": stage["origin_id"], "from_seq": stage["from_seq"], "to_seq": stage["to_seq"],
            "packages": len(stage["packages"]), "events": stage["event_count"]}
