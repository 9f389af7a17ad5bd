"""Single flight: N concurrent misses on one key make one upstream request.

The fetch runs as its own task, so the client that started it may hang up without
cancelling everyone else's answer. Waiters are bounded twice: at most ``max_waiters`` per
key (beyond that a 503 says "retry", instead of an unbounded queue), and each waits at
most ``timeout`` seconds. Only anonymous requests share a flight: a response fetched with
one principal's credentials is never handed to another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from eghact_common.errors import UpstreamUnavailable

from .errors import TooManyWaiters
from .metrics import Reporter

T = TypeVar("T")


class _Flight(Generic[T]):
    __slots__ = ("task", "waiters")

    def __init__(self, task: asyncio.Task[T]):
        self.task = task
        self.waiters = 0


class SingleFlight(Generic[T]):
    def __init__(self, *, max_waiters: int = 1000, timeout: float = 15.0, reporter: Reporter | None = None):
        self._flights: dict[str, _Flight[T]] = {}
        self._max_waiters = max_waiters
        self._timeout = timeout
        self._reporter = reporter or Reporter()

    def __contains__(self, key: str) -> bool:
        return key in self._flights

    @property
    def in_flight(self) -> int:
        return len(self._flights)

    async def run(self, key: str, fetch: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``(result, shared)``: shared is True for a waiter that rode on another's fetch."""
        flight = self._flights.get(key)
        if flight is not None:
            if flight.waiters >= self._max_waiters:
                raise TooManyWaiters(f"{flight.waiters} requests already wait for this resource; retry shortly",
                                     detail={"retry_after": 1})
            flight.waiters += 1
            self._reporter.coalesced_wait()
            try:
                return await self._wait(flight), True
            finally:
                flight.waiters -= 1
        task = asyncio.ensure_future(fetch())
        flight = _Flight(task)
        self._flights[key] = flight
        task.add_done_callback(lambda _t: self._done(key, flight))
        return await self._wait(flight), False

    async def _wait(self, flight: _Flight[T]) -> T:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation that
        # arrives in the loop turn the flight lands, and the cancelled task runs on.
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(flight.task)
        except TimeoutError as exc:
            raise UpstreamUnavailable(f"the upstream fetch took longer than {self._timeout:g}s",
                                      code="upstream_timeout") from exc

    def _done(self, key: str, flight: _Flight[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        # Nobody may be left to read a failure; reading it here keeps asyncio quiet.
        with contextlib.suppress(asyncio.CancelledError):
            flight.task.exception()

    async def close(self) -> None:
        for flight in list(self._flights.values()):
            flight.task.cancel()
        for flight in list(self._flights.values()):
            with contextlib.suppress(BaseException):
                await flight.task
