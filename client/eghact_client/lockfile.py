"""``eghact-lock.json`` as the client reads it: the resolver's format (DESIGN §4), kept as the
bytes the registry answered.

The resolver writes the lockfile (``origin/eghact_origin/resolver/lockfile.py``: fixed key
order, 2-space JSON and a newline); the client never re-serialises it, it stores the bytes it
was sent, so a lockfile is byte-identical wherever it was resolved and whoever installs it.
Reading checks what installing relies on, every problem at once: the version, each package's
``name``, ``version``, ``resolved`` and ``integrity`` (an SRI string), and each package key, which
becomes a path below the plugins folder (``node_modules/a/node_modules/b``: nothing else).

:func:`mismatches` is the frozen check (``npm ci``'s): the lockfile still answers the project's
requirements when it names the same roots, each root's locked version satisfies the project's
range, and the strategy, eager roots and framework are those the lockfile was resolved with
(a stricter ``security`` counts as the same: it is what ``update --security`` asks for; the
request's ``prefer`` is a preference, not a requirement, and is not compared).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eghact_common import semver
from eghact_common.bodies import parse_json
from eghact_common.errors import InvalidJson
from eghact_common.integrity import InvalidIntegrity, parse_sri
from eghact_common.npm_leniency import alias_target

from .errors import InvalidLockfile
from .project import Project

__all__ = ["Lock", "LockedPackage", "mismatches"]

LOCKFILE_VERSION = 1
_MAX_LOCKFILE_BYTES = 256 * 1024 * 1024
# a package's name as it may appear in a path: scoped or not, no dot segments (check_name's rules
# leave these out too, but a key is checked on its own: it is about to become a folder)
_SEGMENT = r"(?:@[a-z0-9~][a-z0-9._~-]*/)?[a-z0-9~][a-z0-9._~-]*"
_KEY = re.compile(rf"^node_modules/{_SEGMENT}(?:/node_modules/{_SEGMENT})*$", re.IGNORECASE)
# the resolver's defaults (resolver/request.py), filled in before strategies are compared
_STRATEGY_DEFAULTS = {"version": "highest", "duplicate": "plugins", "security": "audit"}
# laxest first: a lockfile resolved under a stricter setting still answers a laxer one
_SECURITY = ("permissive", "audit", "strict")


@dataclass(frozen=True)
class LockedPackage:
    key: str            # node_modules/a[/node_modules/b]: where it is placed
    name: str
    version: str
    resolved: str
    integrity: str

    @property
    def folder(self) -> str:
        """Its folder below the plugins folder: the key without the leading ``node_modules/``."""
        return self.key[len("node_modules/"):]


@dataclass(frozen=True)
class Lock:
    data: bytes
    document: dict[str, Any]
    packages: tuple[LockedPackage, ...]

    @property
    def hash(self) -> str:
        return str(self.document["hash"])

    @property
    def registry(self) -> str:
        return str(self.document["registry"]).rstrip("/")

    @classmethod
    def parse(cls, data: bytes, *, where: str | None = None) -> Lock:
        try:
            doc = parse_json(data, what="the lockfile")
        except InvalidJson as exc:
            raise InvalidLockfile([exc.message], where=where) from exc
        if not isinstance(doc, dict):
            raise InvalidLockfile([f"expected a JSON object, got {type(doc).__name__}"], where=where)
        problems: list[str] = []
        if doc.get("lockfileVersion") != LOCKFILE_VERSION or isinstance(doc.get("lockfileVersion"), bool):
            problems.append(f"lockfileVersion: expected {LOCKFILE_VERSION}, got {doc.get('lockfileVersion')!r}")
        for field, kind in (("hash", str), ("registry", str), ("request", dict), ("packages", dict),
                            ("loadPlan", dict)):
            if not isinstance(doc.get(field), kind):
                problems.append(f"{field}: missing or of the wrong type")
        packages = []
        listed = doc.get("packages")
        aliases = _aliases(listed if isinstance(listed, dict) else {})
        for key, entry in (listed if isinstance(listed, dict) else {}).items():
            package = _package(key, entry, problems, aliases)
            if package is not None:
                packages.append(package)
        if problems:
            raise InvalidLockfile(problems, where=where)
        return cls(data=data, document=doc, packages=tuple(packages))

    @classmethod
    def read(cls, path: Path) -> Lock | None:
        """The lockfile at ``path``, or None when there is none."""
        try:
            with path.open("rb") as handle:
                data = handle.read(_MAX_LOCKFILE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InvalidLockfile([f"cannot be read: {exc.strerror}"], where=str(path)) from exc
        if len(data) > _MAX_LOCKFILE_BYTES:
            raise InvalidLockfile([f"larger than {_MAX_LOCKFILE_BYTES} bytes"], where=str(path))
        return cls.parse(data, where=str(path))

    def path_of(self, package: LockedPackage) -> str:
        """The path of a package's tarball on any node: its ``resolved`` URL less the registry it
        was resolved at. Every node serves the same paths, so this is what fails over."""
        if package.resolved.startswith(self.registry + "/"):
            return package.resolved[len(self.registry):]
        # resolved elsewhere (a hand-edited or merged lockfile): the URL's own path
        after_scheme = package.resolved.split("://", 1)[-1]
        return "/" + after_scheme.split("/", 1)[1] if "/" in after_scheme else "/"


def _aliases(listed: dict[Any, Any]) -> set[tuple[str, str]]:
    """(folder, package) of every ``npm:`` alias some entry declares: such a folder holds the
    alias's target, as npm installs it (``string-width-cjs`` holding ``string-width``)."""
    found = set()
    for entry in listed.values():
        dependencies = entry.get("dependencies") if isinstance(entry, dict) else None
        for folder, spec in (dependencies if isinstance(dependencies, dict) else {}).items():
            target = alias_target(spec) if isinstance(spec, str) else None
            if target is not None:
                found.add((str(folder), target[0]))
    return found


def _package(key: Any, entry: Any, problems: list[str], aliases: set[tuple[str, str]]) -> LockedPackage | None:
    where = f"packages[{key!r}]"
    if not isinstance(key, str) or not _KEY.fullmatch(key) or any(p in (".", "..") for p in key.split("/")):
        problems.append(f"{where}: not a node_modules/NAME[/node_modules/NAME...] key")
        return None
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected an object")
        return None
    bad = [field for field in ("name", "version", "resolved", "integrity")
           if not isinstance(entry.get(field), str) or not entry[field]]
    problems.extend(f"{where}.{field}: missing or not a string" for field in bad)
    if bad:
        return None
    fields: dict[str, str] = {field: entry[field] for field in ("name", "version", "resolved", "integrity")}
    folder = key.rsplit("node_modules/", 1)[-1]
    if folder != fields["name"] and (folder, fields["name"]) not in aliases:
        problems.append(f"{where}: the key does not end with its name {fields['name']!r} (nor with an npm: alias "
                        f"of it)")
    if not fields["resolved"].startswith(("http://", "https://")):
        problems.append(f"{where}.resolved: not an http(s) URL")
    try:
        parse_sri(fields["integrity"])
    except InvalidIntegrity as exc:
        problems.append(f"{where}.integrity: {exc}")
    return LockedPackage(key, fields["name"], fields["version"], fields["resolved"], fields["integrity"])


def mismatches(lock: Lock, project: Project) -> list[str]:
    """Why ``lock`` no longer answers ``project``'s requirements ([] when it does)."""
    request = lock.document["request"]
    locked_specs = request.get("dependencies") if isinstance(request.get("dependencies"), dict) else {}
    problems = [f"{name} is required but not in the lockfile" for name in sorted(set(project.dependencies)
                                                                                  - set(locked_specs))]
    problems += [f"{name} is in the lockfile but no longer required" for name in sorted(set(locked_specs)
                                                                                       - set(project.dependencies))]
    roots = {p.key: p for p in lock.packages}
    for name, spec in sorted(project.dependencies.items()):
        if name not in locked_specs:
            continue
        root = roots.get(f"node_modules/{name}")
        if root is None:
            problems.append(f"{name} has no top-level entry in the lockfile")
        elif spec != locked_specs[name] and not semver.satisfies(root.version, spec, loose=True):
            problems.append(f"{name}: the locked {root.version} does not satisfy {spec!r}")
    if sorted(set(project.eager)) != sorted(request.get("eager") or []):
        problems.append("the eager roots differ from the lockfile's")
    strategy = {**_STRATEGY_DEFAULTS, **project.strategy}
    if strategy.get("duplicate") == "dedupe":
        strategy["duplicate"] = "dedupe-all"   # read and hashed so by the resolver
    locked = {**_STRATEGY_DEFAULTS, **(request.get("strategy") or {})}
    rank = {level: i for i, level in enumerate(_SECURITY)}
    if rank.get(locked["security"], -1) > rank.get(strategy["security"], len(_SECURITY)):
        # a security update's strict lockfile installs only what the laxer setting would allow
        locked["security"] = strategy["security"]
    if strategy != locked:
        problems.append("the strategy differs from the lockfile's")
    framework = semver.parse(project.framework, loose=True) if project.framework else None
    if (framework.version if framework else None) != request.get("framework"):
        problems.append("the framework version differs from the lockfile's")
    if _policy(project.policy) != _policy(request.get("policy")):
        problems.append("the policy differs from the lockfile's")
    return problems


def _policy(policy: Any) -> Any:
    """A policy with the resolver's defaults filled and its lists as sets: the resolver's
    canonical form for policies written in canonical spelling (another spelling of the same
    capability or licence reads as a change, which only costs a resolution)."""
    policy = policy if isinstance(policy, dict) else {}
    caps = policy.get("capabilities") if isinstance(policy.get("capabilities"), dict) else {}
    licences = policy.get("licenses")
    allow = caps.get("allow")
    return (None if allow is None else sorted(set(map(str, allow))), sorted(set(map(str, caps.get("deny") or []))),
            None if not isinstance(licences, dict) else sorted(set(map(str, licences.get("allow") or []))),
            policy.get("peer", "warn"))
