"""The edge's side of the fleet endpoints: registering with the origin
(``POST /-/v1/edges``: region, public URL, health), reporting hit counts in batches
(``POST /-/v1/stats``), and reading the global popular list (``GET /-/v1/popular``).

Registration and stats need a token with scope ``edge`` (or ``admin``); without one the
edge still serves and warms, it just does not take part in the global ranking. Through a
parent edge these requests are proxied up to the origin like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from eghact_common.errors import UpstreamUnavailable

from .popularity import Popularity
from .upstream import PASS, HttpUpstream

log = logging.getLogger("eghact.edge")

POPULAR_LIMIT = 10_000   # the most the origin's /-/v1/popular lists


class FleetClient:
    def __init__(self, upstream: HttpUpstream, popularity: Popularity, *, edge_id: str, region: str,
                 public_url: Callable[[], str], health: Callable[[], dict[str, Any]], token: str | None,
                 stats_interval: float, heartbeat_interval: float):
        self._upstream = upstream
        self._popularity = popularity
        self.edge_id = edge_id
        self.region = region
        self._public_url = public_url
        self._health = health
        self._token = token
        self._stats_interval = stats_interval
        self._heartbeat_interval = heartbeat_interval
        self._task: asyncio.Task[None] | None = None
        self.registered = False
        self.reported = 0

    async def _post(self, path: str, body: dict[str, Any]) -> int:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            async with self._upstream.session(PASS).post(self._upstream.url(path), data=json.dumps(body),
                                                   headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise UpstreamUnavailable(f"{path}: {exc}") from exc

    async def register(self) -> bool:
        if not self._token:
            return False
        status = await self._post("/-/v1/edges", {"id": self.edge_id, "region": self.region,
                                                  "url": self._public_url(), "health": self._health()})
        self.registered = status in (200, 201)
        return self.registered

    async def report_stats(self) -> int:
        """Send the pending hit counts; put them back if the origin did not take them."""
        self._popularity.fold()
        report = self._popularity.drain_report()
        if not report or not self._token:
            return 0
        try:
            status = await self._post("/-/v1/stats", {"edge": self.edge_id, "region": self.region, "hits": report})
        except UpstreamUnavailable:
            status = 0
        if status not in (200, 202):
            self._popularity.restore_report(report)
            return 0
        self.reported += len(report)
        return len(report)

    async def popular(self, limit: int) -> list[str]:
        """The origin's global top keys (cache keys, hottest first); [] when it has none."""
        limit = max(1, min(limit, POPULAR_LIMIT))
        try:
            response = await self._upstream.fetch(f"/-/v1/popular?limit={limit}", {}, kind="popular")
        except UpstreamUnavailable:
            return []
        if response.status != 200:
            if response.status != 404:   # 404: a registry without popularity (plain npm)
                log.warning("the popular list answered %s: %r", response.status, response.body[:200])
            return []
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            body = json.loads(response.body)
            return [item["key"] for item in body.get("keys", []) if isinstance(item.get("key"), str)]
        return []

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="fleet")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self.report_stats()

    async def _loop(self) -> None:
        since_heartbeat = self._heartbeat_interval
        while True:
            try:
                if since_heartbeat >= self._heartbeat_interval:
                    since_heartbeat = 0.0
                    await self.register()
                await self.report_stats()
            except Exception as exc:  # the origin being away must not stop the loop
                log.info("fleet report failed: %s", exc)
            await asyncio.sleep(self._stats_interval)
            since_heartbeat += self._stats_interval
