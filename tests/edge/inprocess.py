"""An edge in the test's own process and event loop, with a clock the test moves.

:class:`InProcessEdge` is a real :class:`~eghact_edge.node.EdgeNode` and
:class:`~eghact_edge.server.EdgeHandler` in front of a real upstream on 127.0.0.1 (a
:class:`~.support.FakeRegistry` or an origin process); only the edge's own sockets are left
out: a read goes through ``EdgeHandler.read``, the front's entry point. Freshness is decided
by the injected :class:`ManualClock`, so a test moves time forward instead of sleeping.
Edges as child processes (:class:`~.support.EdgeProcess`) remain for what needs the process:
its HTTP front, signals, restarts, workers, the feed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multidict import CIMultiDict

from eghact_edge.node import EdgeNode
from eghact_edge.responses import Outgoing
from eghact_edge.server import EdgeHandler
from eghact_edge.settings import EdgeSettings

PUBLIC_URL = "http://127.0.0.1:1"   # what the edge writes into tarball URLs; nothing listens there


@dataclass
class ManualClock:
    """Wall-clock seconds that only move when the test says so."""

    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: bytes


class InProcessEdge:
    """``settings`` are :class:`EdgeSettings` fields; warming and rate limiting are off unless
    asked for, and there is no disk tier unless ``disk_bytes`` is given."""

    def __init__(self, upstream: str, data_dir: Path, *, clock: ManualClock | None = None, **settings: Any):
        self.clock = clock or ManualClock()
        options: dict[str, Any] = {"public_url": PUBLIC_URL, "disk_bytes": 0, "warm": False, "rate": 0.0,
                                   **settings}
        self.node = EdgeNode(EdgeSettings(upstream=upstream, data_dir=data_dir, region="test", **options),
                             clock=self.clock)
        self.handler = EdgeHandler(self.node)
        self.started = False

    async def start(self) -> InProcessEdge:
        """Follow the upstream's feed (or find it has none), as a started edge does."""
        await self.node.start()
        self.started = True
        return self

    async def get(self, path: str, remote: str = "127.0.0.1", **headers: str) -> Answer:
        """A GET of a cacheable ``path`` (raw, as on the wire) through the edge's read path."""
        route = self.node.routes.get(path)
        assert route.kind is not None, f"{path} is not read through the cache"
        answer = self.handler.read(route, {name.lower().replace("_", "-"): value for name, value in headers.items()},
                                   remote)
        if not isinstance(answer, Outgoing):
            answer = await answer
        parsed: CIMultiDict[str] = CIMultiDict()
        for line in answer.head.decode().split("\r\n"):
            if line:
                name, _, value = line.partition(": ")
                parsed.add(name, value)
        return Answer(answer.status, parsed, answer.body)

    async def close(self) -> None:
        if self.started:
            await self.node.stop()
            return
        await self.node.readthrough.close()
        await self.node.flights.close()
        await self.node.upstream.close()
        if self.node.disk is not None:
            await self.node.disk.close()
