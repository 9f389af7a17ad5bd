"""``audit``: the installed lockfile's packages against the registry's advisories.

One ``POST /-/npm/v1/security/advisories/bulk`` (npm's bulk format, ``{name: [versions]}`` ->
``{name: [advisory]}``) at the nearest source that answers (an edge passes it on), then, for
each package an advisory hits, its abbreviated packument, for the fixed-version hint: the
lowest published version above the installed one that none of the package's advisories
covers (what ``update --security`` would move to, when the requirements allow it).

Severities are npm's, lowest first (:data:`SEVERITIES`); ``--level`` is a threshold in that
order. A range is read as the resolver reads it: loose, and covering the prereleases inside it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from eghact_common import semver
from eghact_common.wire import ACCEPT_ABBREVIATED

from .errors import from_answer
from .levels import SEVERITIES
from .lockfile import Lock
from .sources import Sources

__all__ = ["SEVERITIES", "Finding", "at_or_above", "audit", "covers", "fixed_in"]

log = logging.getLogger("eghact.client")

_AUDIT_PATH = "/-/npm/v1/security/advisories/bulk"
# packuments fetched at once for the hints: a handful of vulnerable packages is the usual case
_PACKUMENTS_AT_ONCE = 8


@dataclass(frozen=True)
class Finding:
    """One advisory hitting one installed version (of a package that may be placed at several keys)."""

    name: str
    version: str
    keys: tuple[str, ...]           # where the lockfile places that version
    id: str
    severity: str
    title: str
    url: str | None
    vulnerable_versions: str
    fixed_in: str | None            # the lowest later version no advisory of the package covers

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "keys": list(self.keys)}


def covers(vulnerable_versions: str, version: str) -> bool:
    """Whether an advisory's range names ``version`` (as the resolver's policy reads it)."""
    return semver.satisfies(version, vulnerable_versions, loose=True, include_prerelease=True)


def fixed_in(version: str, published: Iterable[str], ranges: Iterable[str]) -> str | None:
    """The lowest of ``published`` above ``version`` that none of ``ranges`` covers, or None."""
    ranges = list(ranges)
    # releases only: a prerelease is no fix to recommend
    later = [v for v in published if (parsed := semver.parse(v, loose=True)) is not None and not parsed.prerelease
             and semver.gt(v, version, loose=True)]
    for candidate in semver.sort(later, loose=True):
        if not any(covers(r, candidate) for r in ranges):
            return candidate
    return None


def at_or_above(findings: Iterable[Finding], level: str) -> list[Finding]:
    """The findings whose severity is ``level`` or worse (an unknown severity counts as ``low``)."""
    floor = SEVERITIES.index(level)
    return [f for f in findings if _rank(f.severity) >= floor]


async def audit(lock: Lock, sources: Sources) -> list[Finding]:
    """Every advisory hitting a locked version, worst first; raises the registry's error, or
    ``NoSourceReachable``."""
    versions: dict[str, set[str]] = {}
    keys: dict[tuple[str, str], list[str]] = {}
    for package in lock.packages:
        versions.setdefault(package.name, set()).add(package.version)
        keys.setdefault((package.name, package.version), []).append(package.key)
    if not versions:
        return []
    body = {name: sorted(found) for name, found in sorted(versions.items())}
    source, response = await sources.request("POST", _AUDIT_PATH, body=body)
    if response.status != 200:
        raise from_answer(response.status, response.body, what="audit")
    report = response.json()
    if not isinstance(report, dict):
        raise from_answer(502, b"", what="audit: the answer is not a JSON object")
    hits: dict[str, list[Mapping[str, Any]]] = {
        name: [a for a in advisories if isinstance(a, dict) and isinstance(a.get("vulnerable_versions"), str)]
        for name, advisories in report.items() if name in versions and isinstance(advisories, list)}
    log.info("audit at %s: %d of %d packages have advisories", source.url, sum(1 for a in hits.values() if a),
             len(versions))
    published = await _published(sources, [name for name, advisories in hits.items() if advisories])
    findings: list[Finding] = []
    for name, advisories in sorted(hits.items()):
        ranges = [a["vulnerable_versions"] for a in advisories]
        for version in sorted(versions[name]):
            fix = fixed_in(version, published.get(name, ()), ranges)
            findings.extend(
                Finding(name, version, tuple(sorted(keys[(name, version)])), str(a.get("id")),
                        str(a.get("severity") or "low"), str(a.get("title") or ""),
                        a.get("url") if isinstance(a.get("url"), str) else None, a["vulnerable_versions"], fix)
                for a in advisories if covers(a["vulnerable_versions"], version))
    findings.sort(key=lambda f: (-_rank(f.severity), f.name, f.version, f.id))
    return findings


async def _published(sources: Sources, names: list[str]) -> dict[str, list[str]]:
    """Each name's published versions (its abbreviated packument); a name that cannot be read
    has none (its hint is then None: the audit itself stands)."""
    gate = asyncio.Semaphore(_PACKUMENTS_AT_ONCE)

    async def one(name: str) -> tuple[str, list[str]]:
        async with gate:
            _, response = await sources.request("GET", "/" + quote(name, safe="@"),
                                                headers={"Accept": ACCEPT_ABBREVIATED})
        document = response.json() if response.status == 200 else None
        listed = document.get("versions") if isinstance(document, dict) else None
        return name, list(listed) if isinstance(listed, dict) else []

    return dict(await asyncio.gather(*(one(n) for n in names)))


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else SEVERITIES.index("low")
