"""Origin settings: built once by ``main()`` and handed to ``create_app``; nothing else
reads configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
    access_log: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def max_request_bytes(self) -> int:
        # base64 inflates by 4/3; the JSON around the attachment is small.
        return self.max_tarball_bytes * 4 // 3 + 1024 * 1024
