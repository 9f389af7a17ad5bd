"""A project: its requirements and registry configuration, read from ``eghact.json`` or from
``package.json``'s ``eghact`` section (``eghact.json`` wins when both exist)::

    {"dependencies": {"@acme/chart-plugin": "^2.0.0"},      # name -> range, version or dist-tag
     "eager": ["logger"],                                     # roots loaded at start
     "strategy": {"version": "highest", "duplicate": "plugins", "security": "audit"},
     "policy": {"capabilities": {"allow": null, "deny": ["network"]}, "licenses": null, "peer": "warn"},
     "framework": "2.1.0",
     "grants": {"@acme/chart-plugin": {"network": false}},   # per root: capability or family -> bool
     "registry": {"primary": URL, "mirrors": [URL], "edges": [URL] | "auto", "timeout": 30},
     "pluginsDir": "eghact_modules"}

Everything but ``dependencies`` may be left out. ``strategy``, ``policy`` and ``framework`` are
passed to the resolver as written (it validates them and answers 400 with every problem);
what the client itself needs (names, specs, URLs, the folder) is checked here, every problem at
once, as :class:`~eghact_client.errors.InvalidProject`. ``$EGHACT_REGISTRY`` stands in for a
missing ``registry.primary``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eghact_common import semver
from eghact_common.bodies import parse_json
from eghact_common.durable import write_atomic
from eghact_common.errors import InvalidJson
from eghact_common.names import check_name

from .errors import InvalidProject

__all__ = ["LOCKFILE", "PROJECT_FILE", "Project", "RegistryConfig"]

PROJECT_FILE = "eghact.json"
PACKAGE_JSON = "package.json"
LOCKFILE = "eghact-lock.json"
DEFAULT_PLUGINS_DIR = "eghact_modules"
DEFAULT_TIMEOUT = 30.0
# what npm-package-arg reads as a dist-tag: anything a range and a version are not, URL-safe
_DIST_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MAX_PROJECT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class RegistryConfig:
    """Where packages come from: edges (listed, or ``auto``: the primary's ``/-/v1/edges``),
    then the primary (an origin), then the mirrors; ``timeout`` per request, in seconds."""

    primary: str | None = None
    mirrors: tuple[str, ...] = ()
    edges: tuple[str, ...] | None = None   # None: discovered from the primary
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Project:
    root: Path
    dependencies: dict[str, str] = field(default_factory=dict)
    eager: tuple[str, ...] = ()
    strategy: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] | None = None
    framework: str | None = None
    registry: RegistryConfig = RegistryConfig()
    plugins_dir: str = DEFAULT_PLUGINS_DIR
    #: root -> {capability or family: granted}: ``install(ROOT, capabilities=...)`` (eghact_client.capabilities)
    grants: dict[str, dict[str, bool]] = field(default_factory=dict)
    #: the file the requirements were read from and are written back to
    source: Path | None = None

    @property
    def lockfile(self) -> Path:
        return self.root / LOCKFILE

    @property
    def plugins_path(self) -> Path:
        return self.root / self.plugins_dir

    @property
    def state_dir(self) -> Path:
        """The client's own files in the project (state, the install journal, staged folders)."""
        return self.root / ".eghact"

    @classmethod
    def load(cls, root: Path) -> Project:
        """The project at ``root``; an empty one (no requirements) when it has no project file yet."""
        root = Path(root).resolve()
        own = root / PROJECT_FILE
        if own.exists():
            return cls.from_document(root, _read_json(own), own)
        package = root / PACKAGE_JSON
        if package.exists():
            document = _read_json(package)
            section = document.get("eghact") if isinstance(document, dict) else None
            if isinstance(section, dict):
                return cls.from_document(root, section, package)
        return cls.from_document(root, {}, None)

    @classmethod
    def from_document(cls, root: Path, doc: Any, source: Path | None) -> Project:
        where = str(source) if source else None
        if not isinstance(doc, dict):
            raise InvalidProject([f"expected a JSON object, got {type(doc).__name__}"], where=where)
        problems: list[str] = []
        deps = doc.get("dependencies", {})
        if not isinstance(deps, dict):
            problems.append("dependencies: expected an object {name: range}")
            deps = {}
        for name, spec in deps.items():
            problems.extend(f"dependencies[{name!r}]: {p}" for p in check_name(name, legacy=True))
            if not isinstance(spec, str) or spec_problem(spec):
                problems.append(f"dependencies[{name!r}]: {spec!r} is not a semver range, a version or a dist-tag")
        eager = doc.get("eager", [])
        if not isinstance(eager, list) or not all(isinstance(e, str) for e in eager):
            problems.append("eager: expected an array of names")
            eager = []
        problems.extend(f"eager: {name!r} is not one of the dependencies" for name in eager if name not in deps)
        for key, kind in (("strategy", dict), ("policy", dict), ("framework", str), ("pluginsDir", str)):
            if doc.get(key) is not None and not isinstance(doc[key], kind):
                problems.append(f"{key}: expected {'an object' if kind is dict else 'a string'}")
        plugins_dir = doc.get("pluginsDir", DEFAULT_PLUGINS_DIR)
        if isinstance(plugins_dir, str) and not _inside(root, plugins_dir):
            problems.append(f"pluginsDir: {plugins_dir!r} must be a folder inside the project")
        registry = _registry(doc.get("registry", {}), problems)
        grants = doc.get("grants", {})
        if not isinstance(grants, dict) or not all(isinstance(g, dict) for g in grants.values()):
            problems.append("grants: expected an object {root: {capability: true|false}}")
            grants = {}
        from .capabilities import grant_problems  # the capability rules live there
        for granted_root, grant in grants.items():
            problems.extend(f"grants[{granted_root!r}]: {p}" for p in grant_problems(grant))
        if problems:
            raise InvalidProject(problems, where=where)
        return cls(root=root, dependencies=dict(deps), eager=tuple(eager), strategy=dict(doc.get("strategy") or {}),
                   policy=doc.get("policy"), framework=doc.get("framework"), registry=registry,
                   plugins_dir=plugins_dir if isinstance(plugins_dir, str) else DEFAULT_PLUGINS_DIR, source=source,
                   grants={name: dict(grant) for name, grant in grants.items()})

    def with_dependency(self, name: str, spec: str) -> Project:
        """A copy that also requires ``name`` at ``spec`` (checked as :meth:`from_document` does)."""
        problems = [f"{name!r}: {p}" for p in check_name(name, legacy=True)]
        if spec_problem(spec):
            problems.append(f"{spec!r} is not a semver range, a version or a dist-tag")
        if problems:
            raise InvalidProject(problems)
        return replace(self, dependencies={**self.dependencies, name: spec})

    def without_dependency(self, name: str) -> Project:
        return replace(self, dependencies={k: v for k, v in self.dependencies.items() if k != name},
                       eager=tuple(e for e in self.eager if e != name),
                       grants={k: v for k, v in self.grants.items() if k != name})

    def with_grants(self, name: str, grants: dict[str, bool]) -> Project:
        """A copy whose root ``name`` has ``grants`` (merged over what it had)."""
        from .capabilities import grant_problems
        problems = grant_problems(grants)
        if problems:
            raise InvalidProject([f"capabilities: {p}" for p in problems])
        return replace(self, grants={**self.grants, name: {**self.grants.get(name, {}), **grants}})

    def resolve_request(self) -> dict[str, Any]:
        """The body of ``POST /-/v1/resolve`` for these requirements (only what the project states)."""
        request: dict[str, Any] = {"dependencies": dict(sorted(self.dependencies.items()))}
        if self.eager:
            request["eager"] = sorted(set(self.eager))
        if self.strategy:
            request["strategy"] = self.strategy
        if self.policy is not None:
            request["policy"] = self.policy
        if self.framework is not None:
            request["framework"] = self.framework
        return request

    def document_bytes(self) -> tuple[Path, bytes]:
        """Where the requirements are written back and the new bytes of that file: only
        ``dependencies``, ``eager`` and ``grants`` change; every other field (and, in ``package.json``,
        everything outside the ``eghact`` section) is kept as it was."""
        target = self.source or self.root / PROJECT_FILE
        document = _read_json(target) if target.exists() else {}
        section = document.setdefault("eghact", {}) if target.name == PACKAGE_JSON else document
        section["dependencies"] = dict(sorted(self.dependencies.items()))
        if self.eager or "eager" in section:
            section["eager"] = sorted(set(self.eager))
        if self.grants or "grants" in section:
            section["grants"] = {root: self.grants[root] for root in sorted(self.grants)}
        return target, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()

    def save(self) -> Path:
        target, data = self.document_bytes()
        write_atomic(target, data, fsync=False)
        return target


def spec_problem(spec: str) -> bool:
    """Whether a dependency spec is something other than a version, a range or a dist-tag."""
    if not spec.strip() or spec[:4].lower() == "npm:":
        return True
    return (semver.valid_range(spec, loose=True) is None and semver.valid(spec.strip(), loose=True) is None
            and not _DIST_TAG.fullmatch(spec))


def _registry(raw: Any, problems: list[str]) -> RegistryConfig:
    if not isinstance(raw, dict):
        problems.append("registry: expected an object {primary, mirrors, edges}")
        return RegistryConfig()
    primary = raw.get("primary") or os.environ.get("EGHACT_REGISTRY") or None
    if primary is not None and not _is_url(primary):
        problems.append(f"registry.primary: {primary!r} is not an http(s) URL")
    mirrors = raw.get("mirrors", [])
    if not isinstance(mirrors, list) or not all(_is_url(m) for m in mirrors):
        problems.append("registry.mirrors: expected an array of http(s) URLs")
        mirrors = []
    edges = raw.get("edges", "auto")
    if edges != "auto" and (not isinstance(edges, list) or not all(_is_url(e) for e in edges)):
        problems.append('registry.edges: expected "auto" or an array of http(s) URLs')
        edges = "auto"
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        problems.append("registry.timeout: expected seconds, more than 0 and at most 3600")
        timeout = DEFAULT_TIMEOUT
    return RegistryConfig(primary=_base(primary) if isinstance(primary, str) else None,
                          mirrors=tuple(_base(m) for m in mirrors),
                          edges=None if edges == "auto" else tuple(_base(e) for e in edges), timeout=float(timeout))


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) < 2048


def _base(url: str) -> str:
    return url.rstrip("/")


def _inside(root: Path, relative: str) -> bool:
    path = Path(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts and path.parts[:1] != (".eghact",)


def _read_json(path: Path) -> Any:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_PROJECT_BYTES + 1)
    except OSError as exc:
        raise InvalidProject([f"cannot be read: {exc.strerror}"], where=str(path)) from exc
    if len(data) > _MAX_PROJECT_BYTES:
        raise InvalidProject([f"larger than {_MAX_PROJECT_BYTES} bytes"], where=str(path))
    try:
        return parse_json(data, what=path.name)
    except InvalidJson as exc:   # not JSON, or nested too deep
        raise InvalidProject([exc.message], where=str(path)) from exc
