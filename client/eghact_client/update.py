"""``update``: the resolve requests behind a plain update and a security update.

A **plain update** posts the project's request again (never the prebuilt resolution, which may
be the build the lockfile came from): every root moves to the newest version its range allows.
With a NAME, the request *prefers* (``prefer``, the resolver's keep-where-allowed list) the
locked versions of everything but NAME and what only NAME pulls in, so only those move.

A **security update** (the design's ``autoUpdate: SecurityLevel``) moves only what known
advisories affect, to the *lowest* versions that fix them: the request asks for
``security=strict`` (a version an advisory names is excluded) and prefers every locked version.
A locked version the policy allows is kept; an excluded one moves to the lowest allowed
version above it (``origin/eghact_origin/resolver/picker.py``). When no version inside the
requirements fixes an advisory, the resolver cannot resolve: that is refused as
:class:`NoFixAvailable`, naming the package, the advisory and the range, and nothing changes.

Such a lockfile records the request it answers (with ``prefer`` and ``strict``); it still
answers the project's requirements (``lockfile.mismatches`` reads a stricter ``security``
and ``prefer`` as no change), so a later install keeps it, and ``eghact resolve`` starts over.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from eghact_common.errors import Unresolvable

from .audit import Finding
from .capabilities import dependency_graph
from .errors import NoFixAvailable
from .lockfile import Lock
from .project import Project

__all__ = ["Change", "NoFixAvailable", "changes", "named_request", "no_fix", "security_request"]


@dataclass(frozen=True)
class Change:
    key: str
    name: str
    before: str | None      # None: new in the lockfile
    after: str | None       # None: gone from it

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "from": self.before, "to": self.after}


def _prefer(lock: Lock, leave_out: Collection[str] = ()) -> dict[str, list[str]]:
    prefer: dict[str, set[str]] = {}
    for package in lock.packages:
        if package.key not in leave_out:
            prefer.setdefault(package.name, set()).add(package.version)
    return {name: sorted(versions) for name, versions in sorted(prefer.items())}


def named_request(project: Project, lock: Lock | None, name: str) -> dict[str, Any]:
    """The request that moves ``name`` (and what only it pulls in) to the newest allowed
    versions and keeps every other locked version."""
    request = project.resolve_request()
    if lock is None:
        return request
    graph = dependency_graph(lock)
    own = _reach(graph, [f"node_modules/{name}"])
    others = _reach(graph, [f"node_modules/{r}" for r in project.dependencies if r != name])
    prefer = _prefer(lock, own - others)
    if prefer:
        request["prefer"] = prefer
    return request


def security_request(project: Project, lock: Lock) -> dict[str, Any]:
    """The request that fixes what advisories affect at the lowest fixing versions, keeping the rest."""
    request = project.resolve_request()
    request["strategy"] = {**request.get("strategy", {}), "security": "strict"}
    request["prefer"] = _prefer(lock)
    return request


def changes(before: Lock, after: Lock) -> list[Change]:
    """What moved between two lockfiles, by key (a key whose version is the same is no change)."""
    old = {p.key: p for p in before.packages}
    new = {p.key: p for p in after.packages}
    return [Change(key, (new.get(key) or old[key]).name, old[key].version if key in old else None,
                   new[key].version if key in new else None)
            for key in sorted(set(old) | set(new))
            if key not in old or key not in new or old[key].version != new[key].version]


def no_fix(error: Unresolvable, findings: list[Finding], project: Project, lock: Lock) -> Unresolvable:
    """The resolver's refusal of a security request, said as what it means: no fixed version of
    the package it names satisfies what requires it. Another refusal is passed on as it is."""
    conflict = error.detail.get("conflict") if isinstance(error.detail, dict) else None
    package = conflict.get("package") if isinstance(conflict, dict) else None
    hit = [f for f in findings if f.name == package]
    if not hit:
        return error
    required = _required(project, lock, hit[0].name, {k for f in hit for k in f.keys})
    advisories = sorted({(f.id, f.severity, f.vulnerable_versions) for f in hit})
    said = ", ".join(f"{i} ({severity}, vulnerable {rng})" for i, severity, rng in advisories)
    ranges = " and ".join(f"{spec!r} (required by {by})" for by, spec in required) or "its requirements"
    hint = next((f.fixed_in for f in hit if f.fixed_in), None)
    outside = f"; the first fixed version, {hint}, is outside it" if hint else "; no published version fixes it"
    return NoFixAvailable(
        f"no version of {package} fixes {said} within {ranges}{outside}: widen the range or remove it",
        detail={"package": package, "advisories": [{"id": i, "severity": s, "vulnerable_versions": r}
                                                   for i, s, r in advisories],
                "required": [{"by": by, "range": spec} for by, spec in required], "fixed_in": hint,
                "resolver": error.to_body()})


def _required(project: Project, lock: Lock, name: str, keys: set[str]) -> list[tuple[str, str]]:
    """Who requires ``name`` at ``keys``, and at which range: the project, or the packages whose
    lockfile entries depend on it."""
    found = [("the project", project.dependencies[name])] if f"node_modules/{name}" in keys \
        and name in project.dependencies else []
    graph = dependency_graph(lock)
    entries = lock.document["packages"]
    for parent, children in sorted(graph.items()):
        if keys & set(children):
            spec = (entries[parent].get("dependencies") or {}).get(name)
            if isinstance(spec, str):
                found.append((f"{entries[parent]['name']}@{entries[parent]['version']}", spec))
    return found


def _reach(graph: dict[str, list[str]], starts: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    stack = [s for s in starts if s in graph]
    while stack:
        key = stack.pop()
        if key not in seen:
            seen.add(key)
            stack.extend(graph.get(key, ()))
    return seen

