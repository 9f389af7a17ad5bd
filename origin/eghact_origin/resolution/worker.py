"""What runs inside the resolver's worker processes.

Resolution is CPU work, so it runs in a process pool (both cores under concurrent
requests) instead of on the event loop. Each worker reads the registry's SQLite file
read-only and keeps parsed packages across requests; a cached package is reused while
its ``packages.seq`` is unchanged (every change to a package bumps it), so caches are
invalidated by the same events as everything else, without messages between processes.
Every resolution reads inside one snapshot, so it sees one committed state of the registry.

The lockfile's tarball URLs are written as paths (``"resolved": "/name/-/f.tgz"``); the
server puts its public base in front when it answers, as it does for packuments.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eghact_common.errors import EghactError, NotFound

from ..packument import materialize
from ..resolver import PackageInfo, PromptResult, ResolvedGraph, ResolveRequest, package_info_from_packument, resolve
from ..resolver.loadplan import build_load_plan
from ..resolver.lockfile import build_lockfile, lockfile_bytes
from ..resolver.tarjan import cycles


@dataclass(frozen=True)
class BuildResult:
    hash: str
    status: int
    body: bytes
    considered: tuple[str, ...]
    seq: int
    seconds: float
    loads: int


class SqliteProvider:
    """A :class:`~eghact_origin.resolver.Provider` over the registry file, with a parse cache."""

    def __init__(self, db_path: Path):
        self._conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._packages: dict[str, tuple[int, PackageInfo]] = {}
        self._advisories: dict[str, list[dict[str, Any]]] = {}
        self._advisory_mark = -1
        self.loads = 0

    def begin(self) -> int:
        """Open the snapshot of one resolution; returns the registry's seq in it."""
        self._conn.execute("BEGIN")
        self.loads = 0
        mark = self._conn.execute("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM advisories").fetchone()
        if mark != self._advisory_mark:
            self._advisories.clear()
            self._advisory_mark = mark
        row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name='changes'").fetchone()
        return int(row[0]) if row else 0

    def end(self) -> None:
        self._conn.execute("COMMIT")

    def package(self, name: str) -> PackageInfo:
        row = self._conn.execute("SELECT seq FROM packages WHERE name=? AND abbrev_doc IS NOT NULL",
                                 (name,)).fetchone()
        if row is None:
            raise NotFound(f"package {name} not found", detail={"name": name})
        self.loads += 1
        cached = self._packages.get(name)
        if cached is not None and cached[0] == row[0]:
            return cached[1]
        (body,) = self._conn.execute("SELECT abbrev_doc FROM packages WHERE name=?", (name,)).fetchone()
        doc = json.loads(materialize(bytes(body), ""))
        info = package_info_from_packument(doc, self._advisories_for(name))
        self._packages[name] = (row[0], info)
        return info

    def _advisories_for(self, name: str) -> list[dict[str, Any]]:
        if name not in self._advisories:
            self._advisories[name] = [
                {"id": r[0], "vulnerable_versions": r[1], "severity": r[2], "title": r[3], "url": r[4]}
                for r in self._conn.execute(
                    "SELECT id, vulnerable_versions, severity, title, url FROM advisories WHERE name=? ORDER BY id",
                    (name,))
            ]
        return self._advisories[name]


_provider: SqliteProvider | None = None


def init_worker(db_path: str) -> None:
    global _provider
    _provider = SqliteProvider(Path(db_path))


def build(body: dict[str, Any], prefetch: dict[str, list[str]]) -> BuildResult:
    """Resolve one request in this worker. Errors become a 422/400 body, never an exception."""
    if _provider is None:
        raise RuntimeError("init_worker was not called")
    return build_with(_provider, ResolveRequest.from_body(body), prefetch)


def build_with(provider: SqliteProvider, request: ResolveRequest, prefetch: dict[str, list[str]]) -> BuildResult:
    started = time.perf_counter()
    seq = provider.begin()
    try:
        try:
            outcome = resolve(request, provider)
        except EghactError as error:
            considered = tuple(sorted(error.detail.get("considered", ()))) if error.detail else ()
            payload = json.dumps(error.to_body(), indent=2, ensure_ascii=False).encode() + b"\n"
            return BuildResult(request.hash, error.status, payload, considered, seq,
                               time.perf_counter() - started, provider.loads)
        if isinstance(outcome, PromptResult):
            payload = json.dumps({"prompt": True, "hash": request.hash, "choices": outcome.choices,
                                  "warnings": list(outcome.warnings)}, indent=2, ensure_ascii=False).encode() + b"\n"
            return BuildResult(request.hash, 200, payload, tuple(sorted(outcome.considered)), seq,
                               time.perf_counter() - started, provider.loads)
        return _lockfile(request, outcome, prefetch, seq, started, provider.loads)
    finally:
        provider.end()


def _lockfile(request: ResolveRequest, graph: ResolvedGraph, prefetch: dict[str, list[str]], seq: int,
              started: float, loads: int) -> BuildResult:
    plan = build_load_plan(graph, eager=request.eager, prefetch=prefetch)
    lock = build_lockfile(graph, request=request.canonical(), request_hash=request.hash, registry="",
                          load_plan=plan, cycles=cycles(graph))
    return BuildResult(request.hash, 200, lockfile_bytes(lock), tuple(sorted(graph.considered)), seq,
                       time.perf_counter() - started, loads)


def with_base(body: bytes, base_url: str) -> bytes:
    """Lockfile bytes with the serving registry's base in ``registry`` and every ``resolved``.

    ``"resolved": "`` and ``"registry": "`` cannot occur unescaped inside a JSON string, so
    the replacement touches only those fields."""
    base = json.dumps(base_url.rstrip("/"))[1:-1].encode()
    return body.replace(b'"resolved": "/', b'"resolved": "' + base + b"/").replace(
        b'"registry": ""', b'"registry": "' + base + b'"')
