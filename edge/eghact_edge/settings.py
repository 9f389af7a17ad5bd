"""Edge settings: built once by ``main()`` and handed to :func:`eghact_edge.node.build`."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EdgeSettings:
    upstream: str
    data_dir: Path
    region: str
    host: str = "127.0.0.1"
    port: int = 0
    public_url: str | None = None
    parent: str | None = None
    memory_bytes: int = 256 * 1024 * 1024
    disk_bytes: int = 4 * 1024 * 1024 * 1024
    admission: str = "tinylfu"            # or "lru"
    upstream_timeout: float = 10.0
    stream_budget: int = 32               # long-lived pass-through requests (long-polls, SSE) at once
    stream_per_client: int = 4            # ... per client address (a child edge with --workers N needs N)
    max_longpoll: float = 30.0            # seconds: a forwarded long-poll's timeout= is capped at this
    max_upstream_body: int = 128 * 1024 * 1024
    max_request_bytes: int = 70 * 1024 * 1024
    max_header_bytes: int = 8190
    header_timeout: float = 15.0          # seconds for a whole request head, from its first byte
    max_ttl: float | None = None          # cap on header freshness lifetimes (an operator knob)
    # Lifetime of what an upstream sends without freshness headers (heuristic ceiling, see
    # freshness.py). 300 s is the max-age npm registries commonly give packuments, so a
    # silent upstream is cached as long as a talkative one would be: a new version shows
    # up within 5 minutes, which npm users already live with. 0 turns the heuristic off.
    default_ttl: float = 300.0
    feed_lifetime: float = 86_400.0       # freshness of event-covered entries while the feed vouches
    rate: float = 500.0                   # per-client tokens per second
    burst: float = 1000.0
    coalesce_waiters: int = 1000
    coalesce_timeout: float = 15.0
    warm_top: int = 500                   # popular keys warmed at start
    warm_concurrency: int = 16
    warm: bool = True
    stats_interval: float = 10.0
    heartbeat_interval: float = 30.0
    token: str | None = None              # for /-/v1/stats and /-/v1/edges (scope edge or admin)
    edge_id: str | None = None
    workers: int = 1
    worker_index: int = 0
    quiet: bool = True

    @property
    def upstream_url(self) -> str:
        """Where misses go: the parent edge when there is one, else the upstream."""
        return (self.parent or self.upstream).rstrip("/")

    @property
    def identity(self) -> str:
        return self.edge_id or f"{self.region}-{socket.gethostname()}-{self.port}"
