"""Running the edge until SIGTERM/SIGINT: its front (:mod:`.front`) and, for the
connections the front hands over, aiohttp's low-level server.

``eghact_common.serving.serve`` runs a ``web.Application``; the edge deliberately has
none (see :mod:`.front`), so this is the same contract for the front: print
``eghact-edge listening on URL`` once bound, stop cleanly on a signal (in-flight requests
finish, the follower saves its seq, the disk tier closes), exit 0. With ``reuse_port``
several worker processes share one port (SO_REUSEPORT) and one disk tier.
"""

from __future__ import annotations

import socket
import sys

from aiohttp import web

from eghact_common.serving import stop_on_signal

from .front import KEEPALIVE, Front
from .node import EdgeNode
from .server import EdgeHandler
from .settings import EdgeSettings


async def serve(settings: EdgeSettings, *, sock: socket.socket | None = None, label: str = "eghact-edge",
                shutdown_timeout: float = 5.0) -> None:
    stop = stop_on_signal()
    node = EdgeNode(settings)
    handler = EdgeHandler(node)
    # handler_cancellation (off by default since aiohttp 3.9): a client that hangs up cancels
    # its handler, so the upstream request it was waiting on (a long-poll, a stream, a slow
    # pass-through) is closed at once instead of holding a connection until it ends. Handlers
    # are written for it: a coalesced fill runs as its own task (other waiters keep it), and
    # the purge after an acknowledged write is shielded.
    fallback = web.Server(handler.handle, max_line_size=settings.max_header_bytes,
                          max_field_size=settings.max_header_bytes, max_headers=64, handler_cancellation=True,
                          keepalive_timeout=KEEPALIVE)
    front = Front(handler, fallback, max_header_bytes=settings.max_header_bytes,
                  header_timeout=settings.header_timeout)
    # Bind first (to learn the port), but start the parts before announcing the address.
    url = await front.start(settings.host, settings.port, reuse_port=settings.workers > 1, sock=sock)
    node.set_public_url(settings.public_url or url)
    await node.start()
    if settings.worker_index == 0:
        print(f"{label} listening on {url}", flush=True)
    try:
        await stop.wait()
    finally:
        print(f"{label} stopping", file=sys.stderr, flush=True)
        # Long-polls and streams have no end to wait for: ended first, so that the front
        # waits only for answers that do end (see :mod:`.streams`).
        node.streams.close()
        await front.close(shutdown_timeout)
        await node.stop()
