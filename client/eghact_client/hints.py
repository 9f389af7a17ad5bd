"""Prefetch hints: after a resolution, tell the nearest edge which tarballs a later ``activate``
will ask for, so that it fetches them from its upstream first and the ``activate`` is a hit.

The body is the edge's documented one (``POST /-/v1/prefetch``, ``{"tarballs": ["name@version"]}``,
``edge/eghact_edge/hints.py``): the lazy packages not placed yet, the likeliest first
(:meth:`~eghact_client.loadplan.LoadPlan.hint_order`: the plan's ``prefetch`` list, then the other
lazy chunks). An edge reads at most :data:`PER_REQUEST` hints a request and gives each client a
burst of 200 (then 20 a second), so at most :data:`MAX_HINTS` are sent, in requests of
:data:`PER_REQUEST`; beyond that a hint would only be ignored.

Hints are advice: they go to the nearest edge only (the primary and mirrors take none), are sent
in the background while the install goes on, each request with a short deadline of its own, and
a failure is logged, never raised. :meth:`Hinter.drain` waits for them (bounded by that deadline)
before the client's connections close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .loadplan import LoadPlan
from .lockfile import Lock
from .sources import Sources
from .transport import Transport, TransportError

__all__ = ["Hinter"]

log = logging.getLogger("eghact.client")

PER_REQUEST = 100
MAX_HINTS = 200
HINT_TIMEOUT = 2.0


class Hinter:
    def __init__(self, transport: Transport, *, timeout: float = HINT_TIMEOUT):
        self._transport = transport
        self._timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: list[tuple[str, int]] = []   # (edge, hints it queued): for --verbose and tests

    def send(self, lock: Lock, plan: LoadPlan, placed: set[str], sources: Sources) -> None:
        """Start hinting the lazy packages of ``lock`` not in ``placed``; returns at once."""
        by_key = {p.key: p for p in lock.packages}
        wanted = [f"{by_key[key].name}@{by_key[key].version}" for key in plan.hint_order() if key not in placed]
        if not wanted:
            return
        task = asyncio.ensure_future(self._post(wanted[:MAX_HINTS], sources))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the hints still in flight (each ends within its deadline)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _post(self, hints: list[str], sources: Sources) -> None:
        edge = await sources.nearest_edge()
        if edge is None:
            log.info("no edge to send %d prefetch hints to", len(hints))
            return
        queued = 0
        for start in range(0, len(hints), PER_REQUEST):
            batch = hints[start:start + PER_REQUEST]
            try:
                response = await self._transport.request("POST", edge.url + "/-/v1/prefetch",
                                                         body={"tarballs": batch}, timeout=self._timeout,
                                                         max_bytes=64 * 1024)
            except TransportError as exc:
                log.info("prefetch hints to %s not sent (%s): activate will fetch what it needs", edge.url, exc.kind)
                return
            if response.status != 202:
                log.info("prefetch hints to %s refused (%d)", edge.url, response.status)
                return
            with contextlib.suppress(ValueError, AttributeError, TypeError):   # a count is only for the log
                queued += int(response.json().get("queued", 0))
        log.info("sent %d prefetch hints to %s (%d queued)", len(hints), edge.url, queued)
        self.sent.append((edge.url, queued))
