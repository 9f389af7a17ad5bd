"""The pull policy: which versions of an upstream packument an uplinked package shows.

Pure: no I/O, the clock is an argument. The uplink service calls :meth:`PullPolicy.apply`
on every pull and refresh of a packument and after an admin override, and stores the
decision's ``doc`` as the package's view; each change of the view is a change like any other
(one feed event).

Two rules hide a version, each with its reason code in :attr:`PullDecision.hidden`:

``cooldown`` (``--uplink-min-age D``)
    The version was published less than D before ``now``, by ``time[version]``. Compromised
    releases of popular packages are usually caught and unpublished within hours; a registry
    that waits lets its readers miss them (pnpm's ``minimumReleaseAge`` and uv's
    ``exclude-newer`` do this in one client; here it holds for every client of the origin).
    A version with no readable time entry is hidden while the packument has a ``time`` object
    at all: the upstream said when the others were published and not this one, and "unknown"
    must not pass for "old enough" (pnpm's filter keeps only versions whose time is known and
    old enough; npm's ``--before`` is the lenient one and keeps them). A packument with no
    ``time`` whatever cannot be judged, and everything in it stays visible: npm's ``--before``
    does the same, while pnpm refuses the package (``ERR_PNPM_MISSING_TIME``), which would make
    a registry that keeps no times useless as an uplink. The uplink service asks for full
    packuments, which carry ``time``, so only such registries reach this case. Names matching
    an ``--uplink-min-age-exempt`` pattern (shell-style, like token scopes) are not cooled.
``advisory`` (``--uplink-block-severity L``)
    An advisory of severity L or worse (:data:`~eghact_origin.storage.SEVERITIES`; a severity
    not in that list ranks below ``low``) names the version, as the resolver's ``strict``
    security matches them (:func:`~eghact_origin.resolver.policy.advisory_covers`). When both
    rules hide a version the reason is ``advisory``: the one an admin most needs to know.

A version in ``allowed`` (an admin's override, ``uplink_allowed``) is never hidden.

Hidden versions leave ``versions`` and ``time`` (``created``, ``modified`` and every other
key stay), and each dist-tag naming a hidden version is moved (a tag naming a visible
version, or none the packument has, is left as the upstream set it):

* a release (``latest``, ``v2-lts``) moves to the best visible release: the same major first,
  then one not above the hidden target, then not deprecated, then the highest. "Not above"
  is what makes this restore the tag's previous target in the usual case (the newest
  release is the one held back): the newest by publish time would move ``latest`` back to
  a backport of an old major published last week, and the highest overall to a major the
  maintainers never tagged. pnpm's filter moves tags the same way (same major, same
  prerelease-ness, non-deprecated first, highest).
* a prerelease (``next`` on ``3.0.0-beta.4``) moves to the newest visible prerelease of the
  same line (the same leading word of the first prerelease identifier: ``beta``, ``rc``,
  ``canary``; same major first, non-deprecated first), newest by publish time: canary
  versions carry commit hashes that do not sort by semver.
* a tag with no visible version on its line is dropped, except ``latest``, which then takes
  the best visible version of any kind, and is dropped only when nothing is visible.

A package with every version hidden is present but empty (``versions`` is ``{}``): the uplink
service answers its reads with :meth:`PullDecision.held_back_error` (404
``versions_held_back``) rather than a plain 404 that would send a client elsewhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from eghact_common import semver
from eghact_common.errors import VersionsHeldBack

from ..resolver.policy import advisory_covers
from ..settings import OriginSettings
from ..storage import SEVERITIES, iso

__all__ = ["ADVISORY", "COOLDOWN", "PullDecision", "PullPolicy", "move_tags", "published_at"]

COOLDOWN = "cooldown"
ADVISORY = "advisory"

_WORD = re.compile(r"[A-Za-z]*")


@dataclass(frozen=True)
class PullDecision:
    """What a reader of an uplinked package sees: the upstream FULL packument with the hidden
    versions removed and its tags moved, and why each hidden version is hidden."""

    doc: dict[str, Any]
    hidden: dict[str, str] = field(default_factory=dict)  # version -> COOLDOWN | ADVISORY
    # The first moment a version hidden by the cooldown becomes visible (epoch seconds): the
    # view changes then with no upstream change, so the service applies the policy again at
    # that time (or at its next refresh, whichever comes first). None: time changes nothing.
    reveal_at: float | None = None

    @property
    def empty(self) -> bool:
        """Whether the policy hid every version the upstream has (present, but nothing to read)."""
        return bool(self.hidden) and not self.doc.get("versions")

    def held_back_error(self, name: str) -> VersionsHeldBack:
        """The 404 a read of an :attr:`empty` package gets: how many versions each rule hides
        and, for a cooldown, when the first one becomes visible (``visible_after``, ISO UTC)."""
        reasons: dict[str, int] = {}
        for reason in self.hidden.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        detail: dict[str, Any] = {"name": name, "hidden": reasons}
        message = f"every version of {name} is held back by this registry's pull policy"
        if self.reveal_at is not None:
            detail["visible_after"] = iso(datetime.fromtimestamp(self.reveal_at, UTC))
            message += f"; the first becomes visible at {detail['visible_after']}"
        return VersionsHeldBack(message, detail=detail)


@dataclass(frozen=True)
class PullPolicy:
    """The origin's pull policy (see the module docstring). The default hides nothing."""

    min_age: float = 0.0                 # seconds; 0: no cooldown
    min_age_exempt: tuple[str, ...] = ()  # name patterns the cooldown skips
    block_severity: str | None = None    # advisories this severe or worse hide; None: off

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_age) and self.min_age >= 0):
            raise ValueError(f"the minimum age must be a finite number of seconds >= 0, not {self.min_age!r}")
        if self.block_severity is not None and self.block_severity not in SEVERITIES:
            raise ValueError(f"block severity {self.block_severity!r} is not one of {', '.join(SEVERITIES)}")

    @classmethod
    def from_settings(cls, settings: OriginSettings) -> PullPolicy:
        """The policy ``eghact-origin serve`` was started with."""
        return cls(min_age=settings.uplink_min_age, min_age_exempt=settings.uplink_min_age_exempt,
                   block_severity=settings.uplink_block_severity)

    @property
    def active(self) -> bool:
        """Whether the policy can hide anything (else :meth:`apply` returns the doc as it is)."""
        return self.min_age > 0 or self.block_severity is not None

    def cools(self, name: str) -> bool:
        """Whether the cooldown applies to ``name`` (set, and no exempt pattern matches it)."""
        return self.min_age > 0 and not any(fnmatchcase(name, pattern) for pattern in self.min_age_exempt)

    def apply(self, name: str, doc: Mapping[str, Any], *, now: float,
              allowed: Collection[str] = (), advisories: Sequence[Mapping[str, Any]] = ()) -> PullDecision:
        """The view of upstream packument ``doc`` at ``now`` (epoch seconds). ``allowed``: the
        versions an admin let through; ``advisories``: the origin's advisories for ``name``
        (``{id, vulnerable_versions, severity, ...}``). ``doc`` is not modified."""
        versions = _mapping(doc.get("versions"))
        times = doc.get("time")
        times = times if isinstance(times, Mapping) else None
        blocking = [a for a in advisories if self._blocks(a)]
        cooling = self.cools(name) and times is not None
        hidden: dict[str, str] = {}
        reveal_at: float | None = None
        for version in versions:
            if version in allowed:
                continue
            if any(advisory_covers(a, version) for a in blocking):
                hidden[version] = ADVISORY
            elif cooling:
                published = published_at(times, version)
                if published is None:
                    hidden[version] = COOLDOWN
                elif published + self.min_age > now:
                    hidden[version] = COOLDOWN
                    reveal_at = min(reveal_at or math.inf, published + self.min_age)
        view = dict(doc)
        if not hidden:
            return PullDecision(view)
        view["versions"] = {v: d for v, d in versions.items() if v not in hidden}
        if times is not None:
            view["time"] = {k: t for k, t in times.items() if k not in hidden}
        if isinstance(doc.get("dist-tags"), Mapping):
            view["dist-tags"] = move_tags(doc["dist-tags"], hidden, view["versions"], times)
        return PullDecision(view, hidden, reveal_at)

    def _blocks(self, advisory: Mapping[str, Any]) -> bool:
        if self.block_severity is None:
            return False
        covered = advisory.get("vulnerable_versions")
        # An advisory without a range names nothing (an empty range would be "*" to semver).
        return (isinstance(covered, str) and bool(covered.strip())
                and _rank(advisory.get("severity")) >= _rank(self.block_severity))


def published_at(times: Mapping[str, Any] | None, version: str) -> float | None:
    """When ``version`` was published (epoch seconds) by a packument's ``time``; None when it
    does not say, or not in ISO 8601 (a time without a zone is read as UTC, as npm writes it)."""
    text = times.get(version) if times is not None else None
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _rank(severity: object) -> int:
    return SEVERITIES.index(severity) if isinstance(severity, str) and severity in SEVERITIES else -1


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _line(version: semver.Version) -> str | None:
    """None for a release; for a prerelease, the leading word of its first identifier."""
    if not version.prerelease:
        return None
    match = _WORD.match(str(version.prerelease[0]))
    return match.group(0).lower() if match else ""


def move_tags(tags: Mapping[str, Any], hidden: Mapping[str, str], visible: Mapping[str, Any],
              times: Mapping[str, Any] | None) -> dict[str, Any]:
    """``tags`` with each one naming a ``hidden`` version moved as the module docstring says,
    among the ``visible`` versions (version -> document; its ``deprecated`` is read). Also what
    a mirror does with a pulled package's tags for the versions it does not hold (mirror/pulled.py)."""
    parsed = {v: p for v in visible if (p := semver.parse(v, loose=True)) is not None}
    moved: dict[str, Any] = {}
    for tag, target in tags.items():
        if not isinstance(target, str) or target not in hidden:
            moved[tag] = target
            continue
        best = _replacement(tag, semver.parse(target, loose=True), parsed, visible, times)
        if best is not None:
            moved[tag] = best
    return moved


def _replacement(tag: str, target: semver.Version | None, parsed: Mapping[str, semver.Version],
                 visible: Mapping[str, Any], times: Mapping[str, Any] | None) -> str | None:
    line = _line(target) if target is not None else None
    candidates = [v for v, p in parsed.items() if target is not None and _line(p) == line]
    if not candidates and tag == "latest":
        candidates = list(parsed)
    if not candidates:
        return None

    def current(v: str) -> bool:
        doc = visible.get(v)
        return not (isinstance(doc, Mapping) and doc.get("deprecated"))

    def key(v: str) -> tuple[Any, ...]:
        p = parsed[v]
        same_major = target is not None and p.major == target.major
        if line is None:  # a release line: see the module docstring for "not above"
            return (not p.prerelease, same_major, target is None or p <= target, current(v), p)
        return (not p.prerelease, same_major, current(v), published_at(times, v) or -math.inf, p)

    return max(candidates, key=key)
