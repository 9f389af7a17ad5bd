"""Origin settings: built once by ``main()`` and handed to ``create_app``; nothing else
reads configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .uplinks.config import UplinkConfig


@dataclass(frozen=True)
class OriginSettings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 4873
    public_url: str | None = None
    private_scopes: tuple[str, ...] = ()
    read_only: bool = False
    max_tarball_bytes: int = 50 * 1024 * 1024
    cache_bytes: int = 256 * 1024 * 1024
    feed_poll_interval: float = 1.0
    token_cache_seconds: float = 5.0
    resolver_workers: int = 2
    # POST /-/v1/resolve: an app names tens of plugins; 256 roots in 256 KiB leave room for
    # the largest real one while capping what one anonymous request may cost (issue 11).
    resolve_max_roots: int = 256
    resolve_max_body_bytes: int = 256 * 1024
    # Built resolutions kept in the database (the most fetched, then the newest): each distinct
    # request is stored, so this bounds what anonymous requests can make the store hold; at
    # 256 KiB each at most, ~2.5 GB in the worst case, a few hundred MB with real lockfiles.
    resolutions_max_stored: int = 10_000
    # A resolution whose dependencies are pulled from upstream registries (uplinks): at most this
    # many names fetched, this long waiting for them, and this many builds again after the
    # first (each after fetching what the previous one found missing). Beyond: 413
    # closure_too_large / 503 closure_timeout. The largest popular npm trees (webpack, eslint,
    # next) have 300-1,000 packages; 5,000 leaves room for many at once.
    resolve_fetch_max_names: int = 5_000
    resolve_fetch_seconds: float = 120.0
    resolve_fetch_rounds: int = 4
    # Co-usage statistics (prefetch hints): per root, the top co_usage_top names used with it,
    # weights halving every co_usage_half_life seconds.
    co_usage_top: int = 16
    co_usage_half_life: float = 7 * 86_400.0
    # SSE and long-poll followers read the changes table this many events at a time, so a
    # follower starting from seq 0 holds one page, not the whole history.
    feed_page_events: int = 500
    access_log: bool = True
    # The uplinks' pull policy (uplinks/policy.py): upstream versions younger than
    # uplink_min_age seconds are hidden, except for names matching an exempt pattern, and
    # versions an advisory of uplink_block_severity or worse names (None: none are).
    uplink_min_age: float = 0.0
    uplink_min_age_exempt: tuple[str, ...] = ()
    uplink_block_severity: str | None = None
    # Upstream registries public packages are pulled from (None: none; nothing changes).
    uplinks: UplinkConfig | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def max_request_bytes(self) -> int:
        # base64 inflates by 4/3; the JSON around the attachment is small.
        return self.max_tarball_bytes * 4 // 3 + 1024 * 1024
