"""A corpus of real npm packages: the complete trees of a few popular roots, as npm resolves
them against the registry npm is configured with, fetched once with ``npm pack`` into a cache
outside the repository and reused by every run (and by every real-world test).

No registry host is written here: every npm command runs with the user's own npm
configuration, so the registry is whatever ``npm config get registry`` says.

- :func:`resolve_tree`: the lockfile npm writes for some roots (``--package-lock-only``).
- :func:`tree_packages`: its ``packages`` entries, as (name, version, integrity) rows.
- :func:`cached_tarballs`: the cached tarball of every package of a tree, fetching what is
  missing (``npm pack`` many specs per call), each checked against the lockfile's integrity.
- :func:`publish_body` (in :mod:`.npm_publish`): the PUT body npm's libnpmpublish sends.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "POPULAR_ROOTS",
    "CorpusUnavailable",
    "Package",
    "cache_dir",
    "cached_tarballs",
    "check_registry",
    "install_project",
    "lock_tree",
    "npm_env",
    "registry_shown",
    "resolve_tree",
    "tree_differences",
    "tree_packages",
]

#: ``npm pack`` specs per call: one process start (~0.5 s) is shared by this many fetches.
_PACK_BATCH = 40
#: concurrent ``npm pack`` processes: the fetches wait on the network, not on the two cores.
_PACK_WORKERS = 3
_NPM_TIMEOUT = 300


class CorpusUnavailable(RuntimeError):
    """npm could not reach its registry (or failed) while the corpus was being built."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


def cache_dir() -> Path:
    """``$EGHACT_CORPUS_CACHE``, else ``~/.cache/eghact/corpus``: outside the repository."""
    configured = os.environ.get("EGHACT_CORPUS_CACHE")
    path = Path(configured) if configured else Path.home() / ".cache" / "eghact" / "corpus"
    path.mkdir(parents=True, exist_ok=True)
    return path


def npm_env(**extra: str) -> dict[str, str]:
    """The environment npm runs with: the caller's own npm configuration (its registry), quiet."""
    env = dict(os.environ)
    env.update({"NO_UPDATE_NOTIFIER": "1", "npm_config_update_notifier": "false", "npm_config_audit": "false",
                "npm_config_fund": "false", "npm_config_progress": "false"})
    env.update(extra)
    return env


def _npm(args: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(["npm", *args], cwd=cwd, env=dict(env), capture_output=True, text=True,
                                timeout=_NPM_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise CorpusUnavailable(f"npm {' '.join(args[:3])} ... took more than {_NPM_TIMEOUT} s") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise CorpusUnavailable(f"npm {' '.join(args[:3])} ... failed ({result.returncode}):\n{tail}")
    return result


def check_registry(name: str = "express") -> None:
    """Fail fast when npm's registry cannot be reached: one packument read with no retries,
    instead of npm's minutes of backoff inside a tree resolution."""
    _npm(["view", name, "version", "--fetch-retries=0", "--fetch-timeout=30000", "--prefer-online"],
         cache_dir(), npm_env(npm_config_cache=str(cache_dir() / "npm-cache")))


def registry_shown() -> str:
    """What ``npm config get registry`` says (for messages: the registry is never written here)."""
    try:
        shown = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True, timeout=60,
                               env=npm_env())
        return shown.stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"(npm config get registry failed: {exc})"


def install_project(project: Path, roots: Mapping[str, str], *, registry: str, cache: Path,
                    timeout: float = 600) -> dict[str, Any]:
    """``npm install --ignore-scripts`` of a fresh project depending on ``roots`` from
    ``registry`` (an edge or origin under test), with its own npm cache; the lockfile written.
    A failed install is an AssertionError with npm's output."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "package.json").write_text(json.dumps(
        {"name": "eghact-corpus", "version": "0.0.0", "private": True, "dependencies": dict(roots)}))
    rc = project.parent / f"{project.name}.npmrc"
    rc.write_text(f"registry={registry.rstrip('/')}/\naudit=false\nfund=false\nupdate-notifier=false\n")
    result = subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=project,
                            env=npm_env(npm_config_userconfig=str(rc), npm_config_cache=str(cache)),
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"npm install from {registry} failed:\n{result.stderr[-4000:]}"
    lock: dict[str, Any] = json.loads((project / "package-lock.json").read_text())
    return lock


def lock_tree(lock: Mapping[str, Any]) -> dict[str, tuple[str, str, str]]:
    """A lockfile's tree as {path: (name, version, integrity)}, the root project left out: two
    installs gave the same tree when these are equal."""
    tree = {}
    for path, entry in lock["packages"].items():
        if path:
            tree[path] = (_entry_name(path, entry), entry.get("version", ""), entry.get("integrity", ""))
    return tree


def tree_differences(ours: Mapping[str, Any], theirs: Mapping[str, Any], limit: int = 60) -> list[str]:
    """The entries in which two lockfiles' trees differ, one line each (at most ``limit``)."""
    a, b = lock_tree(ours), lock_tree(theirs)
    return [f"  {path}: npm's registry {b.get(path)} / ours {a.get(path)}"
            for path in sorted(a.keys() | b.keys()) if a.get(path) != b.get(path)][:limit]


def resolve_tree(roots: Mapping[str, str], workdir: Path) -> dict[str, Any]:
    """The package-lock.json npm writes for a project depending on ``roots`` ({name: range}),
    resolved against npm's configured registry, without installing anything."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "package.json").write_text(json.dumps(
        {"name": "eghact-corpus", "version": "0.0.0", "private": True, "dependencies": dict(roots)}, indent=2))
    env = npm_env(npm_config_cache=str(cache_dir() / "npm-cache"))
    _npm(["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"], workdir, env)
    lock: dict[str, Any] = json.loads((workdir / "package-lock.json").read_text())
    return lock


def _entry_name(path: str, entry: Mapping[str, Any]) -> str:
    # An aliased dependency's folder name is the alias; the entry's "name" is the real package.
    return str(entry.get("name") or path.rsplit("node_modules/", 1)[-1])


def tree_packages(lock: Mapping[str, Any]) -> list[Package]:
    """Every distinct (name, version) of a lockfile's tree (the root project left out)."""
    seen: dict[tuple[str, str], Package] = {}
    for path, entry in lock.get("packages", {}).items():
        if not path or entry.get("link") or "version" not in entry:
            continue
        name = _entry_name(path, entry)
        seen.setdefault((name, entry["version"]), Package(name, entry["version"], entry.get("integrity", "")))
    return sorted(seen.values(), key=lambda p: (p.name, p.version))


def _sha512_sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


class _Index:
    """``index.json``: {"name@version": {name, version, integrity, file}}, written atomically."""

    def __init__(self, root: Path):
        self.root = root
        self.path = root / "index.json"
        self.entries: dict[str, dict[str, str]] = json.loads(self.path.read_text()) if self.path.exists() else {}

    def file_of(self, package: Package) -> Path | None:
        entry = self.entries.get(package.spec)
        if entry is None or (package.integrity and entry["integrity"] != package.integrity):
            return None
        path = self.root / "tarballs" / entry["file"]
        return path if path.exists() else None

    def add(self, package: Package, file: str, integrity: str) -> None:
        self.entries[package.spec] = {"name": package.name, "version": package.version,
                                      "integrity": integrity, "file": file}

    def save(self) -> None:
        with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False, suffix=".tmp") as out:
            json.dump(self.entries, out, indent=1, sort_keys=True)
        os.replace(out.name, self.path)


def _batches(packages: list[Package]) -> Iterable[list[Package]]:
    # npm pack names a scoped tarball scope-name-1.0.0.tgz, so "@a/b-c" and "@a-b/c" would
    # write one file: such packages go into different batches.
    batch: list[Package] = []
    names: set[str] = set()
    waiting: list[Package] = []
    for package in packages:
        filename = package.spec.lstrip("@").replace("/", "-").replace("@", "-")
        if filename in names:
            waiting.append(package)
            continue
        batch.append(package)
        names.add(filename)
        if len(batch) == _PACK_BATCH:
            yield batch
            batch, names = [], set()
    if batch:
        yield batch
    if waiting:
        yield from _batches(waiting)


def _pack(batch: list[Package], root: Path) -> list[tuple[Package, str, str]]:
    """Fetch one batch into a private folder; each tarball is renamed to its sha512 digest."""
    env = npm_env(npm_config_cache=str(root / "npm-cache"))
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        folder = Path(scratch)
        result = _npm(["pack", "--json", "--ignore-scripts", "--pack-destination", str(folder),
                       *(p.spec for p in batch)], folder, env)
        reports = {(r["name"], r["version"]): r for r in json.loads(result.stdout)}
        done = []
        for package in batch:
            report = reports.get((package.name, package.version))
            if report is None:
                raise CorpusUnavailable(f"npm pack did not report {package.spec}")
            data = (folder / report["filename"]).read_bytes()
            integrity = _sha512_sri(data)
            if package.integrity and integrity != package.integrity:
                raise CorpusUnavailable(f"{package.spec}: npm pack gave {integrity}, the lockfile says "
                                        f"{package.integrity}")
            digest = hashlib.sha512(data).hexdigest()
            target = root / "tarballs" / f"{digest[:32]}.tgz"
            if not target.exists():
                shutil.move(folder / report["filename"], target)
            done.append((package, target.name, integrity))
        return done


def cached_tarballs(packages: list[Package]) -> dict[Package, Path]:
    """The cached tarball of each package, fetching the missing ones with ``npm pack``
    (batched, a few processes at once); the index is saved after every batch."""
    root = cache_dir()
    (root / "tarballs").mkdir(exist_ok=True)
    index = _Index(root)
    missing = [p for p in packages if index.file_of(p) is None]
    if missing:
        with ThreadPoolExecutor(_PACK_WORKERS) as pool:
            for done in pool.map(lambda batch: _pack(batch, root), list(_batches(missing))):
                for package, file, integrity in done:
                    index.add(package, file, integrity)
                index.save()
    found = {p: index.file_of(p) for p in packages}
    absent = [p.spec for p, path in found.items() if path is None]
    if absent:
        raise CorpusUnavailable(f"not in the corpus cache after fetching: {', '.join(absent[:20])}")
    return {p: path for p, path in found.items() if path is not None}


#: The roots of the real-world corpus: popular packages whose trees hold scoped names
#: (@babel, @esbuild, @eslint), esbuild's optional platform packages (os/cpu), peer
#: dependencies (react-dom on react, babel plugins on @babel/core), new shapes (`"main":
#: false`, peerDependenciesMeta without the peer, core-module names like `events`) and, through
#: request and gulp 4, a decade of older ones (licence objects, odd people fields, legacy names
#: such as JSONStream).
POPULAR_ROOTS: dict[str, str] = {
    "express": "^4.21.0",
    "axios": "^1.7.0",
    "webpack": "^5.95.0",
    "eslint": "^9.12.0",
    "esbuild": "^0.24.0",
    "react-dom": "^18.3.0",
    "@babel/core": "^7.25.0",
    "@babel/preset-env": "^7.25.0",
    "request": "^2.88.2",
    "gulp": "^4.0.2",
    "JSONStream": "^1.3.5",
}
