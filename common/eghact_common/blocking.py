"""The one place that moves blocking work off the event loop.

SQLite, file I/O, hashing and compressing big payloads all go through here, so an audit
of "what can block the loop" is a grep for this module. A :class:`SerialExecutor` runs
callables one at a time on a dedicated thread: the SQLite writer uses it, because SQLite
allows one writer and a single thread owning the connection makes that explicit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def run_blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` on the default thread pool and await its result."""
    return await asyncio.to_thread(fn, *args, **kwargs)


class SerialExecutor:
    """Runs callables one after another on one named thread."""

    def __init__(self, name: str):
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._pool, call)

    def submit(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> concurrent.futures.Future[T]:
        """Blocking callers (CLI, seeding) use the same thread, so writes never interleave."""
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
