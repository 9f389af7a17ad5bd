"""What runs inside the resolver's worker processes.

Resolution is CPU work, so it runs in a process pool (both cores under concurrent
requests) instead of on the event loop. Each worker reads the registry through a read-only
snapshot reader the store hands it (:class:`~eghact_origin.storage.PackageSnapshot`, made in
the worker by ``MetadataStore.snapshot_opener()``) and keeps parsed packages across
requests; a cached package is reused while its ``packages.seq`` is unchanged (every change
to a package bumps it), so caches are invalidated by the same events as everything else,
without messages between processes.
Every resolution reads inside one snapshot, so it sees one committed state of the registry.

The lockfile's tarball URLs are written as paths (``"resolved": "/name/-/f.tgz"``); the
server puts its public base in front when it answers, as it does for packuments.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eghact_common.errors import EghactError, NotFound

from ..packument import materialize
from ..resolver import PackageInfo, PromptResult, ResolvedGraph, ResolveRequest, package_info_from_packument, resolve
from ..resolver.loadplan import build_load_plan
from ..resolver.lockfile import build_lockfile, lockfile_bytes
from ..resolver.tarjan import cycles
from ..storage import PackageSnapshot
from .closure import Pair, walk_pairs


@dataclass(frozen=True)
class BuildResult:
    hash: str
    status: int
    body: bytes
    considered: tuple[str, ...]
    seq: int
    seconds: float
    loads: int
    #: names the build asked for that the store does not hold (fetched, then built again,
    #: when the origin can pull packages: ``closure.py``)
    missing: tuple[str, ...] = ()


class SnapshotProvider:
    """A :class:`~eghact_origin.resolver.Provider` over a store's snapshot, with a parse cache."""

    def __init__(self, snapshot: PackageSnapshot):
        self._snapshot = snapshot
        self._packages: dict[str, tuple[int, PackageInfo]] = {}
        self._advisories: dict[str, list[dict[str, Any]]] = {}
        self._advisory_mark: Any = None
        self.loads = 0
        self.missing: set[str] = set()

    def begin(self) -> int:
        """Open the snapshot of one resolution; returns the registry's seq in it."""
        seq, mark = self._snapshot.begin()
        self.loads = 0
        self.missing = set()
        if mark != self._advisory_mark:
            self._advisories.clear()
            self._advisory_mark = mark
        return seq

    def end(self) -> None:
        self._snapshot.end()

    def package(self, name: str) -> PackageInfo:
        seq = self._snapshot.package_seq(name)
        if seq is None:
            self.missing.add(name)
            raise NotFound(f"package {name} not found", detail={"name": name})
        self.loads += 1
        cached = self._packages.get(name)
        if cached is not None and cached[0] == seq:
            return cached[1]
        doc = json.loads(materialize(self._snapshot.abbreviated(name), ""))
        info = package_info_from_packument(doc, self._advisories_for(name))
        self._packages[name] = (seq, info)
        return info

    def _advisories_for(self, name: str) -> list[dict[str, Any]]:
        if name not in self._advisories:
            self._advisories[name] = self._snapshot.advisories(name)
        return self._advisories[name]


_provider: SnapshotProvider | None = None


def init_worker(open_snapshot: Callable[[], PackageSnapshot]) -> None:
    global _provider
    _provider = SnapshotProvider(open_snapshot())


def build(body: dict[str, Any], prefetch: dict[str, list[str]]) -> BuildResult:
    """Resolve one request in this worker. Errors become a 422/400 body, never an exception."""
    if _provider is None:
        raise RuntimeError("init_worker was not called")
    return build_with(_provider, ResolveRequest.from_body(body), prefetch)


def walk(pairs: list[Pair], lowest: bool, seen: frozenset[Pair]) -> tuple[list[Pair], list[Pair]]:
    """One round of a request's walk before its build (``closure.walk_pairs``), in this worker."""
    if _provider is None:
        raise RuntimeError("init_worker was not called")
    _provider.begin()
    try:
        return walk_pairs(_provider, pairs, lowest, seen)
    finally:
        _provider.end()


def build_with(provider: SnapshotProvider, request: ResolveRequest, prefetch: dict[str, list[str]]) -> BuildResult:
    started = time.perf_counter()
    seq = provider.begin()
    try:
        try:
            outcome = resolve(request, provider)
        except EghactError as error:
            considered = tuple(sorted(error.detail.get("considered", ()))) if error.detail else ()
            payload = json.dumps(error.to_body(), indent=2, ensure_ascii=False).encode() + b"\n"
            return BuildResult(request.hash, error.status, payload, considered, seq,
                               time.perf_counter() - started, provider.loads, tuple(sorted(provider.missing)))
        if isinstance(outcome, PromptResult):
            payload = json.dumps({"prompt": True, "hash": request.hash, "choices": outcome.choices,
                                  "warnings": list(outcome.warnings)}, indent=2, ensure_ascii=False).encode() + b"\n"
            return BuildResult(request.hash, 200, payload, tuple(sorted(outcome.considered)), seq,
                               time.perf_counter() - started, provider.loads, tuple(sorted(provider.missing)))
        return _lockfile(request, outcome, prefetch, seq, started, provider)
    finally:
        provider.end()


def _lockfile(request: ResolveRequest, graph: ResolvedGraph, prefetch: dict[str, list[str]], seq: int,
              started: float, provider: SnapshotProvider) -> BuildResult:
    plan = build_load_plan(graph, eager=request.eager, prefetch=prefetch)
    lock = build_lockfile(graph, request=request.canonical(), request_hash=request.hash, registry="",
                          load_plan=plan, cycles=cycles(graph))
    return BuildResult(request.hash, 200, lockfile_bytes(lock), tuple(sorted(graph.considered)), seq,
                       time.perf_counter() - started, provider.loads, tuple(sorted(provider.missing)))


def with_base(body: bytes, base_url: str) -> bytes:
    """Lockfile bytes with the serving registry's base in ``registry`` and every ``resolved``.

    ``"resolved": "`` and ``"registry": "`` cannot occur unescaped inside a JSON string, so
    the replacement touches only those fields."""
    base = json.dumps(base_url.rstrip("/"))[1:-1].encode()
    return body.replace(b'"resolved": "/', b'"resolved": "' + base + b"/").replace(
        b'"registry": ""', b'"registry": "' + base + b'"')
