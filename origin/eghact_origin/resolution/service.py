"""Built resolutions: resolve on demand in worker processes, keep the result under the
request's canonical hash, serve it again until something it depended on changes.

A resolution depends on every package whose versions were *considered* (not only the
ones chosen): a new version of any of them may change the answer. Validity is checked
against the feed itself — "has any considered package had an event after the seq this
was built at?" — which is one indexed probe and needs no message between processes.
Events also mark resolutions stale eagerly, append a ``resolution`` event to the feed
(so followers purge ``res:<hash>``), and rebuild the popular ones at once (prebuilt).

Given ``fetch_missing`` (the uplinks'), a build first makes its dependency closure present
(``closure.py``): names pulled in are read from the store like any other, so they are among
the names considered, and their later refreshes (feed events) make the result stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from eghact_common import wire
from eghact_common.errors import EghactError, NotFound, PayloadTooLarge
from eghact_common.serving import cancel_and_wait

from ..auth import AccessPolicy, Principal
from ..metrics import Reporter
from ..packument import strong_etag
from ..resolver import ResolveRequest
from ..storage import MetadataStore, StoredResolution
from .closure import FetchMissing, Pull, PullLimits, prewalk
from .cousage import CoUsage
from .worker import BuildResult, build, init_worker, walk, with_base

log = logging.getLogger("eghact.resolutions")

#: The error that says why names a build found missing are missing when the uplinks' pull
#: policy hides them (404 ``versions_held_back``), or None (the uplink service's ``why_missing``).
HeldBack = Callable[[list[str]], Awaitable[EghactError | None]]

# Hit counts are folded into the table at invalidation and shutdown; a registry that sees many
# distinct requests and no change folds them when this many digests are waiting instead.
_MAX_PENDING_HITS = 10_000


@dataclass(frozen=True)
class Built:
    hash: str
    status: int
    body: bytes                     # lockfile / prompt / explanation, with path-only tarball URLs
    considered: tuple[str, ...]
    seq: int

    @property
    def lockfile(self) -> bool:
        """A lockfile (not an explanation, a prompt's choices or an error): a resolution that
        succeeded. Both bodies are written with ``indent=2`` and their first key first."""
        return self.status == 200 and self.body.startswith(b'{\n  "lockfileVersion"')


class _Remembered(LRUCache[str, Built]):
    """Built results in memory; tells its owner what it evicts, so the index from package
    names to results stays as small as the cache (it grew with every request ever made)."""

    def __init__(self, maxsize: int, on_evict: Callable[[Built], None]):
        super().__init__(maxsize=maxsize, getsizeof=lambda b: len(b.body) + 256)
        self._on_evict = on_evict

    def popitem(self) -> tuple[str, Built]:
        key, built = super().popitem()
        self._on_evict(built)
        return key, built


class Resolutions:
    def __init__(self, store: MetadataStore, access: AccessPolicy, *, workers: int = 2,
                 popular_hits: int = 3, cache_bytes: int = 64 * 1024 * 1024, max_roots: int | None = None,
                 co_usage: CoUsage | None = None, on_commit: Callable[[], None] | None = None,
                 max_stored: int | None = None, fetch_missing: FetchMissing | None = None,
                 pull_limits: PullLimits | None = None, reporter: Reporter | None = None,
                 held_back: HeldBack | None = None):
        self._store = store
        # None: only what the store holds is resolved (a registry without uplinks)
        self._fetch_missing = fetch_missing
        # Why names an unresolvable build found missing are missing, when the uplinks' pull
        # policy hides them: the error a read of them gets, not "not in the registry".
        self._held_back = held_back
        self._pull_limits = pull_limits or PullLimits()
        self._reporter = reporter or Reporter()
        self._max_stored = max_stored
        # Told after we append events ourselves (resolutions marked stale), so that the change
        # dispatcher delivers them (edges purge ``res:<hash>``) now, not at its next poll.
        self._on_commit = on_commit
        self._access = access
        self._workers = workers
        self._popular_hits = popular_hits
        self._max_roots = max_roots
        self._pool: ProcessPoolExecutor | None = None
        self._memory = _Remembered(cache_bytes, self._forget)
        self._rendered: LRUCache[tuple[str, int, str], tuple[bytes, str]] = LRUCache(
            maxsize=cache_bytes, getsizeof=lambda r: len(r[0]) + 256)
        self._by_name: defaultdict[str, set[str]] = defaultdict(set)
        self._building: dict[str, asyncio.Future[Built]] = {}
        self.co_usage = co_usage or CoUsage(store)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hits: Counter[str] = Counter()

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to load: co-usage lives in its table, results are read when asked for."""

    async def stop(self) -> None:
        await cancel_and_wait(list(self._tasks))
        with contextlib.suppress(Exception):  # hints are advisory
            await self.co_usage.flush()
        with contextlib.suppress(Exception):  # hit counts are advisory
            await self._store.resolution_hits(self._take_hits())
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _executor(self) -> ProcessPoolExecutor:
        # Started on first use: most registries resolve rarely, and spawning costs ~1 s.
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker, initargs=(self._store.snapshot_opener(),))
        return self._pool

    # -- answering ------------------------------------------------------------------

    async def resolve(self, principal: Principal | None, body: Any) -> Built:
        """``POST /-/v1/resolve``: validate (400/413 in-process), then the stored or a new build."""
        request = ResolveRequest.from_body(body, max_roots=self._max_roots)
        built = await self._current(request.hash) or await self._build(request)
        self._check_access(principal, built)
        if built.lockfile:  # an explanation or an error teaches nothing about what is used together
            self.co_usage.learn(_lazy_roots(request))
        await self._count_hit(built.hash)
        return built

    async def fetch(self, principal: Principal | None, digest: str) -> Built:
        """``GET /-/v1/resolutions/{hash}``: rebuilt from its stored request when stale."""
        built = await self._current(digest)
        if built is None:
            stored = await self._store.resolution_request(digest)
            if stored is None:
                raise NotFound(f"no resolution {digest}; POST the request to /-/v1/resolve first",
                               detail={"hash": digest})
            request = ResolveRequest.from_body(json.loads(stored))
            # A request stored before its spelling changed (duplicate=dedupe, now dedupe-all)
            # hashes anew: answer with that hash's build, which stays current, rather than
            # building again on every fetch of the old hash.
            built = await self._current(request.hash) or await self._build(request)
        self._check_access(principal, built)
        await self._count_hit(built.hash)
        return built

    def rendered(self, built: Built, base_url: str) -> tuple[bytes, str]:
        """The answer for one public base, with its ETag: spliced and hashed once, not per request."""
        key = (built.hash, built.seq, base_url)
        hit = self._rendered.get(key)
        if hit is None:
            body = with_base(built.body, base_url)
            hit = self._rendered[key] = (body, strong_etag(body))
        return hit

    def private(self, built: Built) -> bool:
        return any(self._access.is_private(name) for name in built.considered)

    def _check_access(self, principal: Principal | None, built: Built) -> None:
        # Same answer as reading each considered packument: no leak of private names.
        for name in built.considered:
            self._access.check_read(principal, name)

    async def _current(self, digest: str) -> Built | None:
        cached = self._memory.get(digest)
        if cached is not None:
            return cached
        stored = await self._store.resolution_current(digest)
        if stored is None:
            return None
        built = Built(stored.hash, stored.status, stored.body, stored.considered, stored.seq)
        self._remember(built)
        return built

    async def _build(self, request: ResolveRequest) -> Built:
        """One build per hash at a time; concurrent askers wait for it (single flight)."""
        digest = request.hash
        running = self._building.get(digest)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[Built] = asyncio.get_running_loop().create_future()
        self._building[digest] = future
        try:
            result = await self._produce(request)
            if result.status == 422 and result.missing and self._held_back is not None:
                why = await self._held_back(list(result.missing))
                if why is not None:
                    raise why
            built = Built(result.hash, result.status, result.body, result.considered, result.seq)
            # A name still missing when names can be pulled is an upstream's answer of the
            # moment (it remembers a 404 briefly, never for ever): answered, not kept.
            lasting = self._fetch_missing is None or not result.missing
            if result.status in (200, 422) and lasting:  # deterministic answers are kept; others are not
                await self._save(request, built)
            if lasting:
                self._remember(built)
            future.set_result(built)
            return built
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it; nobody may be waiting
            raise
        finally:
            self._building.pop(digest, None)

    async def _produce(self, request: ResolveRequest) -> BuildResult:
        """One build; with ``fetch_missing``, the walk first and a build again for each round
        of names the previous build found missing (bounded by ``pull_limits``)."""
        hints = await self.co_usage.hints(_lazy_roots(request))
        if self._fetch_missing is None:
            return await self._in_worker(build, request.canonical(), hints)
        pull = Pull(self._fetch_missing, self._pull_limits, keep=self._keep)
        lowest = request.strategy.version == "lowest"
        try:
            await prewalk(request.dependencies, lambda pairs, seen: self._in_worker(walk, pairs, lowest, seen), pull)
            result: BuildResult = await self._in_worker(build, request.canonical(), hints)
            for _ in range(self._pull_limits.rounds):
                if not await pull.names(result.missing, retry=True):
                    break
                result = await self._in_worker(build, request.canonical(), hints)
            else:
                if set(result.missing) - pull.asked:
                    raise PayloadTooLarge(
                        f"resolving this request still needed packages after {self._pull_limits.rounds} "
                        "rounds of fetching them", code="closure_too_large",
                        detail={"rounds": self._pull_limits.rounds, "fetched": len(pull.present)})
            return result
        finally:
            if pull.asked:
                self._reporter.resolve_pulled(pull.walked, pull.retried, pull.elapsed)
                log.info("resolution %s: %d names pulled while walking, %d after building, %d absent, in %.2f s",
                         request.hash[:12], pull.walked, pull.retried, len(pull.absent), pull.elapsed)

    async def _in_worker(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor(), fn, *args)

    def _keep(self, task: asyncio.Task[Any]) -> None:
        # A pull outliving its request's deadline finishes in the background (stop cancels it).
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(self, request: ResolveRequest, built: Built) -> None:
        canonical = json.dumps(request.canonical(), sort_keys=True, separators=(",", ":"))
        await self._store.resolution_save(canonical, StoredResolution(
            built.hash, built.status, built.body, built.considered, built.seq), keep=self._max_stored)

    def _remember(self, built: Built) -> None:
        self._memory[built.hash] = built
        for name in built.considered:
            self._by_name[name].add(built.hash)

    def _forget(self, built: Built) -> None:
        for name in built.considered:
            digests = self._by_name.get(name)
            if digests is not None:
                digests.discard(built.hash)
                if not digests:
                    del self._by_name[name]

    async def _count_hit(self, digest: str) -> None:
        # Counted in memory: a durable write per prebuilt fetch would cost an fsync each.
        # Folded into the table when popularity matters (invalidation) and at shutdown.
        self._hits[digest] += 1
        if len(self._hits) >= _MAX_PENDING_HITS:
            self._spawn(self._store.resolution_hits(self._take_hits()))

    def _take_hits(self) -> Counter[str]:
        # Taken on the event loop, folded on the writer thread: the two never share the counter.
        hits, self._hits = self._hits, Counter()
        return hits

    # -- invalidation -----------------------------------------------------------------

    def invalidate(self, events: list[wire.ChangeEvent]) -> None:
        """A subscriber of the change dispatcher (feed.py): called once with every committed
        event, local or foreign. The durable part (marking stale, rebuilding) is a task."""
        # Every event but our own can change an answer: the rule of the stored check
        # (``resolution_current``), so an event type added later (an uplink's refresh of a
        # packument) drops remembered answers as it makes stored ones stale.
        names = {e.name for e in events if e.type != wire.RESOLUTION}
        if not names:
            return
        for name in names:
            for digest in self._by_name.pop(name, ()):
                built = self._memory.pop(digest, None)
                if built is not None:
                    self._forget(built)
        self._spawn(self._mark_stale(sorted(names)))

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        self._keep(asyncio.get_running_loop().create_task(work))

    async def _mark_stale(self, names: list[str]) -> None:
        counted = self._take_hits()  # folded in the same transaction: popularity decides rebuilds
        try:
            stale = await self._store.resolutions_stale(names, counted)
            if stale and self._on_commit is not None:
                self._on_commit()
            popular = [digest for digest, hits in stale if hits >= self._popular_hits]
            for digest in popular:
                await self._rebuild(digest)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("marking resolutions stale after changes to %s", names)

    async def _rebuild(self, digest: str) -> None:
        stored = await self._store.resolution_request(digest)
        if stored is not None:
            await self._build(ResolveRequest.from_body(json.loads(stored)))

    async def settle(self) -> None:
        """Wait for background invalidation, rebuilds and co-usage writes (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.co_usage.flush()


def _lazy_roots(request: ResolveRequest) -> list[str]:
    # Roots named eager load at start; only lazy chunks are prefetched.
    return sorted(name for name in request.dependencies if name not in request.eager)
