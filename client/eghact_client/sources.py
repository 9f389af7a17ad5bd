"""Where requests go: the nearest edge, then the next, then the primary, then the mirrors.

Edges are the project's ``registry.edges`` or, when it says ``auto`` (the default), the alive
ones the primary lists at ``GET /-/v1/edges``. Each is probed once (``GET /-/health``, timed:
the edge answers it itself, so the time is the round trip to the edge, not to its upstream), and
they are tried nearest first; an edge that does not answer the probe is left out. The list and
the times are kept in the client cache (``sources.json``) for :data:`PROBE_TTL` seconds, so
most runs neither list nor probe.

A request goes to the first source that is not marked down. A source that cannot be reached,
does not answer in time, cuts the exchange, or answers 5xx, 408 or 429 is marked down for the
rest of the run (an edge killed mid-install costs one failed request, not one per package) and
the request moves on. When every source has failed, the run backs off (exponential, full jitter:
``uniform(0, backoff * 2**round)``), forgets the marks and tries them all again, up to
``rounds`` times; then :class:`~eghact_client.errors.NoSourceReachable` says how each failed.
Any other status is the registry's answer and is returned as it is. Every decision is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eghact_common.durable import write_atomic

from .errors import InvalidProject, NoSourceReachable
from .project import RegistryConfig
from .reporter import Reporter
from .transport import Response, Transport, TransportError

__all__ = ["Source", "Sources"]

log = logging.getLogger("eghact.client")

PROBE_TTL = 600.0
PROBE_TIMEOUT = 2.0
DOCUMENT_BYTES = 128 * 1024 * 1024
_RETRYABLE = frozenset({408, 429})


@dataclass(frozen=True)
class Source:
    url: str
    kind: str                  # edge | primary | mirror
    rtt: float | None = None   # seconds, edges only

    def describe(self) -> str:
        rtt = f", {self.rtt * 1000:.1f} ms" if self.rtt is not None else ""
        return f"{self.kind} {self.url}{rtt}"


class Sources:
    def __init__(self, config: RegistryConfig, transport: Transport, *, cache_dir: Path | None = None,
                 reporter: Reporter | None = None, rounds: int = 3, backoff: float = 0.25,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self._config = config
        self._transport = transport
        self._cache_file = cache_dir / "sources.json" if cache_dir else None
        self._reporter = reporter or Reporter()
        self._rounds = max(1, rounds)
        self._backoff = backoff
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._order: asyncio.Task[list[Source]] | None = None
        self._down: dict[str, str] = {}

    async def order(self) -> list[Source]:
        """The sources, nearest edge first; found once per run (single flight)."""
        if self._order is None:
            self._order = asyncio.ensure_future(self._find())
        return await self._order

    async def request(self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
                      max_bytes: int = DOCUMENT_BYTES, timeout: float | None = None) -> tuple[Source, Response]:
        """``method path`` at the first source that answers; raises ``NoSourceReachable``."""
        order = await self.order()
        if not order:
            raise InvalidProject(["registry.primary: no registry is configured (nor $EGHACT_REGISTRY)"])
        tried: list[dict[str, str]] = []
        for round_ in range(self._rounds):
            if round_:
                pause = self._rng.uniform(0, self._backoff * 2 ** round_)
                log.info("every source failed; trying them all again in %.2f s (round %d of %d)", pause,
                         round_ + 1, self._rounds)
                await self._sleep(pause)
                self._down.clear()
            for source in order:
                if source.url in self._down:
                    continue
                url = source.url + path
                try:
                    response = await self._transport.request(method, url, body=body, headers=headers,
                                                             timeout=timeout or self._config.timeout,
                                                             max_bytes=max_bytes)
                except TransportError as exc:
                    reason = f"{exc.kind}: {exc}"
                else:
                    if response.status < 500 and response.status not in _RETRYABLE:
                        log.debug("%s %s -> %d from %s in %.1f ms", method, path, response.status, source.kind,
                                  response.seconds * 1000)
                        return source, response
                    reason = f"answered {response.status}"
                self._mark_down(source, reason)
                tried.append({"url": source.url, "error": reason})
        raise NoSourceReachable(f"no source answered {method} {path}: every edge, the primary and the mirrors "
                                f"failed, {self._rounds} times", detail={"path": path, "tried": tried})

    async def nearest_edge(self) -> Source | None:
        """The nearest edge not marked down this run, or None (prefetch hints go to it alone)."""
        return next((s for s in await self.order() if s.kind == "edge" and s.url not in self._down), None)

    def _mark_down(self, source: Source, reason: str) -> None:
        if source.url not in self._down:
            self._down[source.url] = reason
            log.info("%s failed (%s); failing over to the next source", source.describe(), reason)
            self._reporter.failover(source.url, reason)

    # ---- finding and ordering the sources ----------------------------------------------------------

    async def _find(self) -> list[Source]:
        config = self._config
        edges = await self._edges()
        order = [*edges]
        if config.primary:
            order.append(Source(config.primary, "primary"))
        order += [Source(url, "mirror") for url in config.mirrors]
        log.info("sources in order: %s", "; ".join(s.describe() for s in order) or "none")
        self._reporter.sources(order)
        return order

    async def _edges(self) -> list[Source]:
        config = self._config
        key = config.primary or ""
        cached = self._cached(key) if config.edges is None else None
        if cached is not None:
            log.info("edges and their round-trip times from the cache (%d edges)", len(cached))
            return cached
        if config.edges is not None:
            urls = list(config.edges)
            log.info("edges as configured: %s", ", ".join(urls) or "none")
        else:
            urls = await self._discover()
        times = await asyncio.gather(*(self._probe(url) for url in urls))
        reached = sorted((Source(url, "edge", rtt) for url, rtt in zip(urls, times, strict=True) if rtt is not None),
                         key=lambda s: s.rtt or 0.0)
        if config.edges is None:
            self._remember(key, reached)
        return reached

    async def _discover(self) -> list[str]:
        primary = self._config.primary
        if not primary:
            return []
        try:
            response = await self._transport.request("GET", primary + "/-/v1/edges", timeout=PROBE_TIMEOUT * 2,
                                                     max_bytes=4 * 1024 * 1024)
            listed = response.json().get("edges", []) if response.status == 200 else []
        except (TransportError, ValueError, AttributeError) as exc:
            log.info("cannot list the primary's edges (%s): no edges this run", exc)
            return []
        urls = [e["url"].rstrip("/") for e in listed if isinstance(e, dict) and e.get("alive")
                and isinstance(e.get("url"), str) and e["url"].startswith(("http://", "https://"))]
        log.info("the primary lists %d alive edges: %s", len(urls), ", ".join(urls) or "none")
        return urls

    async def _probe(self, url: str) -> float | None:
        try:
            response = await self._transport.request("GET", url + "/-/health", timeout=PROBE_TIMEOUT,
                                                     max_bytes=1024 * 1024)
        except TransportError as exc:
            log.info("edge %s left out: its probe failed (%s)", url, exc.kind)
            return None
        if response.status >= 500:
            log.info("edge %s left out: its probe answered %d", url, response.status)
            return None
        log.info("edge %s: %.1f ms", url, response.seconds * 1000)
        return response.seconds

    def _cached(self, key: str) -> list[Source] | None:
        entry = self._read_cache().get(key)
        if not isinstance(entry, dict) or not isinstance(entry.get("at"), int | float):
            return None
        if not 0 <= self._clock() - entry["at"] < PROBE_TTL:
            return None
        edges = entry.get("edges")
        if not isinstance(edges, list):
            return None
        return [Source(e["url"], "edge", float(e["rtt"])) for e in edges
                if isinstance(e, dict) and isinstance(e.get("url"), str) and isinstance(e.get("rtt"), int | float)]

    def _remember(self, key: str, edges: list[Source]) -> None:
        if self._cache_file is None:
            return
        known = self._read_cache()
        known[key] = {"at": self._clock(), "edges": [{"url": s.url, "rtt": s.rtt} for s in edges]}
        try:
            self._cache_file.parent.mkdir(parents=True, exist_ok=True)
            # no fsync: losing it costs one probe
            write_atomic(self._cache_file, json.dumps(known, indent=1).encode(), fsync=False)
        except OSError as exc:
            log.info("cannot keep the edges' round-trip times (%s)", exc)

    def _read_cache(self) -> dict[str, Any]:
        if self._cache_file is None:
            return {}
        try:
            known = json.loads(self._cache_file.read_bytes())
        except (OSError, ValueError):
            return {}
        return known if isinstance(known, dict) else {}
