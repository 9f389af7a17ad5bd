"""Talking to uplinks: the one place upstream requests are made and their failures translated.

Every request is bounded (connect and read timeouts, a body limit), retried on failures that
may pass (connection errors, timeouts, 429 and 5xx) with exponential backoff and jitter, and
counted per uplink. An uplink that fails ``fail_limit`` requests in a row is *down* for
``cool_off`` seconds: requests to it then fail at once (the caller serves what it stored)
instead of each waiting out the timeouts; the first request after the cool-off tries again
(as Verdaccio's ``max_fails``/``fail_timeout`` do). A 404 is an answer, not a failure.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from eghact_common.errors import EghactError, NotFound, UplinkUnavailable

from ..metrics import Reporter
from .config import Uplink, UplinkConfig

_RETRYABLE = frozenset({429, 500, 502, 503, 504})
_USER_AGENT = "eghact-origin (uplink)"


@dataclass(frozen=True)
class Fetched:
    """An upstream answer: 200 (``body``), 304 (not modified) or 404."""

    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class UplinkHealth:
    failures: int = 0               # failed requests in a row
    last_error: str | None = None
    last_error_at: float | None = None
    down_until: float = 0.0
    last_ok_at: float | None = None

    def state(self, now: float) -> str:
        if now < self.down_until:
            return "down"
        return "degraded" if self.failures else "ok"


class _Retry(Exception):
    """A failure worth another attempt: (kind, message)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class UplinkClient:
    def __init__(self, config: UplinkConfig, *, reporter: Reporter | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random):
        self._config = config
        self._reporter = reporter or Reporter()
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._session: aiohttp.ClientSession | None = None
        self.health = {u.name: UplinkHealth() for u in config.uplinks}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on the serving loop, at first use
            timeout = aiohttp.ClientTimeout(total=None, connect=self._config.timeout,
                                            sock_connect=self._config.timeout, sock_read=self._config.timeout)
            self._session = aiohttp.ClientSession(
                timeout=timeout, auto_decompress=True, headers={"User-Agent": _USER_AGENT},
                connector=aiohttp.TCPConnector(limit=64, limit_per_host=32))
        return self._session

    def report(self) -> dict[str, Any]:
        now = self._clock()
        return {name: {"url": self._config.uplink(name).url, "state": h.state(now), "failures": h.failures,
                       "last_error": h.last_error, "last_error_at": h.last_error_at,
                       "down_until": h.down_until if h.down_until > now else None, "last_ok_at": h.last_ok_at}
                for name, h in self.health.items()}

    async def packument(self, uplink: Uplink, name: str, *, etag: str | None, last_modified: str | None,
                        max_bytes: int) -> Fetched:
        """The full packument of ``name`` (``Accept: application/json``: the full document has
        ``time``), conditional on the validators given. Raises UplinkUnavailable."""
        headers = {"Accept": "application/json"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        url = f"{uplink.url}/{name.replace('/', '%2f')}"
        return await self._request(uplink, "packument", url, headers, max_bytes)

    async def tarball(self, uplink: Uplink, url: str, *, max_bytes: int) -> bytes:
        """A tarball's bytes (within ``max_bytes``); NotFound for a 404, else UplinkUnavailable."""
        fetched = await self._request(uplink, "tarball", url, {"Accept": "*/*"}, max_bytes)
        if fetched.status != 200:
            raise NotFound(f"uplink {uplink.name} has no tarball at {url}", code="uplink_not_found")
        return fetched.body

    async def _request(self, uplink: Uplink, what: str, url: str, headers: dict[str, str],
                       max_bytes: int) -> Fetched:
        health = self.health[uplink.name]
        now = self._clock()
        if now < health.down_until:
            self._reporter.uplink_error(uplink.name, "down")
            raise UplinkUnavailable(f"uplink {uplink.name} is down (after {health.failures} failed requests) "
                                    f"until its cool-off ends", detail={"uplink": uplink.name,
                                                                        "last_error": health.last_error})
        attempts = max(1, self._config.attempts)
        for attempt in range(attempts):
            try:
                fetched = await self._once(uplink, what, url, headers, max_bytes)
            except _Retry as failure:
                self._reporter.uplink_error(uplink.name, failure.kind)
                if attempt + 1 < attempts:
                    await self._sleep(self._config.backoff * 2 ** attempt * (0.5 + self._jitter()))
                    # Other requests may have taken the uplink down meanwhile (the refresher has
                    # several in flight): then this one asks no more either.
                    if self._clock() >= health.down_until:
                        continue
                self._failed(health, str(failure))
                raise UplinkUnavailable(f"uplink {uplink.name} failed: {failure}",
                                        detail={"uplink": uplink.name, "kind": failure.kind}) from None
            except EghactError as error:
                self._failed(health, error.message)
                raise
            health.failures, health.last_ok_at = 0, self._clock()
            return fetched
        raise AssertionError("unreachable: the loop returns or raises")

    def _failed(self, health: UplinkHealth, message: str) -> None:
        health.failures += 1
        health.last_error, health.last_error_at = message, self._clock()
        if health.failures >= self._config.fail_limit:
            health.down_until = self._clock() + self._config.cool_off

    async def _once(self, uplink: Uplink, what: str, url: str, headers: dict[str, str],
                    max_bytes: int) -> Fetched:
        try:
            async with self._client().get(url, headers=headers, allow_redirects=True) as response:
                self._reporter.uplink_fetch(uplink.name, what, response.status)
                if response.status in _RETRYABLE:
                    raise _Retry("status", f"{what} {url}: HTTP {response.status}")
                if response.status in (304, 404):
                    return Fetched(response.status, etag=response.headers.get("ETag"),
                                   last_modified=response.headers.get("Last-Modified"))
                if response.status != 200:
                    raise UplinkUnavailable(f"uplink {uplink.name} answered HTTP {response.status} for {url}",
                                            detail={"uplink": uplink.name, "status": response.status})
                declared = response.content_length
                if declared is not None and declared > max_bytes:
                    raise self._too_large(uplink, url, max_bytes)
                chunks, size = [], 0
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        raise self._too_large(uplink, url, max_bytes)
                    chunks.append(chunk)
                self._reporter.uplink_bytes(uplink.name, size)
                return Fetched(200, b"".join(chunks), response.headers.get("ETag"),
                               response.headers.get("Last-Modified"))
        except TimeoutError as exc:
            raise _Retry("timeout", f"{what} {url}: no answer within {self._config.timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            raise _Retry("connect", f"{what} {url}: {type(exc).__name__}: {exc}") from exc

    def _too_large(self, uplink: Uplink, url: str, limit: int) -> UplinkUnavailable:
        self._reporter.uplink_error(uplink.name, "too_large")
        return UplinkUnavailable(f"uplink {uplink.name}: {url} is over the {limit} byte limit",
                                 code="uplink_too_large", detail={"uplink": uplink.name, "limit": limit})
