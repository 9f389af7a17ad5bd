"""What the solvers know about packages, and the seam through which they learn it.

The solvers ask one question, ``Provider.package(name)``, and get an immutable
:class:`PackageInfo`: every version's :class:`VersionInfo`, the dist-tags and the advisories.
A provider parses each packument once and keeps the result, so that resolutions running one
after another share the parsing and the range evaluations cached on each ``PackageInfo``
(:meth:`PackageInfo.mask`); the origin invalidates an entry when the changes feed says the
package changed.

``package_info_from_packument`` reads the origin's *abbreviated* packument, the document
npm itself installs from; ``MemoryProvider`` serves a dict of them to tests and benchmarks
and counts what it was asked for (laziness is a tested property: unreachable packages are
never loaded).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from eghact_common import semver
from eghact_common.errors import NotFound
from eghact_common.npm_leniency import alias_target, js_truthy

__all__ = [
    "EdgeType",
    "MemoryProvider",
    "PackageInfo",
    "Provider",
    "SpecKind",
    "VersionInfo",
    "package_info_from_packument",
    "registry_spec",
    "spec_kind",
]

#: npm's four kinds of declared edge (``peerOptional``: a peer that peerDependenciesMeta marks optional)
EdgeType = Literal["prod", "optional", "peer", "peerOptional"]
SpecKind = Literal["range", "version", "tag", "unsupported"]

_DIST_TAG = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")


@functools.lru_cache(maxsize=16384)
def spec_kind(spec: str) -> SpecKind:
    """How npm-package-arg reads a registry dependency spec: an exact version, a range, a
    dist-tag, or something a registry resolver cannot follow (alias, git, URL, path)."""
    if semver.valid(spec.strip(), loose=True) is not None:
        return "version"
    if semver.valid_range(spec, loose=True) is not None:
        return "range"
    if _DIST_TAG.fullmatch(spec):
        return "tag"
    return "unsupported"


def registry_spec(name: str, spec: str) -> tuple[str, str]:
    """The package and the spec a dependency ``name: spec`` asks the registry for: the alias's
    target for ``npm:`` aliases (installed in the folder ``name``, as npm does), else itself."""
    return alias_target(spec) or (name, spec)


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One published version, as much of its manifest as resolution and the lockfile need."""

    name: str
    version: str
    dependencies: Mapping[str, str] = field(default_factory=dict)
    optional_dependencies: Mapping[str, str] = field(default_factory=dict)
    peer_dependencies: Mapping[str, str] = field(default_factory=dict)
    peer_optional: frozenset[str] = frozenset()
    deprecated: str | None = None
    type: str = "library"
    #: the manifest has an ``eghact`` block: the runtime activates one copy of it per app
    plugin: bool = False
    framework: str | None = None
    capabilities_required: tuple[str, ...] = ()
    capabilities_optional: tuple[str, ...] = ()
    license: str | None = None
    tarball: str = ""
    integrity: str = ""
    size: int = 0
    #: every declared edge as (name, type, spec), in the order and with the precedence npm's
    #: arborist gives them: peers, optional peers, dependencies, optionalDependencies; a later
    #: map's entry replaces an earlier one of the same name and moves to the end (the order in
    #: which npm fetches a node's missing dependencies, which shapes its layout)
    edges: tuple[tuple[str, EdgeType, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        declared: dict[str, tuple[EdgeType, str]] = {}
        peers = [(n, s) for n, s in self.peer_dependencies.items() if n not in self.peer_optional]
        optional_peers = [(n, s) for n, s in self.peer_dependencies.items() if n in self.peer_optional]
        for kind, entries in (("peer", peers), ("peerOptional", optional_peers),
                              ("prod", self.dependencies.items()), ("optional", self.optional_dependencies.items())):
            for name, spec in entries:
                declared.pop(name, None)
                declared[name] = (kind, spec)  # type: ignore[assignment]
        object.__setattr__(self, "edges", tuple((name, kind, spec) for name, (kind, spec) in declared.items()))


@dataclass(frozen=True, eq=False)
class PackageInfo:
    """A package: its versions (``ordered`` ascending by precedence, ``index`` into it by
    version text), dist-tags and advisories ``{id, vulnerable_versions, severity, title, url}``.

    Version sets are ``int`` bit masks over ``ordered``: bit ``i`` is ``ordered[i]``.
    """

    name: str
    versions: Mapping[str, VersionInfo]
    dist_tags: Mapping[str, str] = field(default_factory=dict)
    advisories: tuple[dict[str, Any], ...] = ()
    sorted_versions: semver.SortedVersions = field(init=False, repr=False)
    ordered: tuple[VersionInfo, ...] = field(init=False, repr=False)
    index: Mapping[str, int] = field(init=False, repr=False)
    _masks: dict[str, int] = field(init=False, repr=False, default_factory=dict)
    _edge_masks: dict[tuple[str, str, str], int] | None = field(init=False, repr=False, default=None)
    _memo: dict[Hashable, Any] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        by_canonical: dict[str, VersionInfo] = {}
        for text, info in self.versions.items():
            parsed = semver.parse(text, loose=True)
            if parsed is not None:
                by_canonical.setdefault(parsed.version, info)
        ordered_versions = semver.sorted_versions(by_canonical, loose=True)
        object.__setattr__(self, "sorted_versions", ordered_versions)
        object.__setattr__(self, "ordered", tuple(by_canonical[v.version] for v in ordered_versions))
        object.__setattr__(self, "index", {info.version: i for i, info in enumerate(self.ordered)})

    @functools.cached_property
    def plugin(self) -> bool:
        """Whether any version is a plugin: ``duplicate=plugins`` holds such a name to one
        version, whichever version is installed (a plain release of a plugin's name would
        still be loaded beside the plugin's copy)."""
        return any(info.plugin for info in self.ordered)

    @property
    def all_mask(self) -> int:
        return (1 << len(self.ordered)) - 1

    def mask(self, spec: str) -> int:
        """The versions a dependency ``spec`` admits, as npm's installer reads it (cached).

        A range is tested as npm tests it (``loose``, prereleases only when the range names
        one); ``*`` and ``""`` also admit the ``latest`` tag, which npm's picker takes for them
        even when it is a prerelease (unless it is deprecated). An exact version admits that
        version, a dist-tag the version it points to. Unsupported specs admit nothing.
        """
        cached = self._masks.get(spec)
        if cached is not None:
            return cached
        kind = spec_kind(spec)
        bits = 0
        if kind == "tag":
            target = self.index.get(self.dist_tags.get(spec, ""))
            bits = 0 if target is None else 1 << target
        elif kind != "unsupported":
            wanted = semver.Range(spec, loose=True)
            for i, version in enumerate(self.sorted_versions):
                if wanted.test(version):
                    bits |= 1 << i
            latest = self.index.get(self.dist_tags.get("latest", ""))
            if latest is not None and spec.strip() in ("*", "") and not self.ordered[latest].deprecated:
                bits |= 1 << latest
        self._masks[spec] = bits
        return bits

    def edge_mask(self, name: str, kind: str, spec: str) -> int:
        """The versions that declare the edge ``(name, kind, spec)`` (indexed on first use)."""
        if self._edge_masks is None:
            index: dict[tuple[str, str, str], int] = {}
            for i, info in enumerate(self.ordered):
                for edge in info.edges:
                    index[edge] = index.get(edge, 0) | 1 << i
            object.__setattr__(self, "_edge_masks", index)
        assert self._edge_masks is not None
        return self._edge_masks.get((name, kind, spec), 0)

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, remembered under ``key`` for as long as this package is cached: how
        per-request views (a policy's verdicts, a strategy's preference order) are shared by
        the requests that agree on them."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def version_of(self, index: int) -> semver.Version:
        return self.sorted_versions[index]


class Provider(Protocol):
    """Where the solvers get packages from. Resolution runs in a worker process, so this is
    synchronous; a provider may block on I/O."""

    def package(self, name: str) -> PackageInfo:
        """The package called ``name``. Raises :class:`~eghact_common.errors.NotFound` when the
        registry has no such package. Cost: one packument read and parse on a miss, a dict
        lookup afterwards (providers cache parsed packages). Called at most once per name per
        resolution: the solvers remember the answer, including ``NotFound``."""
        ...


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _string_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list | tuple) else ()


def _version_info(name: str, version: str, doc: Mapping[str, Any]) -> VersionInfo:
    eghact = _mapping(doc.get("eghact"))
    capabilities = _mapping(eghact.get("capabilities"))
    meta = _mapping(doc.get("peerDependenciesMeta"))
    dist = _mapping(doc.get("dist"))
    deprecated = doc.get("deprecated")
    size = dist.get("unpackedSize", dist.get("size", 0))
    licence = doc.get("license")
    return VersionInfo(
        name=name,
        version=version,
        dependencies=_string_map(doc.get("dependencies")),
        optional_dependencies=_string_map(doc.get("optionalDependencies")),
        peer_dependencies=_string_map(doc.get("peerDependencies")),
        # arborist: `peerDependenciesMeta[name]?.optional`, truthy (and only names that are peers count)
        peer_optional=frozenset(k for k, v in meta.items() if isinstance(v, Mapping) and js_truthy(v.get("optional"))),
        # npm treats an empty deprecation message as "not deprecated"
        deprecated=deprecated if isinstance(deprecated, str) and deprecated else None,
        type=str(eghact.get("type", "library")) if eghact else "library",  # no eghact block: a library
        plugin=bool(eghact),
        framework=eghact["version"] if isinstance(eghact.get("version"), str) else None,
        capabilities_required=_strings(capabilities.get("required")),
        capabilities_optional=_strings(capabilities.get("optional")),
        license=licence if isinstance(licence, str) else None,
        tarball=str(dist.get("tarball", "")),
        integrity=str(dist.get("integrity", "")),
        size=size if isinstance(size, int) and size >= 0 else 0,
    )


def package_info_from_packument(doc: Mapping[str, Any], advisories: list[dict[str, Any]]) -> PackageInfo:
    """A :class:`PackageInfo` from an abbreviated packument (``application/vnd.npm.install-v1+json``)
    and the advisories that name the package. Malformed parts are skipped, never fatal: a
    packument is what the registry already accepted."""
    name = str(doc.get("name", ""))
    raw_versions = _mapping(doc.get("versions"))
    versions = {
        version: _version_info(name, version, body)
        for version, body in raw_versions.items()
        if isinstance(body, Mapping) and semver.valid(version, loose=True) is not None
    }
    tags = _string_map(doc.get("dist-tags"))
    kept = tuple(
        {key: a.get(key) for key in ("id", "vulnerable_versions", "severity", "title", "url")}
        for a in advisories
        if isinstance(a, Mapping) and isinstance(a.get("vulnerable_versions"), str)
    )
    return PackageInfo(name, versions, tags, kept)


def _filled(name: str, body: Mapping[str, Any], version: str) -> dict[str, Any]:
    doc = {"name": name, "version": version, **body}
    dist = dict(body.get("dist") or {})
    dist.setdefault("tarball", f"https://registry.invalid/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz")
    dist.setdefault("integrity", f"sha512-{name}@{version}")
    doc["dist"] = dist
    return doc


class MemoryProvider:
    """Packages from a dict ``{name: packument}``, for tests and benchmarks.

    A packument here may be abbreviated further: ``name``, ``version`` and ``dist`` are filled
    in when missing, ``dist-tags.latest`` defaults to the highest release, and an
    ``"advisories"`` list may sit beside ``versions``. Parsed packages are cached;
    ``loads[name]`` counts the calls to :meth:`package`.
    """

    def __init__(self, universe: Mapping[str, Mapping[str, Any]]):
        self._universe = universe
        self._cache: dict[str, PackageInfo] = {}
        self.loads: Counter[str] = Counter()

    def package(self, name: str) -> PackageInfo:
        self.loads[name] += 1
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        raw = self._universe.get(name)
        if raw is None:
            raise NotFound(f"package {name!r} not found")
        versions = {v: _filled(name, body or {}, v) for v, body in (raw.get("versions") or {}).items()}
        tags = dict(raw.get("dist-tags") or {})
        if "latest" not in tags:
            releases = [p for p in map(semver.parse, versions) if p is not None and not p.prerelease]
            if releases:
                tags["latest"] = max(releases).raw
        doc = {"name": name, "dist-tags": tags, "versions": versions}
        info = package_info_from_packument(doc, list(raw.get("advisories") or ()))
        self._cache[name] = info
        return info
