"""What a bundle carries: everything, or the packages a filter, lockfiles, the popular list
and dependency closures select.

``--filter`` alone is a predicate on names (fnmatch, case-sensitive like npm names), so an
incremental bundle needs nothing but the changed names to apply it. ``--lockfile``, ``--top``
and ``--closure`` select an explicit set of names computed against the origin's current
state; the index records that set (``selection.names``: what the mirror holds once the
bundle is applied), so that the next bundle exported ``--after`` it knows which packages are
new to the mirror and must travel whole.

The closure is computed on versions, as the issue asks: from every root version, every
version of a dependency that satisfies the range (``dependencies``, ``optionalDependencies``,
``peerDependencies``; npm's ``npm:name@range`` aliases followed; dist-tag specs resolved;
git/file/URL specs skipped with a warning), transitively. A local package is then shipped
whole (all versions and tarballs): the origin serves and the mirror stores packuments byte for
byte, and ``mirror-apply`` wants a tarball for every version a stored packument lists. A
package the origin pulled from an uplink travels with the versions the walk visited
(:attr:`Closure.versions`; ``collect``): npm's packages list hundreds of versions, a closure
needs a few.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eghact_common import semver

from . import inputs
from .client import OriginClient, load_json
from .errors import MirrorError

ALL = "*all*"  # a spec meaning "every version", for roots
_DEP_FIELDS = ("dependencies", "optionalDependencies", "peerDependencies")
_MAX_WARNINGS = 200


@dataclass(frozen=True)
class SelectionSpec:
    filters: tuple[str, ...] = ()
    closure: bool = False
    lockfiles: tuple[Path, ...] = ()
    top: int | None = None

    @property
    def everything(self) -> bool:
        return not (self.filters or self.lockfiles or self.top)

    @property
    def explicit(self) -> bool:
        """Whether the selection is a computed set of names rather than a predicate."""
        return bool(self.lockfiles or self.top or (self.closure and self.filters))

    def matches(self, name: str) -> bool:
        return self.everything or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.filters)

    def describe(self) -> dict[str, Any]:
        return {"filters": list(self.filters), "closure": self.closure, "top": self.top,
                "lockfiles": [{"name": p.name, "sha512": hashlib.sha512(
                    inputs.read_capped(p, inputs.MAX_BYTES, what="the lockfile")).hexdigest()}
                              for p in self.lockfiles]}


def lockfile_roots(path: Path) -> list[tuple[str, str]]:
    """(name, version) of every package an ``eghact-lock.json`` (or an npm ``package-lock.json``) pins."""
    _, body = inputs.read_json(path, "the lockfile")
    try:
        packages = body["packages"]
        if not isinstance(packages, dict):
            raise TypeError("packages is not an object")
    except (KeyError, TypeError) as exc:
        raise MirrorError("bad_input", f"{path} is not a lockfile with a packages object: {exc}") from exc
    roots = []
    for key, entry in packages.items():
        if not isinstance(entry, dict) or not key or entry.get("link"):
            continue  # npm's root entry "" and workspace links are not registry packages
        name = entry.get("name") or key.rsplit("node_modules/", 1)[-1]
        version = entry.get("version")
        if isinstance(name, str) and isinstance(version, str):
            roots.append((name, version))
    return roots


@dataclass
class _Package:
    versions: dict[str, tuple[tuple[str, str], ...]]  # version -> ((dep name, spec), ...)
    tags: dict[str, str]
    skipped: tuple[str, ...] = ()


@dataclass
class Closure:
    """The closure walk's memory: compact dependency lists, never whole packuments."""

    client: OriginClient
    concurrency: int = 16
    packages: dict[str, _Package | None] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # What the walk visited: each name's versions, and the names asked for whole (ALL).
    versions: dict[str, set[str]] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)

    def _warn(self, text: str) -> None:
        if len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(text)

    async def _load(self, names: Iterable[str]) -> None:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(name: str) -> None:
            async with gate:
                body, _ = await self.client.packument(name, abbreviated=True)
            self.packages[name] = None if body is None else _parse(body)

        await asyncio.gather(*(one(n) for n in set(names) if n not in self.packages))

    async def walk(self, roots: dict[str, set[str]]) -> set[str]:
        """Names of every package reached from ``roots`` (name -> specs, ALL or exact versions)."""
        frontier = {name: set(specs) for name, specs in roots.items()}
        expanded: set[tuple[str, str]] = set()
        visited: set[tuple[str, str]] = set()
        reached: set[str] = set()
        while frontier:
            await self._load(frontier)
            following: dict[str, set[str]] = defaultdict(set)
            for name, specs in frontier.items():
                package = self.packages[name]
                if package is None:
                    self._warn(f"{name} is not at the origin (or unpublished): it cannot be mirrored")
                    continue
                if name not in reached:
                    reached.add(name)
                    for skipped in package.skipped:
                        self._warn(f"{name} depends on {skipped}, which is not a registry package: not mirrored")
                for spec in specs:
                    if (name, spec) in expanded:
                        continue
                    expanded.add((name, spec))
                    if spec == ALL:
                        self.whole.add(name)
                    for version in self._satisfying(name, package, spec):
                        if (name, version) in visited:
                            continue
                        visited.add((name, version))
                        self.versions.setdefault(name, set()).add(version)
                        for dep, dep_spec in package.versions[version]:
                            if (dep, dep_spec) not in expanded:
                                following[dep].add(dep_spec)
            frontier = dict(following)
        return reached

    def needed(self, name: str, pinned: Iterable[str] = ()) -> frozenset[str] | None:
        """The versions of ``name`` the selection needs: those the walk visited and ``pinned``
        (a lockfile's, without --closure); None when it was asked for whole (every version)."""
        pinned = set(pinned)
        if name in self.whole or ALL in pinned:
            return None
        return frozenset(self.versions.get(name, set()) | pinned)

    def _satisfying(self, name: str, package: _Package, spec: str) -> list[str]:
        if spec == ALL:
            return list(package.versions)
        if spec in package.versions:
            return [spec]
        if spec in package.tags:
            return [package.tags[spec]] if package.tags[spec] in package.versions else []
        try:
            wanted = semver.Range(spec or "*")
        except semver.InvalidRange:
            self._warn(f"{name}@{spec!r} is neither a version, a dist-tag nor a semver range: skipped")
            return []
        found = [v for v in package.versions if wanted.test(v)]
        if not found:
            self._warn(f"no version of {name} satisfies {spec!r}: installs needing it will fail offline")
        return found


def _parse(body: bytes) -> _Package:
    doc = load_json(body, "an abbreviated packument")
    versions = {}
    skipped: dict[str, None] = {}
    for version, manifest in (doc.get("versions") or {}).items():
        deps: list[tuple[str, str]] = []
        for dep_field in _DEP_FIELDS:
            for dep, spec in (manifest.get(dep_field) or {}).items():
                target = _registry_spec(dep, spec)
                if target is None:
                    skipped[f"{dep}@{spec}"] = None
                else:
                    deps.append(target)
        versions[version] = tuple(dict.fromkeys(deps))
    tags = {k: v for k, v in (doc.get("dist-tags") or {}).items() if isinstance(v, str)}
    return _Package(versions, tags, tuple(skipped))


def _registry_spec(name: str, spec: Any) -> tuple[str, str] | None:
    """(package, range) a dependency spec asks the registry for, or None for git/file/URL specs."""
    if not isinstance(spec, str):
        return None
    if spec.startswith("npm:"):
        aliased = spec[4:]
        at = aliased.rfind("@")
        return (aliased[:at], aliased[at + 1:]) if at > 0 else (aliased, "*")
    if ":" in spec or "/" in spec:
        return None
    return name, spec.strip()
