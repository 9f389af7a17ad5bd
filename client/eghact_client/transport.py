"""The client's one HTTP seam: every request to an edge, the origin or a mirror goes through
:class:`Transport`, which alone holds the connection pool and turns aiohttp's failures into
:class:`TransportError` (``raise ... from exc``), so the failover above it decides on one type.

A response is read whole, within ``max_bytes`` (a ``Content-Length`` beyond it is refused
before a byte is read, a body running longer at the first byte past it): a node cannot make
the client hold more than it asked for. Each request has its own deadline (``timeout``
seconds for the whole exchange, the connection included).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported on first request: aiohttp costs 0.15 s to import, and an install with nothing to
    # do (or served from the cache) never makes one; that start-up is most of a no-work run.
    import aiohttp

__all__ = ["Response", "Transport", "TransportError"]

_CHUNK = 256 * 1024
USER_AGENT = "eghact-client/0.1"


class TransportError(Exception):
    """No usable answer: the connection failed or was cut, the deadline passed, or the body was
    longer than allowed. ``kind`` is ``connect``, ``timeout``, ``cut`` or ``too_large``."""

    def __init__(self, url: str, kind: str, message: str):
        super().__init__(f"{url}: {message}")
        self.url = url
        self.kind = kind


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class Transport:
    """One aiohttp session for a client's lifetime; use as ``async with Transport() as t``."""

    def __init__(self, *, connections: int = 16):
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _open(self) -> aiohttp.ClientSession:
        # Opened on first use: an install served from the cache never opens a connection.
        if self._session is None:
            import aiohttp

            connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections)
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": USER_AGENT},
                                                  auto_decompress=True)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, url: str, *, body: Any = None, headers: dict[str, str] | None = None,
                      timeout: float, max_bytes: int) -> Response:
        """``method url`` (``body`` sent as JSON), read whole within ``max_bytes``; raises
        :class:`TransportError`, never an aiohttp or OS exception."""
        import aiohttp

        started = time.monotonic()
        sent = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        try:
            async with asyncio.timeout(timeout):
                async with self._open().request(method, url, data=data, headers=sent,
                                                allow_redirects=False) as response:
                    declared = response.content_length
                    if declared is not None and declared > max_bytes:
                        raise TransportError(url, "too_large", f"declares {declared} bytes, more than {max_bytes}")
                    received = bytearray()
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        received += chunk
                        if len(received) > max_bytes:
                            raise TransportError(url, "too_large", f"sent more than {max_bytes} bytes")
                    return Response(url, response.status, dict(response.headers), bytes(received),
                                    time.monotonic() - started)
        except TimeoutError as exc:
            raise TransportError(url, "timeout", f"no answer within {timeout:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError(url, "connect", f"cannot connect: {exc.os_error.strerror or exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(url, "cut", f"the exchange failed: {exc or type(exc).__name__}") from exc
