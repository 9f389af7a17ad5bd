"""The edge's side of the fleet endpoints: registering with the origin
(``POST /-/v1/edges``: region, public URL, health), reporting hit counts in batches
(``POST /-/v1/stats``), and reading the global popular list (``GET /-/v1/popular``).

Registration and stats need a token with scope ``edge`` (or ``admin``), presented by the
upstream client (the only requests that carry the edge's token); without one the edge still
serves and warms, it just does not take part in the global ranking. Through a
parent edge these requests are proxied up to the origin like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from eghact_common.errors import UpstreamUnavailable

from .popularity import Popularity
from .upstream import UpstreamClient

log = logging.getLogger("eghact.edge")

POPULAR_LIMIT = 10_000   # the most the origin's /-/v1/popular lists


class FleetClient:
    def __init__(self, upstream: UpstreamClient, popularity: Popularity, *, edge_id: str, region: str,
                 public_url: Callable[[], str], health: Callable[[], dict[str, Any]],
                 stats_interval: float, heartbeat_interval: float):
        self._upstream = upstream
        self._popularity = popularity
        self.edge_id = edge_id
        self.region = region
        self._public_url = public_url
        self._health = health
        self._stats_interval = stats_interval
        self._heartbeat_interval = heartbeat_interval
        self._task: asyncio.Task[None] | None = None
        self.registered = False
        self.reported = 0

    async def _post(self, path: str, body: dict[str, Any]) -> int:
        return (await self._upstream.post_json(path, body, kind="fleet", credentials=True)).status

    async def register(self) -> bool:
        if not self._upstream.credentialed:
            return False
        status = await self._post("/-/v1/edges", {"id": self.edge_id, "region": self.region,
                                                  "url": self._public_url(), "health": self._health()})
        self.registered = status in (200, 201)
        return self.registered

    async def report_stats(self) -> int:
        """Send the pending hit counts; put them back if the origin did not take them."""
        self._popularity.fold()
        report = self._popularity.drain_report()
        if not report or not self._upstream.credentialed:
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
            answer = await self._upstream.get_json(f"/-/v1/popular?limit={limit}", kind="popular")
        except UpstreamUnavailable:
            return []
        if answer.status != 200:
            if answer.status != 404:   # 404: a registry without popularity (plain npm)
                log.warning("the popular list answered %s: %.200s", answer.status, answer.document)
            return []
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            return [item["key"] for item in answer.document.get("keys", []) if isinstance(item.get("key"), str)]
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
