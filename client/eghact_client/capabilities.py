"""Capabilities on the client: who denies what, which chain pulled a plugin in, and the check
made before anything is placed or activated.

Denials come from three places, each a capability or a family pattern
(``eghact_common.capabilities``; a bare namespace such as ``network`` means ``network:*``):

- the project's ``policy.capabilities`` (``deny``, and ``allow``: what no allow pattern covers
  is denied); the resolver applies it too, by excluding versions, so this mostly guards a
  lockfile installed as it is;
- the project's ``grants`` (``{"ROOT": {"network": false, "dom:read": true}}``), written by
  ``install(ROOT, capabilities=...)``: a ``false`` applies to ROOT and everything it pulls in;
- ``install(capabilities=...)`` without a name: this run only, every package.

The lockfile lists each package's enabled capabilities (``capabilities``: required plus the
optional ones the resolver's policy left on) and ``disabledCapabilities``; it does not say which
are required. Only for a package with an enabled capability that is denied is its version
document asked (``GET /NAME/VERSION``, one request): a denied *required* capability refuses the
operation (:class:`CapabilityDenied`, naming the plugin, the capability, who denied it and the
chain root -> ... -> plugin); a denied *optional* one is recorded as disabled in the state.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from eghact_common.capabilities import InvalidCapability, capability_matches, capability_overlaps, parse_capability

from .errors import CapabilityDenied, from_answer
from .lockfile import Lock
from .project import Project
from .sources import Sources

__all__ = ["CapabilityDenied", "Rules", "chains", "check", "dependency_graph", "grant_problems", "pattern", "why"]

_MAX_CHAINS = 20
_VERSION_DOC_BYTES = 8 * 1024 * 1024


def pattern(text: str) -> str:
    """A grant's key as a policy pattern: a bare namespace (``network``) is its family."""
    return f"{text}:*" if text and ":" not in text and text != "*" else text


def grant_problems(grants: Mapping[str, Any]) -> list[str]:
    """Why a ``{capability or family: bool}`` map is not one (every problem)."""
    problems = []
    for key, value in grants.items():
        if not isinstance(value, bool):
            problems.append(f"{key!r}: expected true (grant) or false (deny)")
        try:
            capability_overlaps("dom:read", pattern(str(key)))
        except InvalidCapability as exc:
            problems.append(f"{key!r}: {exc}")
    return problems


class Rules:
    """The denials that apply to one project (and one run's ``capabilities``)."""

    def __init__(self, project: Project, run: Mapping[str, bool] | None = None):
        caps = (project.policy or {}).get("capabilities") if isinstance(project.policy, dict) else None
        caps = caps if isinstance(caps, dict) else {}
        self.deny = [str(p) for p in caps.get("deny") or []]
        allow = caps.get("allow")
        self.allow = None if allow is None else [str(p) for p in allow]
        self.grants = {root: {pattern(k): v for k, v in g.items()} for root, g in project.grants.items()}
        self.run = {pattern(k): v for k, v in (run or {}).items()}

    def denied_by(self, capability: str, roots: Iterable[str]) -> str | None:
        """Who denies ``capability`` for a package the ``roots`` pull in, or None."""
        if any(capability_overlaps(capability, p) for p in self.deny):
            return "the project's policy"
        if self.allow is not None and not any(capability_matches(capability, p) for p in self.allow):
            return "the project's policy (not in its allow-list)"
        if any(not ok and capability_overlaps(capability, p) for p, ok in self.run.items()):
            return "the caller"
        for root in sorted(roots):
            if any(not ok and capability_overlaps(capability, p) for p, ok in self.grants.get(root, {}).items()):
                return f"the grants of {root}"
        return None


def dependency_graph(lock: Lock) -> dict[str, list[str]]:
    """key -> the keys of its dependencies, found as npm finds them (nearest node_modules up)."""
    entries = lock.document["packages"]
    children: dict[str, list[str]] = {}
    for key, entry in entries.items():
        found = []
        for dep in sorted((entry.get("dependencies") or {}) if isinstance(entry, dict) else {}):
            base = key
            while True:
                candidate = f"{base}/node_modules/{dep}"
                if candidate in entries:
                    found.append(candidate)
                    break
                if "/node_modules/" not in base:
                    if f"node_modules/{dep}" in entries:
                        found.append(f"node_modules/{dep}")
                    break
                base = base.rsplit("/node_modules/", 1)[0]
        children[key] = found
    return children


def chains(lock: Lock, roots: Iterable[str], target: str, *, limit: int = _MAX_CHAINS) -> list[list[str]]:
    """The chains of keys from the project's roots (names) to ``target``, shortest first, at
    most ``limit`` (a plugin many roots pull in has many)."""
    graph = dependency_graph(lock)
    root_keys = [f"node_modules/{r}" for r in sorted(roots) if f"node_modules/{r}" in graph]
    found: list[list[str]] = []
    queue: deque[list[str]] = deque([k] for k in root_keys)
    steps = 0
    while queue and len(found) < limit and steps < 100_000:
        steps += 1
        path = queue.popleft()
        if path[-1] == target:
            found.append(path)
            continue
        queue.extend([*path, child] for child in graph.get(path[-1], ()) if child not in path)
    return found


def _label(lock: Lock, key: str) -> str:
    entry = lock.document["packages"].get(key, {})
    return f"{entry.get('name')}@{entry.get('version')}"


async def check(lock: Lock, project: Project, keys: Iterable[str], rules: Rules,
                sources: Sources) -> dict[str, list[str]]:
    """Refuse (:class:`CapabilityDenied`) when a package of ``keys`` requires a denied
    capability; else the optional capabilities denied, per key (only keys with some)."""
    entries = lock.document["packages"]
    disabled: dict[str, list[str]] = {}
    suspects: list[tuple[str, list[tuple[str, str, list[str]]]]] = []
    for key in keys:
        entry = entries.get(key, {})
        enabled = [str(c) for c in entry.get("capabilities") or []]
        if not enabled or not (rules.deny or rules.allow is not None or rules.run or rules.grants):
            continue
        paths = chains(lock, project.dependencies, key)
        roots = {p[0].removeprefix("node_modules/") for p in paths}
        denials = [(c, who, paths[0] if paths else [key]) for c in enabled
                   if (who := rules.denied_by(c, roots)) is not None]
        if denials:
            suspects.append((key, denials))
    documents = await asyncio.gather(*(_required(lock, key, sources) for key, _ in suspects))
    for (key, denials), required in zip(suspects, documents, strict=True):
        for capability, who, path in denials:
            if capability in required:
                name = entries[key].get("name")
                chain = [_label(lock, k) for k in path]
                raise CapabilityDenied(
                    f"{name} requires capability {capability}, which {who} denies; it is pulled in by "
                    + " -> ".join(chain), detail={"plugin": name, "version": entries[key].get("version"),
                                                  "capability": capability, "denied_by": who, "chain": chain})
            disabled.setdefault(key, []).append(capability)
    return disabled


async def _required(lock: Lock, key: str, sources: Sources) -> set[str]:
    """The capabilities the package at ``key`` requires, from its version document."""
    entry = lock.document["packages"][key]
    path = f"/{quote(entry['name'], safe='@')}/{quote(entry['version'])}"
    _, response = await sources.request("GET", path, max_bytes=_VERSION_DOC_BYTES)
    if response.status != 200:
        raise from_answer(response.status, response.body, what=f"{entry['name']}@{entry['version']}")
    try:
        block = json.loads(response.body).get("eghact") or {}
        required = block.get("capabilities", {}).get("required") or []
        return {str(parse_capability(c)) for c in required}
    except (ValueError, AttributeError, InvalidCapability):
        # unreadable: every enabled capability counts as required (refusing is the safe side)
        return {str(c) for c in entry.get("capabilities") or []}


def why(lock: Lock, project: Project, state_plugins: Mapping[str, Mapping[str, Any]], name: str,
        rules: Rules) -> list[dict[str, Any]]:
    """Every copy of ``name`` in the lockfile: its chains from the roots and, per capability,
    ``granted``, ``denied`` (by whom: only after a policy change since the install) or ``disabled``."""
    copies = []
    for key, entry in sorted(lock.document["packages"].items()):
        if entry.get("name") != name:
            continue
        paths = chains(lock, project.dependencies, key)
        roots = {p[0].removeprefix("node_modules/") for p in paths}
        off = set(entry.get("disabledCapabilities") or []) | set(state_plugins.get(key, {}).get(
            "disabledCapabilities") or [])
        grants: dict[str, Any] = {c: {"grant": "disabled"} for c in sorted(off)}
        for capability in entry.get("capabilities") or []:
            if capability in off:
                continue
            who = rules.denied_by(capability, roots)
            grants[capability] = {"grant": "denied", "by": who} if who else {"grant": "granted"}
        copies.append({"key": key, "name": name, "version": entry.get("version"),
                       "state": state_plugins.get(key, {}).get("state"),
                       "chains": [[_label(lock, k) for k in p] for p in paths], "capabilities": grants})
    return copies
