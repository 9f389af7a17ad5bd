"""``--workers N``: N processes on one port (SO_REUSEPORT) sharing one disk tier.

The hit path is CPU-bound Python, so one process per core is how an edge uses a machine.
The kernel spreads connections over the listening sockets; diskcache is safe across
processes, so the disk tier is shared; each worker has its own memory tier and follower
(its own ``feed.<i>.seq``), so each purges what it holds. Worker 0 runs in this process,
the others are children that it stops when it stops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys

from eghact_common.serving import run

from .front_serving import serve
from .settings import EdgeSettings


def serve_workers(settings: EdgeSettings, argv: list[str]) -> int:
    # Reserve the port (with --port 0, learn it) so every worker binds the same one.
    reserve = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserve.bind((settings.host, settings.port))
    port = reserve.getsockname()[1]
    public_url = settings.public_url or f"http://{settings.host}:{port}"
    children = []
    for index in range(1, settings.workers):
        children.append(subprocess.Popen(
            [sys.executable, "-m", "eghact_edge.cli", *argv, "--port", str(port), "--public-url", public_url,
             "--worker-index", str(index)], stdout=subprocess.DEVNULL, env=dict(os.environ)))
    try:
        run(serve(dataclasses.replace(settings, port=port, public_url=public_url)))
    finally:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        reserve.close()
    return 0
