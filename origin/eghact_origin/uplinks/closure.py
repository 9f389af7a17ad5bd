"""Before a resolution: the packuments it may consider, pulled through the uplinks.

The resolver runs in worker processes over a snapshot of the store and cannot wait on the
network, so what it may read is pulled first: the roots, then, level by level, the names that
the versions satisfying the ranges asked for depend on (dependencies, optional and peer ones),
each level at most ``concurrency`` pulls at once. It over-approximates what the resolver reads
(every satisfying version, not the one it picks) and never under-approximates it, so the
resolution sees every package it can reach. Local packages are read too (a local plugin's
public dependencies are what is pulled) but never fetched: :meth:`UplinkService.ensure` asks
the gate. Bounded by ``max_names`` packages per request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from eghact_common import semver
from eghact_common.blocking import run_blocking
from eghact_common.errors import NotFound

_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies")

Ensure = Callable[[list[str]], Awaitable[dict[str, bool]]]
Read = Callable[[str], Awaitable[bytes]]


async def pull_closure(roots: Mapping[str, str], *, ensure: Ensure, read: Read, max_names: int = 5000) -> set[str]:
    """Every name reached from ``roots`` ({name: range}); ``ensure`` pulls a level of names,
    ``read`` gives a name's abbreviated packument (raising NotFound when absent)."""
    seen: set[str] = set()
    frontier: dict[str, set[str]] = {name: {spec} for name, spec in roots.items()}
    while frontier and len(seen) < max_names:
        names = sorted(frontier)[:max_names - len(seen)]
        present = await ensure(names)
        seen.update(names)
        reached: dict[str, set[str]] = {}
        for name in names:
            if not present.get(name):
                continue
            try:
                body = await read(name)
            except NotFound:
                continue
            for dep, spec in await run_blocking(_dependencies, body, frozenset(frontier[name])):
                if dep not in seen:
                    reached.setdefault(dep, set()).add(spec)
        frontier = reached
    return seen


def _dependencies(body: bytes, ranges: frozenset[str]) -> list[tuple[str, str]]:
    """(name, range) of what the versions satisfying any of ``ranges`` depend on."""
    doc: dict[str, Any] = json.loads(body)
    found: list[tuple[str, str]] = []
    for version, vdoc in (doc.get("versions") or {}).items():
        if not isinstance(vdoc, dict) or not any(_satisfies(version, r) for r in ranges):
            continue
        for field in _FIELDS:
            deps = vdoc.get(field)
            if isinstance(deps, dict):
                found.extend((d, s) for d, s in deps.items() if isinstance(d, str) and isinstance(s, str))
    return found


def _satisfies(version: str, spec: str) -> bool:
    # A tag ("latest"), an alias or a URL is not a range: every version may be the one meant.
    if semver.valid_range(spec) is None:
        return True
    return semver.satisfies(version, spec)
