"""The request's policy, applied to versions: which ones may be installed at all, and what an
installed one reports.

Exclusion rules (each excluded version is recorded with its reason, so that a conflict can
say "core 3.1.0 excluded: requires capability process:spawn (denied)"):

    capabilities   a REQUIRED capability that a deny pattern overlaps, or that no allow pattern
                   covers (when an allow-list is given), excludes the version; an OPTIONAL one
                   is only switched off: the node lists it in ``disabled_capabilities``
    licences       with an allow-list, the licence expression must satisfy it
                   (``spdx.satisfies_allow_list``); a missing or unreadable licence fails
    security       strict: a version an advisory names is excluded; audit: it is installed,
                   and the node carries the advisories (plus a warning); permissive: ignored
    framework      with a target framework version, a plugin whose ``eghact.version`` range
                   does not include it is excluded (libraries have no range and always pass)

Verdicts are cached per policy (one policy per resolution) and per package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eghact_common import semver
from eghact_common.capabilities import InvalidCapability, capability_matches, capability_overlaps
from eghact_common.spdx import InvalidLicense, satisfies_allow_list

from .graph import Edge, Node
from .provider import PackageInfo, VersionInfo
from .request import ResolveRequest

__all__ = ["Exclusion", "Policy", "advisory_covers"]


def advisory_covers(advisory: Mapping[str, Any], version: str) -> bool:
    """Whether ``advisory``'s ``vulnerable_versions`` names ``version``. Like npm audit, a
    range covers the prereleases inside it too; an unreadable range covers nothing."""
    return semver.satisfies(version, advisory["vulnerable_versions"], loose=True, include_prerelease=True)


@dataclass(frozen=True)
class Exclusion:
    package: str
    version: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"package": self.package, "version": self.version, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.package} {self.version} excluded: {self.reason}"


class Policy:
    """One resolution's policy (see the module docstring)."""

    def __init__(self, request: ResolveRequest):
        caps = request.policy.capabilities
        self._deny = caps.deny
        self._allow = caps.allow
        licences = request.policy.licenses
        self._licences = licences.allow if licences is not None else None
        self.security = request.strategy.security
        self.framework = semver.parse(request.framework, loose=True) if request.framework else None
        self.peer_error = request.policy.peer == "error"
        #: what decides exclusions; no rules at all (the common case) excludes nothing
        self._rules = (self._deny, self._allow, self._licences, self.security == "strict",
                       self.framework.version if self.framework else None)
        self._inert = not (self._deny or self._allow is not None or self._licences is not None
                           or self.security == "strict" or self.framework is not None)
        self._allowed: dict[str, int] = {}
        self._excluded: dict[str, list[Exclusion]] = {}
        self._capability: dict[str, str | None] = {}

    # ------------------------------------------------------------------ exclusion

    def allowed(self, package: PackageInfo) -> int:
        """The bit mask of ``package.ordered`` that the policy lets be installed. Verdicts are
        kept on the package, so requests with the same rules share them."""
        mask = self._allowed.get(package.name)
        if mask is None:
            if self._inert:
                mask, excluded = package.all_mask, []
            else:
                mask, excluded = package.memo(("policy", self._rules), lambda: self._judge(package))
            self._allowed[package.name], self._excluded[package.name] = mask, excluded
        return mask

    def _judge(self, package: PackageInfo) -> tuple[int, list[Exclusion]]:
        mask, excluded = 0, []
        for i, info in enumerate(package.ordered):
            reasons = self.reasons(package, info)
            if reasons:
                excluded.append(Exclusion(package.name, info.version, "; ".join(reasons)))
            else:
                mask |= 1 << i
        return mask, excluded

    def excluded(self, name: str) -> list[Exclusion]:
        """What :meth:`allowed` excluded from the package, with reasons (empty if not asked yet)."""
        return self._excluded.get(name, [])

    def reasons(self, package: PackageInfo, info: VersionInfo) -> list[str]:
        """Why ``info`` may not be installed; empty when it may."""
        reasons = []
        for capability in info.capabilities_required:
            problem = self._capability_problem(capability)
            if problem:
                reasons.append(f"requires capability {capability} ({problem})")
        if self._licences is not None:
            problem = self._licence_problem(info.license)
            if problem:
                reasons.append(problem)
        if self.security == "strict":
            reasons.extend(
                f"vulnerable: {a.get('id')} ({a.get('severity')}) {a.get('title')}".rstrip()
                for a in self._matching_advisories(package, info)
            )
        if self.framework is not None and info.framework is not None and not semver.satisfies(
                self.framework, info.framework, loose=True, include_prerelease=True):
            reasons.append(f"needs Eghact {info.framework}, the target is {self.framework.version}")
        return reasons

    def _capability_problem(self, capability: str) -> str | None:
        if capability not in self._capability:
            try:
                if any(capability_overlaps(capability, pattern) for pattern in self._deny):
                    verdict: str | None = "denied"
                elif self._allow is not None and not any(capability_matches(capability, p) for p in self._allow):
                    verdict = "not in the allow-list"
                else:
                    verdict = None
            except InvalidCapability:
                verdict = "not a valid capability"
            self._capability[capability] = verdict
        return self._capability[capability]

    def _licence_problem(self, licence: str | None) -> str | None:
        if licence is None:
            return "no licence (a licence allow-list is in force)"
        try:
            if satisfies_allow_list(licence, self._licences or ()):
                return None
        except InvalidLicense:
            return f"licence {licence!r} is not a valid SPDX expression"
        return f"licence {licence} is not in the allow-list"

    def _matching_advisories(self, package: PackageInfo, info: VersionInfo) -> list[dict[str, Any]]:
        return [a for a in package.advisories if advisory_covers(a, info.version)]

    # ------------------------------------------------------------------ reporting

    def capabilities(self, info: VersionInfo) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(enabled, disabled): the required capabilities plus the optional ones the policy
        permits, and the optional ones it switched off."""
        optional_off = tuple(c for c in info.capabilities_optional if self._capability_problem(c))
        enabled = info.capabilities_required + tuple(c for c in info.capabilities_optional if c not in optional_off)
        return enabled, optional_off

    def advisories(self, package: PackageInfo, info: VersionInfo) -> tuple[dict[str, Any], ...]:
        """The advisories a node reports: under ``audit`` only (``strict`` never installs
        them, ``permissive`` does not look)."""
        if self.security != "audit":
            return ()
        return tuple(self._matching_advisories(package, info))

    def node(
        self,
        key: str,
        package: PackageInfo,
        info: VersionInfo,
        *,
        dependencies: dict[str, str],
        optional: bool = False,
        peer: bool = False,
    ) -> Node:
        """The graph node for ``info`` installed at ``key``."""
        enabled, disabled = self.capabilities(info)
        return Node(
            key=key,
            name=info.name,
            version=info.version,
            type=info.type,
            resolved=info.tarball,
            integrity=info.integrity,
            size=info.size,
            license=info.license,
            dependencies=dependencies,
            capabilities=enabled,
            disabled_capabilities=disabled,
            framework=info.framework,
            optional=optional,
            peer=peer,
            deprecated=info.deprecated,
            advisories=self.advisories(package, info),
        )

    def nodes(self, installed: Iterable[tuple[str, PackageInfo, VersionInfo, dict[str, str]]],
              edges: Sequence[Edge]) -> dict[str, Node]:
        """The graph nodes for ``(key, package, version, dependencies met)`` copies, flagged as
        the request reaches them (``optional``: only through optional edges; ``peer``: only
        through peer edges). A copy nothing reaches is left out."""
        required, not_peer = _reach(edges, ("prod", "peer")), _reach(edges, ("prod", "optional"))
        reached = _reach(edges, ("prod", "peer", "optional"))
        return {key: self.node(key, package, info, dependencies=dependencies, optional=key not in required,
                               peer=key not in not_peer)
                for key, package, info, dependencies in installed if key in reached}

    @staticmethod
    def node_warnings(node: Node) -> list[dict[str, Any]]:
        """The warnings an installed node earns by itself: advisories and deprecation."""
        warnings: list[dict[str, Any]] = []
        if node.advisories:
            ids = [a.get("id") for a in node.advisories]
            listed = ", ".join(map(str, ids))
            warnings.append({"code": "vulnerable", "package": node.name, "version": node.version, "key": node.key,
                             "advisories": ids,
                             "message": f"{node.name}@{node.version} has known vulnerabilities: {listed}"})
        if node.deprecated:
            warnings.append({"code": "deprecated", "package": node.name, "version": node.version, "key": node.key,
                             "message": f"{node.name}@{node.version} is deprecated: {node.deprecated}"})
        if node.disabled_capabilities:
            warnings.append({"code": "capabilities_disabled", "package": node.name, "version": node.version,
                             "key": node.key, "capabilities": list(node.disabled_capabilities),
                             "message": f"{node.name}@{node.version}: optional capabilities disabled by policy: "
                                        + ", ".join(node.disabled_capabilities)})
        return warnings


def _reach(edges: Sequence[Edge], kinds: tuple[str, ...]) -> set[str]:
    """The node keys reachable from the request ("") through edges of ``kinds``."""
    out: dict[str, list[str]] = {}
    for edge in edges:
        if edge.kind in kinds:
            out.setdefault(edge.source, []).append(edge.target)
    seen: set[str] = set()
    stack = [""]
    while stack:
        for target in out.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen
