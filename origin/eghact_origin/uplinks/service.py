"""Pull-through: the origin serves public packages it does not hold from its uplinks.

Reads of a name the store lacks, or holds as a pulled copy older than ``--uplink-max-age``,
go through :meth:`UplinkService.ensure` before the store is read; nothing else changes on the
read path (the handlers read the store as for any package). Every upstream request passes
:meth:`UplinkService.gate`, the one decision of whether a name may leave: never for a private
scope, never for a name published here (the store says so, and says it again inside the write
that stores a pull), never for a name routed ``local``.

- A pull fetches the upstream's full packument, passes it through the pull policy, renders it
  into rows (``convert.py``) and stores it in one transaction with one ``uplink`` event, which
  the change dispatcher delivers (edges purge, resolutions are rebuilt, rendered bytes dropped).
- A stale copy is revalidated with the validators of its last fetch; a 304 re-applies the
  policy to the stored upstream document (time passes) and writes only if that changed. The
  background refresher (``refresher.py``) does this for every pulled package past its max age,
  read or not, and applies the policy again at each reveal time; a read finding a stale copy
  still revalidates it, sharing the refresher's flight.
- A read of what the policy hides (a package with nothing visible, a hidden version, its
  tarball) is told why: :meth:`UplinkService.held_back`, 404 ``versions_held_back``.
- Stale-if-error: a copy is served when its refresh fails or takes longer than the deadline
  (the refresh goes on and stores its result); a name the store lacks gets 502.
- Concurrent requests for one name (or one tarball) share one upstream request (single-flight).
- An upstream 404 is believed for ``negative_ttl`` seconds, in a bounded map.
- Tarballs are fetched on their first request, checked against the integrity of the upstream
  packument, stored by digest; later requests are plain local reads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from cachetools import LRUCache, TTLCache

from eghact_common import integrity, names, wire
from eghact_common.blocking import run_blocking
from eghact_common.errors import EghactError, NotFound, UplinkUnavailable, VersionsHeldBack

from ..metrics import Reporter
from ..registry import Registry
from ..storage import TarballRecord, UplinkState
from . import convert
from .client import UplinkClient
from .config import LOCAL, Uplink, UplinkConfig
from .policy import PullDecision, PullPolicy
from .refresher import Refresher

T = TypeVar("T")
_BIG = 256 * 1024  # documents bigger than this are parsed and rendered off the event loop


class UplinkService:
    def __init__(self, config: UplinkConfig, registry: Registry, *, reporter: Reporter | None = None,
                 policy: PullPolicy | None = None, clock: Callable[[], float] = time.time,
                 client: UplinkClient | None = None, max_document_bytes: int = 256 << 20):
        self.config = config
        self._registry = registry
        self._store = registry.store
        self._reporter = reporter or Reporter()
        self._policy = policy or PullPolicy()
        self._clock = clock
        self.client = client or UplinkClient(config, reporter=self._reporter, clock=clock)
        self._max_document_bytes = max_document_bytes
        # name -> (source, fetched): LOCAL names for ever (a local name never becomes pulled),
        # pulled ones with their fetch time; an event on the name drops it.
        self._memo: LRUCache[str, tuple[str, float]] = LRUCache(maxsize=100_000)
        self._negative: TTLCache[str, bool] = TTLCache(maxsize=config.negative_max, ttl=config.negative_ttl,
                                                       timer=clock)
        self._flights: dict[tuple[str, ...], asyncio.Future[Any]] = {}
        self._stale: dict[str, float] = {}  # names whose stored copy is served past a failed refresh
        self.refresher = Refresher(self, self._store, config, reporter=self._reporter, clock=clock)

    async def start(self) -> None:
        """Start the background refresher (the app's startup: on the serving loop)."""
        self.refresher.start()

    async def stop(self) -> None:
        await self.refresher.stop()
        for future in list(self._flights.values()):
            future.cancel()
        await self.client.close()

    def invalidate(self, events: list[wire.ChangeEvent]) -> None:
        """A subscriber of the change dispatcher: what an event touched is asked of the store again."""
        for event in events:
            self._memo.pop(event.name, None)
            self._negative.pop(event.name, None)

    # -- the gate -------------------------------------------------------------------

    async def gate(self, name: str) -> Uplink | None:
        """The uplink ``name`` may be requested from, or None: it never leaves. Every upstream
        request asks this first. (``uplink_save`` refuses a local name again in its transaction.)"""
        if self._registry.access.is_private(name):
            return None
        uplink = self.config.route(name)
        if uplink is None:
            return None
        memo = self._memo.get(name)
        source = memo[0] if memo is not None else await self._store.package_source(name)
        if source == LOCAL:
            self._memo[name] = (LOCAL, 0.0)
            return None
        return uplink

    # -- packuments -----------------------------------------------------------------

    async def ensure(self, name: str) -> bool:
        """Make ``name`` present and fresh in the store when routing allows: fetched when missing,
        revalidated when older than the max age. True when the store has it (a local name, a
        pulled copy, a stale copy served because the uplink failed); False when neither the store
        nor the uplink has it. Raises UplinkUnavailable when the store lacks it and the uplink fails."""
        uplink = await self.gate(name)
        if uplink is None:
            return self._memo.get(name, ("",))[0] == LOCAL or await self._store.package_source(name) is not None
        now = self._clock()
        memo = self._memo.get(name)
        if memo is not None and now - memo[1] < self.config.max_age:
            self._reporter.uplink_hit(memo[0])
            return True
        if name in self._negative:
            return False
        state = await self._store.uplink_state(name)
        if state is not None and now - state.fetched < self.config.max_age:
            self._memo[name] = (state.uplink, state.fetched)
            self._reporter.uplink_hit(state.uplink)
            return True
        flight = self._flight(("pkg", name), lambda: self._pull(name, uplink, state))
        if state is None:
            return bool(await flight)
        try:
            return bool(await asyncio.wait_for(asyncio.shield(flight), self.config.refresh_deadline))
        except (TimeoutError, EghactError):
            # Stale-if-error: the stored copy rather than a 5xx; a slow refresh goes on and stores.
            self._stale[name] = self._clock()
            self._reporter.uplink_stale(state.uplink)
            return True

    async def ensure_many(self, names: Iterable[str], concurrency: int = 16) -> dict[str, bool]:
        """:meth:`ensure` for each name, at most ``concurrency`` at once; a name whose uplink
        failed is False (the caller explains what is missing)."""
        limit = asyncio.Semaphore(concurrency)

        async def one(name: str) -> tuple[str, bool]:
            async with limit:
                try:
                    return name, await self.ensure(name)
                except EghactError:
                    return name, False

        return dict(await asyncio.gather(*(one(n) for n in dict.fromkeys(names))))

    async def reapply(self, name: str) -> bool:
        """Run the pull policy again over the stored upstream document of ``name`` and store the
        result if it changed (a cooldown ended, an admin allowed a version). True when it did."""
        state = await self._store.uplink_state(name)
        if state is None:
            return False
        doc = await self._parse(convert.decompress(state.raw), name, state.uplink)
        decision = await self._decide(name, doc)
        if not _differs(decision, state):
            return False
        return await self._save(name, state.uplink, decision, state.raw, state.etag, state.last_modified,
                                state.fetched)

    # -- the background refresher's calls (refresher.py) ----------------------------------

    def available(self) -> list[str]:
        """The uplinks that may be asked now: not down (cooling off after failed requests)."""
        now = self._clock()
        return [name for name, health in self.client.health.items() if health.state(now) != "down"]

    async def refresh(self, name: str) -> bool:
        """Revalidate the pulled package ``name`` now, whatever its age, sharing a read's refresh
        in flight. False when it may not be requested any more (a route to ``local`` or a
        private scope added since it was pulled): it is then marked checked, and kept as it is.
        Raises EghactError when the uplink failed (the stored copy is served meanwhile)."""
        uplink = await self.gate(name)
        state = await self._store.uplink_state(name)
        if state is None:
            return False
        if uplink is None:
            await self._store.uplink_touch(name, fetched=self._clock(), etag=None, last_modified=None)
            return False
        await self._flight(("pkg", name), lambda: self._pull(name, uplink, state))
        return True

    async def reveal(self, name: str) -> None:
        """Apply the pull policy again at a package's reveal time (no upstream request). It shares
        the flight of a refresh of the same name, which applies the policy too: two writers of one
        view could otherwise store an older document over a newer one."""
        async def run() -> bool:
            await self.reapply(name)
            return True  # what a read sharing this flight learns: the store has the name

        await self._flight(("pkg", name), run)

    # -- why a read found nothing ------------------------------------------------------------

    async def held_back(self, name: str, *, version: str | None = None,
                        filename: str | None = None) -> VersionsHeldBack | None:
        """The 404 ``versions_held_back`` for a read of ``name`` (or one of its versions, or one
        of its tarballs) that found nothing because the pull policy hides it; None when that is
        not why (not a pulled package, or the version is not one the policy hid). For a package
        with nothing visible the detail says how many versions each rule hides and when the
        first becomes visible (``visible_after``); for one hidden version, its ``reason``."""
        state = await self._store.uplink_state(name)
        if state is None or not state.hidden:
            return None
        if filename is not None:
            version = next((v for v in state.hidden if names.tarball_filename(name, v) == filename), None)
        if version is not None and version in state.hidden:
            reason = state.hidden[version]
            return VersionsHeldBack(f"{name}@{version} is held back by this registry's pull policy ({reason})",
                                    detail={"name": name, "version": version, "reason": reason})
        try:
            visible = any(not v.unpublished for v in (await self._store.package_state(name)).versions.values())
        except NotFound:
            visible = False
        if visible:
            return None
        return PullDecision({}, state.hidden, state.reveal_at).held_back_error(name)

    async def why_missing(self, missing: list[str]) -> VersionsHeldBack | None:
        """For a resolution that found ``missing`` names missing: the :meth:`held_back` error of
        the first of them (in order, at most 32 looked at) the pull policy hides whole."""
        for name in missing[:32]:
            why = await self.held_back(name)
            if why is not None:
                return why
        return None

    async def _pull(self, name: str, uplink: Uplink, state: UplinkState | None) -> bool:
        try:
            fetched = await self.client.packument(uplink, name, etag=state.etag if state else None,
                                                  last_modified=state.last_modified if state else None,
                                                  max_bytes=self._max_document_bytes)
        except EghactError:
            if state is not None:
                self._stale[name] = self._clock()
            raise
        now = self._clock()
        if fetched.status == 404:
            if state is None:
                self._negative[name] = True
                return False
            # Gone upstream: the copy stays (clients that locked it still install); checked again later.
            await self._store.uplink_touch(name, fetched=now, etag=None, last_modified=None)
        elif fetched.status == 304 and state is not None:
            self._reporter.uplink_refresh(uplink.name, "304")
            doc = await self._parse(convert.decompress(state.raw), name, uplink.name)
            decision = await self._decide(name, doc)
            if not _differs(decision, state):
                await self._store.uplink_touch(name, fetched=now, etag=fetched.etag,
                                               last_modified=fetched.last_modified)
            else:
                await self._save(name, uplink.name, decision, state.raw, fetched.etag or state.etag,
                                 fetched.last_modified or state.last_modified, now)
        else:
            if state is not None:
                self._reporter.uplink_refresh(uplink.name, "200")
            doc = await self._parse(fetched.body, name, uplink.name)
            raw = await run_blocking(convert.compress, fetched.body)
            await self._save(name, uplink.name, await self._decide(name, doc), raw, fetched.etag,
                             fetched.last_modified, now)
        self._memo[name] = (uplink.name, now)
        self._stale.pop(name, None)
        return True

    async def _parse(self, body: bytes, name: str, uplink: str) -> dict[str, Any]:
        try:
            doc = await run_blocking(json.loads, body) if len(body) > _BIG else json.loads(body)
        except ValueError as exc:
            raise UplinkUnavailable(f"uplink {uplink} answered a packument of {name} that is not JSON",
                                    code="uplink_bad_document", detail={"name": name, "uplink": uplink}) from exc
        return convert.check_document(name, doc, uplink)

    async def _decide(self, name: str, doc: dict[str, Any]) -> PullDecision:
        if not self._policy.active:
            return PullDecision(doc)
        advisories = [dataclasses.asdict(a) for a in await self._store.advisories_for([name])]
        allowed = await self._store.uplink_allowed(name)
        return self._policy.apply(name, doc, now=self._clock(), allowed=allowed, advisories=advisories)

    async def _save(self, name: str, uplink: str, decision: PullDecision, raw: bytes, etag: str | None,
                    last_modified: str | None, fetched: float) -> bool:
        base = self.config.uplink(uplink).url
        pulled = await run_blocking(convert.pulled_package, name, uplink, base, decision.doc, raw=raw, etag=etag,
                                    last_modified=last_modified, fetched=fetched, hidden=decision.hidden,
                                    reveal_at=decision.reveal_at)
        events, unused = await self._store.uplink_save(pulled, actor=f"uplink:{uplink}")
        for digest in unused:
            if not await self._store.digest_in_use(digest):
                await run_blocking(self._registry.blobs.delete, digest)
        await self._registry.committed(events)
        return bool(events)

    # -- tarballs -------------------------------------------------------------------

    async def tarball(self, name: str, filename: str, record: TarballRecord | None) -> TarballRecord:
        """The record of a tarball whose bytes are in the blob store: ``record`` itself when they
        are; else fetched from the uplink, checked against the packument's integrity, stored.
        ``record`` None: the store had no such tarball (its packument is pulled first)."""
        if record is None:
            if not await self.ensure(name):
                raise NotFound(f"package {name} does not exist", detail={"name": name})
            record = await self._registry.tarball(name, filename)
        if record.size:
            return record
        uplink = await self.gate(name)
        if uplink is None:
            raise NotFound(f"{name}@{record.version}'s tarball was never fetched, and {name} may not be "
                           f"requested from an uplink now", detail={"name": name, "version": record.version})
        fetching = record
        return await self._flight(("tgz", name, filename), lambda: self._fetch_tarball(uplink, fetching, filename))

    async def _fetch_tarball(self, uplink: Uplink, record: TarballRecord, filename: str) -> TarballRecord:
        url = await self._store.uplink_tarball_url(record.name, filename)
        if url is None:
            raise NotFound(f"no upstream tarball {filename} for {record.name}", detail={"name": record.name})
        data = await self.client.tarball(uplink, url, max_bytes=self._registry.limits.max_bytes)
        digest, sri = await run_blocking(_verified, data, record)
        if digest is None:
            self._reporter.uplink_error(uplink.name, "integrity")
            raise UplinkUnavailable(f"{record.name}@{record.version}: the tarball uplink {uplink.name} sent does "
                                    f"not match the integrity of its packument; nothing was stored",
                                    code="uplink_integrity_mismatch",
                                    detail={"name": record.name, "version": record.version, "expected":
                                            record.integrity or f"sha1:{record.shasum}", "got": sri})
        stored = await run_blocking(self._registry.blobs.put, data)
        known = record.integrity or sri
        await self._store.uplink_tarball_stored(record.name, record.version, digest=stored, size=len(data),
                                                integrity=known)
        return dataclasses.replace(record, blob_digest=stored, size=len(data), integrity=known)

    # -- shared -----------------------------------------------------------------------

    def _flight(self, key: tuple[str, ...], start: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """The one in-flight task for ``key``: concurrent callers share its upstream request."""
        running = self._flights.get(key)
        if running is not None:
            return running
        task: asyncio.Future[T] = asyncio.ensure_future(start())
        self._flights[key] = task

        def done(finished: asyncio.Future[T]) -> None:
            self._flights.pop(key, None)
            if not finished.cancelled():
                finished.exception()  # retrieved: a refresh that outlived its waiters fails quietly

        task.add_done_callback(done)
        return task

    def health(self) -> dict[str, Any]:
        """For ``/-/health``: each uplink's state and the names served stale right now."""
        uplinks = self.client.report()
        return {"uplinks": uplinks, "serving_stale": len(self._stale), "refresh": self.refresher.report(),
                "degraded": bool(self._stale) or any(u["state"] != "ok" for u in uplinks.values())}


def _differs(decision: PullDecision, state: UplinkState) -> bool:
    """Whether the policy's decision is not what is stored: other versions hidden, or another
    reveal time (stored so the refresher applies the policy again then)."""
    return decision.hidden != state.hidden or decision.reveal_at != state.reveal_at


def _verified(data: bytes, record: TarballRecord) -> tuple[str | None, str]:
    """(sha512 hex of ``data`` if it matches the record's integrity — its strongest hash — or,
    without one, its sha1 ``shasum``, else None; and ``data``'s sha512 SRI)."""
    sri = integrity.sri_sha512(data)
    digest = hashlib.sha512(data).hexdigest()
    try:
        ok = integrity.matches(integrity.digests(data), record.integrity) if record.integrity else \
            hashlib.sha1(data).hexdigest() == record.shasum.lower() and bool(record.shasum)
    except ValueError:
        ok = False
    return (digest if ok else None), sri
