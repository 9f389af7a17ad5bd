"""A pulled package in a mirror: the versions bundles brought, not every version upstream has.

A package the origin pulled from an uplink may list hundreds of versions (some list thousands,
of many MB each), of which a mirror's selection needs a few. Its bundle entry therefore names
the versions it carries (``"versions"`` in the stage's package entry, from the bundle index),
and the packuments in the bundle are still the origin's, byte for byte (the signed index
covers them as it covers any file). What the mirror stores for such a package is:

* the union of the versions it already holds and the ones the bundle carries, each row cut
  from the bundle's packuments where they still list it (a deprecation upstream reaches the
  mirror), and kept as it was where they no longer do: a later bundle adds versions and never
  unpublishes those an earlier one brought (clients that locked them still install offline);
* dist-tags as the origin serves them, each naming a version the mirror does not hold moved
  as the pull policy moves a tag off a hidden version (``uplinks.policy.move_tags``: same
  major first, not above the old target, ...) — so npm resolving ``latest`` against the
  mirror picks among versions it can install;
* packuments rendered from those rows by the origin's own renderer, as the origin renders a
  package's packuments after any change (only the versions held: npm picks among them).

Both ways of applying a bundle (:mod:`.apply`, :mod:`.fresh`) call :func:`pulled_rows`.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from .. import packument
from ..storage import PackageRows, VersionRow
from ..uplinks.policy import move_tags
from . import fragments
from .rows import version_row

_NOT_HELD = "not-held"  # the reason move_tags is given for a version the mirror does not hold


def pulled_rows(name: str, full: bytes, abbreviated: bytes, base_url: str, seq: int, sizes: dict[str, int],
                carried: Collection[str], held: list[VersionRow]) -> PackageRows | None:
    """The rows of pulled package ``name`` once a bundle carrying ``carried`` of its versions is
    applied over ``held`` (its live rows in the mirror, ``MirrorWriter.live_versions``); None
    when that leaves no version at all (nothing to store). Raises ``missing_tarball`` for a
    carried version whose tarball is neither staged nor in the mirror."""
    head, versions = fragments.versions(full, abbreviated, base_url)
    times: dict[str, Any] = head.get("time") or {}
    kept = {row.version: row for row in held}
    wanted = set(carried) | set(kept)
    rows: list[VersionRow] = []
    visible: dict[str, Any] = {}
    listed: set[str] = set()
    for version, vdoc, stored, short in versions:
        listed.add(version)
        if version in wanted:
            rows.append(version_row(name, version, vdoc, stored, short, times, sizes))
            visible[version] = vdoc
    for version, row in kept.items():
        if version not in listed:  # no longer served upstream: the mirror keeps what it brought
            rows.append(row)
            visible[version] = {"deprecated": row.deprecated}
    if not rows:
        return None
    hidden = {version: _NOT_HELD for version in listed if version not in visible}
    moved = move_tags(head.get("dist-tags") or {}, hidden, visible, times)
    tags = {tag: version for tag, version in moved.items() if isinstance(version, str) and version in visible}
    latest = tags.get("latest") or rows[-1].version
    tags.setdefault("latest", latest)
    by_version = {row.version: row for row in rows}
    latest_doc = json.loads(packument.materialize(by_version[latest].doc, ""))
    created, modified = str(times.get("created") or ""), str(times.get("modified") or "")
    full_doc, abbrev_doc = packument.render_packuments(
        name, versions=[packument.VersionFragment(r.version, r.doc, r.abbrev, r.published, r.deprecated)
                        for r in rows],
        dist_tags=tags, created=created, modified=modified, seq=seq, latest_doc=latest_doc)
    return PackageRows(name, rows, list(tags.items()), created, modified, seq, full_doc, abbrev_doc, latest,
                       latest_doc)
