"""The values that pass between the seeding stages: a plan (:mod:`.universe` decides it without
bytes), the packages built from it (:mod:`.tarballs`), and the advisories; :mod:`.load` stores them.
They live apart so that planning and building, which each need the other's values, import neither.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedAdvisory:
    name: str
    vulnerable_versions: str
    severity: str
    title: str
    url: str
    cwe: tuple[str, ...]
    cvss: float


@dataclass(frozen=True, slots=True)
class PlannedVersion:
    version: str
    published: str
    deprecated: str | None
    license: str
    framework: str | None  # eghact.version; None for libraries
    required: tuple[str, ...]
    optional: tuple[str, ...]
    dependencies: tuple[tuple[str, str], ...]
    optional_dependencies: tuple[tuple[str, str], ...]
    peer_dependencies: tuple[tuple[str, str], ...]
    optional_peers: tuple[str, ...]
    size: int  # bytes of dist/index.js
    content_seed: int


@dataclass(frozen=True, slots=True)
class PlannedPackage:
    name: str
    kind: str  # "library" or one of PLUGIN_KINDS
    category: str
    description: str
    author: str
    keywords: tuple[str, ...]
    exports: tuple[tuple[str, str], ...]
    browsers: tuple[str, ...]
    node: str
    readme: bool
    weekly_downloads: int  # Zipf-like popularity
    versions: tuple[PlannedVersion, ...]  # publish order
    dist_tags: tuple[tuple[str, str], ...]

    def manifest(self, v: PlannedVersion) -> dict:
        """The package.json of version ``v`` (empty dependency maps omitted)."""
        m: dict = {"name": self.name, "version": v.version, "description": self.description,
                   "author": self.author, "license": v.license, "keywords": list(self.keywords),
                   "main": "dist/index.js"}
        for key, deps in (("dependencies", v.dependencies), ("optionalDependencies", v.optional_dependencies),
                          ("peerDependencies", v.peer_dependencies)):
            if deps:
                m[key] = dict(deps)
        if v.optional_peers:
            m["peerDependenciesMeta"] = {name: {"optional": True} for name in v.optional_peers}
        if self.kind != "library":
            m["eghact"] = {
                "version": v.framework, "type": self.kind,
                "capabilities": {"required": list(v.required), "optional": list(v.optional)},
                "exports": dict(self.exports),
                "metadata": {"category": self.category, "keywords": list(self.keywords),
                             "compatibility": {"browsers": list(self.browsers), "node": self.node}},
            }
        return m


@dataclass(frozen=True)
class UniversePlan:
    plugins: int
    seed: int
    packages: tuple[PlannedPackage, ...]  # creation order: dependencies point backwards, except in cycles
    cycles: tuple[tuple[str, ...], ...]  # deliberate rings; each name depends on the next, the last on the first
    advisories: tuple[SeedAdvisory, ...]

    @property
    def version_count(self) -> int:
        return sum(len(p.versions) for p in self.packages)


@dataclass(frozen=True)
class SeedVersion:
    manifest: dict  # the package.json, exactly as inside the tarball
    tarball: bytes  # the .tgz
    published: str  # ISO-8601 UTC, e.g. "2024-01-02T03:04:05.000Z"
    deprecated: str | None  # deprecation message


@dataclass(frozen=True)
class SeedPackage:
    name: str
    versions: tuple[SeedVersion, ...]  # in publish order
    dist_tags: dict[str, str]  # "latest" (highest non-prerelease) and, for some, "next"
