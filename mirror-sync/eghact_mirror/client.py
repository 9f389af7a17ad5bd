"""The one seam to an origin: its read API over HTTP (aiohttp), nothing else.

The mirror may not import the origin (an air-gapped site must not need it), so everything it
learns comes through here: ``/-/health`` (the registry id, the head seq), the changes feed,
packuments (full and abbreviated, as bytes, never re-serialised), tarballs (each checked
against the sha512 its packument promises before anyone stores it), and ``/-/v1/popular``.

Packuments and tarballs are read in bulk (:meth:`OriginClient.packuments`,
:meth:`OriginClient.tarballs`) through the origin's batch read, ``POST /-/v1/batch``, hundreds
per request, with each package's tarball list (``DISTS``: version, file, sha512, size) so that
the collector need not parse packuments to find tarballs. An upstream without it — an older
origin, an edge, a plain npm registry — answers 404 or 405, and from then on the same calls
make one GET per item, concurrently (and an origin without the tarball list answers a
packument instead, which the collector then parses).
An item the batch could not serve (a 5xx frame, a link not shaped ``/<name>/-/<file>``) goes by
GET.

Transient failures (connection errors, 5xx, 429, a batch answer cut short) are retried a few
times with backoff; whatever still fails becomes ``origin_unavailable`` here, at the boundary.

Every body is read within a cap (``limits``): a tarball within the size its list gives, or
``--max-tarball-bytes``; a document within ``--max-document-bytes``; an error answer is cut.
A body over its cap is refused at once, not retried: the origin meant to send it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from eghact_common import protocol
from eghact_common.bodies import read_limited
from eghact_common.wire import ABBREVIATED_TYPE

from . import batch
from .errors import MirrorError
from .limits import ERROR_BYTES, Cap, Limits
from .payload import SPOOL_BYTES, Payload, spool

__all__ = ["ABBREVIATED", "DISTS", "SPOOL_BYTES", "OriginClient", "Packuments", "Payload", "load_json", "package_url",
           "popular_names"]

ABBREVIATED = ABBREVIATED_TYPE  # the name this module's callers use
DISTS = "application/vnd.eghact.dists+json"  # the batch read's tarball list of a packument
_RETRIES = 4
_RETRY_STATUS = (429, 500, 502, 503, 504)
_GETS = 24  # GETs in flight when the origin has no batch read


@dataclass(frozen=True)
class Packuments:
    full: bytes | None
    full_seq: int
    abbreviated: bytes | None
    abbreviated_seq: int
    # [(version, tarball file, sha512 hex, size)] as of dists_seq, or None (not offered)
    dists: tuple[list[tuple[str, str, str, int]], int] | None
    # The uplink a pulled package came from (its tarball list says so), None for a local one.
    # Its list gives size 0 for a tarball the origin has not fetched, and sha512 "" for one of
    # an old package with only a sha1 to check it by (not mirrored: nothing to check it by).
    uplink: str | None = None


def load_json(body: bytes, what: str) -> Any:
    """``body`` parsed, or ``origin_unavailable``. Not ``eghact_common.bodies.parse_json``,
    whose depth check makes a feed page of 10,000 events cost 34 ms instead of json.loads'
    13 (a full export parses every page): nothing here walks what the origin sends
    recursively, only the parse itself recurses, and a nesting too deep for it (a
    RecursionError, which crashed the run) is refused here."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MirrorError("origin_unavailable", f"{what} is not JSON: {str(exc)[:200]}") from None


def _dists(body: bytes, name: str, seq: int) -> tuple[tuple[list[tuple[str, str, str, int]], int] | None,
                                                     str | None]:
    """The tarball list's entries and its seq (None: the packument decides, when it is not the
    expected shape), and the uplink it names for a pulled package."""
    try:
        doc = json.loads(body)
        rows = doc["dists"]
        uplink = doc.get("uplink") if isinstance(doc.get("uplink"), str) else None
        if doc.get("name") != name or not all(len(row) == 4 for row in rows):
            return None, uplink
        dists = [(str(v), str(f), str(h), z) for v, f, h, z in rows]
        # Length only: bytes.fromhex (the collector's key for each) refuses what is not hex.
        # A size is what each tarball is read within: a whole number, or the list is not used.
        if not all((len(h) == 128 or (uplink is not None and not h)) and type(z) is int and z >= 0
                   for _, _, h, z in dists):
            return None, uplink
        return (dists, seq), uplink
    except (ValueError, TypeError, KeyError, RecursionError, AttributeError):
        return None, None


async def _spool(response: aiohttp.ClientResponse, cap: Cap) -> Payload:
    return await spool(response.content.iter_chunked(SPOOL_BYTES), cap=cap)


async def _read(response: aiohttp.ClientResponse, cap: Cap) -> bytes:
    body = await read_limited(response.content, cap.limit)
    if body is None:
        raise cap.refusal()
    return body


def _declared(response: aiohttp.ClientResponse, cap: Cap) -> None:
    """Refuse a body whose Content-Length passes its cap, before reading it. An encoded body's
    length is not its decoded size (a gzipped tarball may be a little bigger): the read decides."""
    if response.content_length is not None and response.headers.get("Content-Encoding", "identity") == "identity":
        cap.check(response.content_length, declared=True)


async def _error_text(response: aiohttp.ClientResponse) -> str:
    # Only shown: its first bytes (what has arrived of them), never the whole of an endless one.
    return (await response.content.read(ERROR_BYTES))[:300].decode(errors="replace")


def _path(name: str) -> str:
    return "/" + name.replace("/", "%2f")


async def _bytes(payload: Payload) -> bytes:
    if payload.data is not None:
        return bytes(payload.data)  # a document is parsed, and kept: not a view of a whole chunk
    return await asyncio.to_thread(payload.file.read)  # a giant packument, spooled


def package_url(base: str, name: str) -> URL:
    # npm's spelling of a scoped name in a path: the slash escaped, sent exactly as written.
    return URL(f"{base.rstrip('/')}/{name.replace('/', '%2f')}", encoded=True)


class OriginClient:
    """An aiohttp session to one origin; use as ``async with OriginClient(url) as client``."""

    def __init__(self, url: str, *, token: str | None = None, connections: int = 32, timeout: float = 120,
                 limits: Limits | None = None):
        self.url = url.rstrip("/")
        self.limits = limits or Limits()
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10)
        self._session: aiohttp.ClientSession | None = None
        self._batch: bool | None = None  # None until the origin has answered a batch read
        self._gets = asyncio.Semaphore(_GETS)

    async def __aenter__(self) -> OriginClient:
        connector = aiohttp.TCPConnector(limit=self._connections)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, headers=self._headers,
                                              auto_decompress=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, url: URL | str, *, cap: Cap, accept: str | None = None, ok404: bool = False,
                   timeout: aiohttp.ClientTimeout | None = None,
                   consume: Callable[[aiohttp.ClientResponse, Cap], Awaitable[Any]] = _read) -> tuple[int, Any, Any]:
        """GET with retries; returns (status, body, headers), a 200's body read by ``consume``
        within ``cap`` (bytes by default). A 404 is returned (with no body) only when
        ``ok404``; other failures raise."""
        assert self._session is not None, "use OriginClient as an async context manager"
        headers = {"Accept": accept} if accept else {}
        delay = 0.2
        for attempt in range(_RETRIES):
            try:
                async with self._session.get(url, headers=headers, timeout=timeout or self._timeout) as response:
                    if response.status == 200:
                        _declared(response, cap)
                        return 200, await consume(response, cap), response.headers
                    if response.status == 404 and ok404:
                        return 404, b"", response.headers
                    if response.status not in (429, 500, 502, 503, 504) or attempt == _RETRIES - 1:
                        raise MirrorError("origin_unavailable", f"GET {url} answered {response.status}: "
                                          f"{await _error_text(response)}")
            except (TimeoutError, aiohttp.ClientError) as exc:
                if attempt == _RETRIES - 1:
                    raise MirrorError("origin_unavailable", f"GET {url} failed: {exc!r}") from exc
            await asyncio.sleep(delay)
            delay *= 3
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _json(self, url: URL | str, **kwargs: Any) -> Any:
        _, body, _ = await self._get(url, cap=self.limits.document(f"GET {url}"), **kwargs)
        return load_json(body, f"the answer to GET {url}")

    async def health(self) -> dict[str, Any]:
        body = await self._json(f"{self.url}/-/health")
        if not isinstance(body, dict) or not isinstance(body.get("registry_id"), str) \
                or not isinstance(body.get("seq"), int):
            raise MirrorError("origin_unavailable", f"{self.url}/-/health has no registry_id and seq: not an origin")
        # Before anything is read: a changed feed or batch format misread would make a bundle
        # that looks whole and is not (eghact_common.protocol).
        reason = protocol.incompatibility(body.get("protocol"))
        if reason is not None:
            raise MirrorError("incompatible", f"{self.url} cannot be mirrored by this eghact-mirror: {reason}",
                              detail={"protocol": body.get("protocol"), "supported": str(protocol.SUPPORTED)})
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
                                                cap=self.limits.document(f"the packument of {name}"),
                                                accept=ABBREVIATED if abbreviated else "application/json",
                                                ok404=True)
        seq = int(headers.get("Eghact-Seq", "0") or 0)
        return (None if status == 404 else body), seq

    async def tarball(self, url: str, sha512: str, size: int | None = None) -> Payload:
        """Fetch a tarball and check it against ``sha512`` (from its packument's integrity),
        reading at most ``size`` bytes (from the tarball list; None: ``--max-tarball-bytes``).
        Bodies over SPOOL_BYTES go to a temp file as they arrive: memory stays bounded by the
        number of fetches in flight, whatever the tarballs weigh."""
        _, payload, _ = await self._get(URL(url, encoded=True), cap=self.limits.tarball(url, size), consume=_spool)
        payload.expected, payload.label = sha512, url
        try:
            payload.digest()
        except MirrorError:
            payload.close()
            raise
        return payload

    async def packuments(self, names: list[str]) -> list[Packuments]:
        """Each name's packuments as served (full and abbreviated, with their ``Eghact-Seq``;
        None for one the origin answers 404: unpublished, or never there) and, where the origin
        has it, the tarball list of its batch read (``dists``), so that no packument need be
        parsed to learn which tarballs to fetch."""
        paths = [path for name in names for path in (_path(name),) * 3]
        items = [path if k % 3 == 0 else {"path": path, "accept": ABBREVIATED if k % 3 == 1 else DISTS}
                 for k, path in enumerate(paths)]
        found: list[tuple[bytes | None, int] | None] = [None] * len(paths)
        dists: list[tuple[list[tuple[str, str, str, int]], int] | None] = [None] * len(names)
        uplinks: list[str | None] = [None] * len(names)
        caps = [self.limits.document(f"the packument of {names[k // 3]}") for k in range(len(paths))]
        for k, frame in enumerate(await self._read_many(items, paths, caps) or ()):
            if k % 3 == 2:
                # An origin without the tarball list answers the full packument (any other
                # Accept asks for it): told apart by its type, and then simply not used.
                if frame.status == 200 and frame.headers.get("content-type", "").startswith(DISTS):
                    dists[k // 3], uplinks[k // 3] = _dists(await _bytes(frame.payload), names[k // 3],
                                                            int(frame.headers.get("eghact-seq", "0") or 0))
            elif frame.status in (200, 404):
                body = await _bytes(frame.payload) if frame.status == 200 else None
                found[k] = (body, int(frame.headers.get("eghact-seq", "0") or 0))
            frame.payload.close()
        # No batch read, or items it could not serve: the single read decides (and retries).
        missing = [k for k, got in enumerate(found) if got is None and k % 3 != 2]
        singles = await asyncio.gather(*(self._gate(self.packument(names[k // 3], abbreviated=k % 3 == 1))
                                         for k in missing))
        for k, got in zip(missing, singles, strict=True):
            found[k] = got
        packs: list[Packuments] = []
        for n in range(len(names)):
            full, short = found[3 * n], found[3 * n + 1]
            assert full is not None and short is not None  # for the type checker: every gap was filled
            packs.append(Packuments(full[0], full[1], short[0], short[1], dists[n], uplinks[n]))
        return packs

    async def tarballs(self, links: list[tuple[str, str, str, int | None]]) -> list[Payload]:
        """The tarballs of ``links`` ((package name, url, sha512, size or None)), in order, each
        read within its size (see ``limits``). Each is checked against its sha512 before it is
        stored (:meth:`Payload.digest`, by whoever stores it).

        The batch read asks for ``/<name>/-/<file>`` at *this* URL, whatever host the link
        names: behind an edge or a proxy, the origin renders links for itself, and the exporter
        must not need to reach it. The bytes are checked by digest, so where they come from
        does not matter. A GET (no batch read) follows the link, as npm would."""
        found: list[Payload | None] = [None] * len(links)
        try:
            relative = [(i, url.find(f"/{name}/-/")) for i, (name, url, _, _) in enumerate(links)]
            batchable = [(i, links[i][1][at:]) for i, at in relative if at >= 0]
            paths = [path for _, path in batchable]
            caps = [self.limits.tarball(links[i][1], links[i][3]) for i, _ in batchable]
            for (i, _), frame in zip(batchable, await self._read_many(list(paths), paths, caps) or (), strict=False):
                if frame.status == 200:
                    frame.payload.expected, frame.payload.label = links[i][2], links[i][1]
                    found[i] = frame.payload
                else:
                    frame.payload.close()
            missing = [i for i, payload in enumerate(found) if payload is None]
            singles = await asyncio.gather(*(self._gate(self.tarball(*links[i][1:])) for i in missing))
            for i, payload in zip(missing, singles, strict=True):
                found[i] = payload
        except BaseException:
            for payload in found:
                if payload is not None:
                    payload.close()
            raise
        return [payload for payload in found if payload is not None]

    async def _gate(self, call: Awaitable[Any]) -> Any:
        async with self._gets:
            return await call

    async def _read_many(self, items: list[Any], paths: list[str], caps: list[Cap]) -> list[batch.Frame] | None:
        """The frames of ``items`` (batch reads of at most batch.MAX_ITEMS), each body within
        its cap, or None when the origin has no batch read."""
        frames: list[batch.Frame] = []
        try:
            for start in range(0, len(items), batch.MAX_ITEMS):
                end = start + batch.MAX_ITEMS
                got = await self._post_batch(items[start:end], paths[start:end], caps[start:end])
                if got is None:
                    for frame in frames:
                        frame.payload.close()
                    return None
                frames += got
        except BaseException:
            for frame in frames:
                frame.payload.close()
            raise
        return frames

    async def _post_batch(self, items: list[Any], paths: list[str], caps: list[Cap]) -> list[batch.Frame] | None:
        if self._batch is False or not items:
            return None if self._batch is False else []
        assert self._session is not None, "use OriginClient as an async context manager"
        # The only headers read from frames (Content-Type tells a tarball list from a packument
        # an older origin answers instead): the rest are left out, and the origin skips them.
        url = f"{self.url}/-/v1/batch?headers=Eghact-Seq,Content-Type"
        # A batch may be long: what must not stall is each read, not the whole answer.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self._timeout.total)
        delay = 0.2
        for attempt in range(_RETRIES):
            try:
                async with self._session.post(url, json=items, timeout=timeout) as response:
                    if response.status == 200 and response.content_type == batch.MEDIA_TYPE:
                        self._batch = True
                        return await batch.read_frames(response.content, paths, caps)
                    if response.status in (404, 405) or (response.status == 200 and not self._batch):
                        self._batch = False  # an origin without it, an edge, a plain npm registry
                        return None
                    if response.status not in _RETRY_STATUS or attempt == _RETRIES - 1:
                        raise MirrorError("origin_unavailable", f"POST {url} answered {response.status}: "
                                          f"{await _error_text(response)}")
            except (TimeoutError, aiohttp.ClientError, batch.FrameError) as exc:
                if attempt == _RETRIES - 1:
                    raise MirrorError("origin_unavailable", f"POST {url} failed: {exc!r}") from exc
            await asyncio.sleep(delay)
            delay *= 3
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def popular(self, limit: int) -> list[str] | None:
        """Names from ``/-/v1/popular``, most popular first; None when the origin has no such endpoint."""
        url = f"{self.url}/-/v1/popular?limit={limit}"
        status, body, _ = await self._get(url, cap=self.limits.document(f"GET {url}"), ok404=True)
        if status == 404:
            return None
        try:
            return popular_names(load_json(body, f"the answer to GET {url}"))[:limit]
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
