"""Running the edge until SIGTERM/SIGINT on aiohttp's low-level server.

``eghact_common.serving.serve`` runs a ``web.Application``; the edge deliberately has
none (see :mod:`.server`), so this is the same contract for a bare handler: print
``eghact-edge listening on URL`` once bound, stop cleanly on a signal (in-flight requests
finish, the follower saves its seq, the disk tier closes), exit 0. With ``reuse_port``
several worker processes share one port (SO_REUSEPORT) and one disk tier.
"""

from __future__ import annotations

import socket
import sys

from aiohttp import web

from eghact_common.serving import bound_url, until_signal

from .node import EdgeNode
from .server import EdgeHandler
from .settings import EdgeSettings


async def serve(settings: EdgeSettings, *, sock: socket.socket | None = None, label: str = "eghact-edge",
                shutdown_timeout: float = 5.0) -> None:
    node = EdgeNode(settings)
    handler = EdgeHandler(node)
    server = web.Server(handler.handle, max_line_size=settings.max_header_bytes,
                        max_field_size=settings.max_header_bytes, max_headers=64)
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    if sock is not None:
        site: web.BaseSite = web.SockSite(runner, sock)
    else:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True,
                           reuse_port=settings.workers > 1)
    # Bind first (to learn the port), but start the parts before announcing the address.
    await site.start()
    url = bound_url(runner)
    node.set_public_url(settings.public_url or url)
    await node.start()
    if settings.worker_index == 0:
        print(f"{label} listening on {url}", flush=True)
    try:
        await until_signal()
    finally:
        print(f"{label} stopping", file=sys.stderr, flush=True)
        await runner.cleanup()
        await node.stop()
