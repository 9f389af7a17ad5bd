"""Running an aiohttp app until SIGTERM/SIGINT, then stopping cleanly.

Prints one line ``<label> listening on URL`` once the socket is bound (with
``--port 0`` that is how a caller learns the port), and on a signal lets in-flight
requests finish, closes feed streams, and closes the store before exiting 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop where it is installed (every server entry point uses this).

    uvloop's event loop is written in C (libuv); on the edge's hit path, where the
    handler itself is nearly free, the loop is most of the cost."""
    try:
        import uvloop
    except ImportError:  # uvloop does not build on every platform; the stdlib loop is correct, only slower
        return asyncio.run(main)
    return uvloop.run(main)


async def cancel_and_wait(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel background tasks and wait until each has really stopped; empties the list."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()


def bound_url(runner: web.BaseRunner) -> str:
    """``http://host:port`` of the first address a started runner is bound to."""
    host, port = runner.addresses[0][:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def stop_on_signal() -> asyncio.Event:
    """An event set by the first SIGTERM or SIGINT (handlers stay installed: a second one is
    ignored). Install it before announcing the server: a caller that reads the announcement
    and signals at once must not meet the default action, which kills without cleanup."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(app: web.Application, *, host: str, port: int, label: str,
                shutdown_timeout: float = 10.0) -> None:
    stop = stop_on_signal()
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    print(f"{label} listening on {bound_url(runner)}", flush=True)
    try:
        await stop.wait()
    finally:
        print(f"{label} stopping", file=sys.stderr, flush=True)
        await runner.cleanup()
