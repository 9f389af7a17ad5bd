"""The one seam to an origin: its read API over HTTP (aiohttp), nothing else.

The mirror may not import the origin (an air-gapped site must not need it), so everything it
learns comes through here: ``/-/health`` (the registry id, the head seq), the changes feed,
packuments (full and abbreviated, as bytes, never re-serialised), tarballs (each checked
against the sha512 its packument promises before anyone sees it), and ``/-/v1/popular``.

Transient failures (connection errors, 5xx, 429) are retried a few times with backoff;
whatever still fails becomes ``origin_unavailable`` here, at the boundary.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from .errors import MirrorError

ABBREVIATED = "application/vnd.npm.install-v1+json"
SPOOL_BYTES = 256 * 1024  # tarballs above this wait for the writer on disk, not in memory
_RETRIES = 4


@dataclass
class Payload:
    """A verified body: small ones in memory, big ones in a temp file the consumer closes."""

    size: int
    sha512: str
    data: bytes | None = None
    file: Any = None  # a temp file positioned at 0

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


async def _spool(response: aiohttp.ClientResponse) -> Payload:
    digest = hashlib.sha512()
    memory = bytearray()
    spool = None
    try:
        async for chunk in response.content.iter_chunked(SPOOL_BYTES):
            digest.update(chunk)
            if spool is None and len(memory) + len(chunk) <= SPOOL_BYTES:
                memory += chunk
                continue
            if spool is None:
                spool = tempfile.TemporaryFile()  # noqa: SIM115 - the consumer closes it (Payload.close)
                await asyncio.to_thread(spool.write, memory)
                memory = bytearray()
            await asyncio.to_thread(spool.write, chunk)
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    if spool is None:
        return Payload(len(memory), digest.hexdigest(), data=bytes(memory))
    size = spool.tell()
    spool.seek(0)
    return Payload(size, digest.hexdigest(), file=spool)


def package_url(base: str, name: str) -> URL:
    # npm's spelling of a scoped name in a path: the slash escaped, sent exactly as written.
    return URL(f"{base.rstrip('/')}/{name.replace('/', '%2f')}", encoded=True)


class OriginClient:
    """An aiohttp session to one origin; use as ``async with OriginClient(url) as client``."""

    def __init__(self, url: str, *, token: str | None = None, connections: int = 32, timeout: float = 120):
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OriginClient:
        connector = aiohttp.TCPConnector(limit=self._connections)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, headers=self._headers,
                                              auto_decompress=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, url: URL | str, *, accept: str | None = None, ok404: bool = False,
                   timeout: aiohttp.ClientTimeout | None = None,
                   consume: Callable[[aiohttp.ClientResponse], Awaitable[Any]] | None = None) -> tuple[int, Any, Any]:
        """GET with retries; returns (status, body, headers), the body read by ``consume`` when
        given (for 200s). A 404 is returned only when ``ok404``; other failures raise."""
        assert self._session is not None, "use OriginClient as an async context manager"
        headers = {"Accept": accept} if accept else {}
        delay = 0.2
        for attempt in range(_RETRIES):
            try:
                async with self._session.get(url, headers=headers, timeout=timeout or self._timeout) as response:
                    if response.status == 200 and consume is not None:
                        return 200, await consume(response), response.headers
                    body = await response.read()
                    if response.status == 200 or (response.status == 404 and ok404):
                        return response.status, body, response.headers
                    if response.status not in (429, 500, 502, 503, 504) or attempt == _RETRIES - 1:
                        raise MirrorError("origin_unavailable", f"GET {url} answered {response.status}: "
                                          f"{body[:300].decode(errors='replace')}")
            except (TimeoutError, aiohttp.ClientError) as exc:
                if attempt == _RETRIES - 1:
                    raise MirrorError("origin_unavailable", f"GET {url} failed: {exc!r}") from exc
            await asyncio.sleep(delay)
            delay *= 3
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _json(self, url: URL | str, **kwargs: Any) -> Any:
        _, body, _ = await self._get(url, **kwargs)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise MirrorError("origin_unavailable", f"GET {url} did not answer JSON") from exc

    async def health(self) -> dict[str, Any]:
        body = await self._json(f"{self.url}/-/health")
        if not isinstance(body, dict) or not isinstance(body.get("registry_id"), str) \
                or not isinstance(body.get("seq"), int):
            raise MirrorError("origin_unavailable", f"{self.url}/-/health has no registry_id and seq: not an origin")
        return body

    async def changes(self, since: int, limit: int = 10_000, *,
                      wait: float | None = None) -> tuple[list[dict[str, Any]], int]:
        """One page of the feed after ``since``: (events, last_seq). ``wait`` long-polls that long."""
        url = f"{self.url}/-/v1/changes?since={since}&limit={limit}"
        timeout = None
        if wait:
            url += f"&feed=longpoll&timeout={int(wait * 1000)}"
            timeout = aiohttp.ClientTimeout(total=wait + 30, sock_connect=10)
        body = await self._json(url, timeout=timeout)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise MirrorError("origin_unavailable", f"{url} is not a changes feed page")
        return body["results"], int(body.get("last_seq", since))

    async def packument(self, name: str, *, abbreviated: bool) -> tuple[bytes | None, int]:
        """The packument's bytes as served and its ``Eghact-Seq``; None when the origin says 404
        (unpublished, or never there)."""
        status, body, headers = await self._get(package_url(self.url, name),
                                                accept=ABBREVIATED if abbreviated else "application/json",
                                                ok404=True)
        seq = int(headers.get("Eghact-Seq", "0") or 0)
        return (None if status == 404 else body), seq

    async def tarball(self, url: str, sha512: str) -> Payload:
        """Fetch a tarball and check it against ``sha512`` (from its packument's integrity).
        Bodies over SPOOL_BYTES go to a temp file as they arrive: memory stays bounded by the
        number of fetches in flight, whatever the tarballs weigh."""
        _, payload, _ = await self._get(URL(url, encoded=True), consume=_spool)
        if payload.sha512 != sha512:
            payload.close()
            raise MirrorError("digest_mismatch", f"the origin served {url} with sha512 {payload.sha512[:16]}..., "
                              f"its packument promises {sha512[:16]}...: refusing to carry a tarball that fails "
                              "its integrity")
        return payload

    async def popular(self, limit: int) -> list[str] | None:
        """Names from ``/-/v1/popular``, most popular first; None when the origin has no such endpoint."""
        status, body, _ = await self._get(f"{self.url}/-/v1/popular?limit={limit}", ok404=True)
        if status == 404:
            return None
        try:
            return popular_names(json.loads(body))[:limit]
        except (ValueError, TypeError) as exc:
            raise MirrorError("origin_unavailable", f"/-/v1/popular answered something unexpected: {exc}") from exc


def popular_names(body: Any) -> list[str]:
    """The names in a popularity answer. The endpoint is being written (edge issue) and its
    exact shape is not fixed yet, so this accepts the plausible ones: a list, or an object
    holding one under ``objects``/``packages``/``popular``/``results``/``items``, of names or
    of objects with ``name`` (or ``package.name``)."""
    items = body
    if isinstance(body, dict):
        items = next((body[k] for k in ("objects", "packages", "popular", "results", "items") if k in body), None)
    if not isinstance(items, list):
        raise ValueError("no list of packages")
    names: list[str] = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("name") or (item.get("package") or {}).get("name")
        if not isinstance(item, str):
            raise ValueError(f"an entry without a name: {item!r}")
        names.append(item)
    return names
