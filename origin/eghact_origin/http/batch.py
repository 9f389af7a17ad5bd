"""``POST /-/v1/batch``: many package reads in one request, streamed back as frames.

A bulk reader — a mirror exporter, an edge warming its cache — would otherwise pay one HTTP
exchange per packument and per tarball, tens of thousands for a universe, and the origin a
request's routing, middleware and thread hops for each. A batch pays those once, reads its
items in a few snapshots and thread hops, and streams the answers as they are read.

Request: ``Content-Type: application/json``, a JSON array of at most MAX_ITEMS items. An item
is a package read path exactly as it would appear in a GET's request line (raw, so
``/@scope%2fname`` and ``/@scope/name`` both work), or an object ``{"path": PATH, "accept":
MEDIA_TYPE}`` — the corgi type asks for the abbreviated packument, as ``Accept`` does on a GET::

    ["/left-pad",
     {"path": "/left-pad", "accept": "application/vnd.npm.install-v1+json"},
     "/left-pad/1.3.0",
     "/left-pad/-/left-pad-1.3.0.tgz"]

Package read paths are packuments, version documents and tarballs. One read exists only here:
``{"path": "/left-pad", "accept": "application/vnd.eghact.dists+json"}`` answers the tarballs
the packument lists, ``{"name": NAME, "dists": [[version, file, sha512 hex, size], ...]}``
(``Content-Type`` that media type, ``Eghact-Seq`` as the packument's), read in the same kind of
snapshot: a mirror exporter learns which tarballs to fetch, and the digest to check each by,
without parsing the packument (several times the bytes). Its errors are the packument's. A
package pulled from an uplink adds ``"uplink": UPLINK`` and lists its tarballs not fetched yet
with size 0: an exporter then carries only the versions its selection needs.

A body that is not such a list is refused as a whole with a 400 and the usual JSON error body: ``invalid_json``,
``invalid_batch`` (every problem listed in ``detail.problems``, e.g. a ``/-/...`` path),
``batch_too_large`` (more than MAX_ITEMS items, or more than MAX_BODY_BYTES of request).

Response: ``200``, ``Content-Type: application/x-eghact-batch``, ``Cache-Control: no-store``,
then one frame per item, in request order::

    {"path": "/left-pad", "status": 200, "length": 1234, "headers": {"ETag": "...", ...}}\\n
    <exactly `length` bytes: the body>\\n

The header line is one JSON object (JSON escapes every newline inside it). ``status``,
``headers`` and the body are what ``GET path`` would have answered with the same token: the
caching headers, ``Eghact-Seq`` of a document, ``Eghact-Integrity`` and ``Repr-Digest`` of a
tarball — or the error it would have answered, as a JSON error body: 401/403 for a private
package the token may not read (the same rules, item by item), 404 ``not_found`` or
``unpublished``, 400 ``invalid_name``. The newline after each body lets a reader check that it
is still in step. An unexpected failure while streaming cuts the connection, so a stream that
ends before its last frame is a failed one, never a short success. Conditional requests
(``If-None-Match``) and ranges are not supported per item: a batch is for filling, not
revalidating. ``?headers=Eghact-Seq,ETag`` (names, any case) keeps only those headers in
the frames, for a reader that needs none of the rest: a mirror exporter parses tens of
thousands of frame headers, and most of each is caching advice it does not keep.

Pull-through: with uplinks, a batch reads as the single reads do. Before a chunk's look-ups,
each name a packument or version document is asked of goes through ``UplinkService.ensure``
(missing or stale pulled names fetched, behind the same gate: private scopes and local names
never leave); after them, each tarball the store lacks, or holds without bytes (pulled, not yet
fetched), goes through ``UplinkService.tarball``. At most PULL_CONCURRENCY at once; a failure
is that item's frame (502 ``uplink_unavailable``, ``uplink_integrity_mismatch``, 404), as the
single read would answer it. A mirror exporter asking for the tarballs a closure needs thus
gets them fetched for it.

Memory: look-ups go CHUNK_ITEMS at a time; bodies are read and written in groups of about
GROUP_BYTES (one item when it is bigger), at most two groups ahead of the socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiohttp import web

from eghact_common.blocking import run_blocking
from eghact_common.bodies import parse_json, read_body
from eghact_common.errors import BadRequest, EghactError, NotFound, PayloadTooLarge, Unpublished
from eghact_common.wire import ABBREVIATED_TYPE

from ..registry import Registry, Rendered
from ..storage import BlobStore, Lookup, TarballRecord
from ..uplinks.service import UplinkService
from .appkeys import ACCESS, PRINCIPAL, REGISTRY, ROUTE, SETTINGS, UPLINKS
from .packages import packument_caching, tarball_caching, version_caching
from .paths import package_path, raw_segments
from .responses import base_url, caching_headers, dumps

MEDIA_TYPE = "application/x-eghact-batch"
DISTS_TYPE = "application/vnd.eghact.dists+json"
MAX_ITEMS = 1000
MAX_BODY_BYTES = 1 << 20
MAX_PATH = 2048
CHUNK_ITEMS = 256
GROUP_BYTES = 4 << 20
PULL_CONCURRENCY = 16  # uplink fetches at once for one batch (the uplink's own pool bounds the rest)
_ERROR_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}
log = logging.getLogger("eghact.origin")


@dataclass(frozen=True)
class Item:
    path: str
    accept: str = ""


def parse_items(body: Any) -> list[Item]:
    """The items of a batch body; every problem is reported at once (``invalid_batch``)."""
    if not isinstance(body, list):
        raise BadRequest("a batch is a JSON array of paths", code="invalid_batch",
                         detail={"problems": ["the body is not a JSON array"]})
    if len(body) > MAX_ITEMS:
        raise BadRequest(f"a batch holds at most {MAX_ITEMS} items, not {len(body)}", code="batch_too_large",
                         detail={"limit": MAX_ITEMS, "items": len(body)})
    items: list[Item] = []
    problems: list[str] = []
    for i, raw in enumerate(body):
        path, accept = (raw.get("path"), raw.get("accept", "")) if isinstance(raw, dict) else (raw, "")
        if not isinstance(path, str) or not isinstance(accept, str):
            problems.append(f"item {i} is neither a path nor {{\"path\": ..., \"accept\": ...}}")
        elif not path.startswith("/") or path.startswith("/-/") or len(path) > MAX_PATH or "?" in path:
            problems.append(f"item {i}: {path[:80]!r} is not a package read path (/name, /name/version, "
                            "/name/-/file.tgz)")
        else:
            items.append(Item(path, accept))
    if problems:
        raise BadRequest("bad batch: " + "; ".join(problems[:5]), code="invalid_batch",
                         detail={"problems": problems})
    return items


def _lookup(item: Item) -> Lookup:
    """What GET ``item.path`` reads, or the error its routing raises."""
    path = package_path(raw_segments(item.path))
    rest = path.rest
    if not rest:
        if DISTS_TYPE in item.accept:
            return "packument", path.name, "dists"
        return "packument", path.name, "abbreviated" if ABBREVIATED_TYPE in item.accept else "full"
    if len(rest) == 1:
        return "version", path.name, rest[0]
    if len(rest) == 2 and rest[0] == "-":
        return "tarball", path.name, rest[1]
    raise NotFound(f"no such resource under {path.name}")


async def batch(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "batch"
    try:
        raw = await read_body(request, MAX_BODY_BYTES, "a batch request")
    except PayloadTooLarge as exc:  # documented as 400 batch_too_large, like too many items
        raise BadRequest(f"a batch request is at most {MAX_BODY_BYTES} bytes", code="batch_too_large",
                         detail={"limit_bytes": MAX_BODY_BYTES}) from exc
    items = parse_items(parse_json(raw, what="the batch body"))
    wanted = request.query.get("headers")
    keep = None if wanted is None else {name.strip().lower() for name in wanted.split(",") if name.strip()}
    response = web.StreamResponse(headers={"Content-Type": MEDIA_TYPE, "Cache-Control": "no-store"})
    await response.prepare(request)
    frames: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(2)
    producer = asyncio.ensure_future(_produce(request, items, frames, keep))
    try:
        while (chunk := await frames.get()) is not None:
            if isinstance(chunk, Exception):
                # The 200 is on the wire: an error body now would read as frames. Cutting the
                # connection is what tells the reader that the stream failed.
                log.error("batch read of %d items failed", len(items), exc_info=chunk)
                raise ConnectionResetError("batch stream cut") from chunk
            await response.write(chunk)
    finally:
        producer.cancel()
    await response.write_eof()
    return response


async def _produce(request: web.Request, items: list[Item], frames: asyncio.Queue[bytes | Exception | None],
                   keep: set[str] | None) -> None:
    """Look up, read and frame the items, a chunk at a time; ends with None, or the exception."""
    registry, access, principal = request.app[REGISTRY], request.app[ACCESS], request[PRINCIPAL]
    uplinks = request.app.get(UPLINKS)
    base = base_url(request, request.app[SETTINGS].public_url)
    public_numbering = not access.private_scopes or access.public_view(principal)
    try:
        for start in range(0, len(items), CHUNK_ITEMS):
            chunk = items[start:start + CHUNK_ITEMS]
            lookups: list[Lookup] = []
            answers: list[Rendered | TarballRecord | EghactError | None] = []
            for item in chunk:
                try:
                    lookup = _lookup(item)
                    access.check_read(principal, lookup[1])
                except EghactError as error:
                    lookups.append(_NO_LOOKUP)
                    answers.append(error)
                    continue
                lookups.append(lookup)
                answers.append(None)
            if uplinks is not None:
                await _ensure_documents(uplinks, lookups, answers)
            wanted = [lookup for lookup, answer in zip(lookups, answers, strict=True) if answer is None]
            found = iter(await registry.lookup_many(wanted, base_url=base, etags=keep is None or "etag" in keep)
                         if wanted else ())
            answered = [(item, lookup, next(found) if answer is None else answer)
                        for item, lookup, answer in zip(chunk, lookups, answers, strict=True)]
            if uplinks is not None:
                answered = await _fetch_tarballs(uplinks, answered)
            for group in _groups(answered):
                await frames.put(await _frames(registry, group, access.is_private, keep, public_numbering))
    except Exception as exc:
        await frames.put(exc)
        return
    await frames.put(None)


Answered = tuple[Item, Lookup, Rendered | TarballRecord | EghactError]
_NO_LOOKUP: Lookup = ("", "", "")  # beside an item refused before any look-up


async def _bounded(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Each call's result or the EghactError it raised, in order, PULL_CONCURRENCY at a time."""
    limit = asyncio.Semaphore(PULL_CONCURRENCY)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with limit:
            try:
                return await call()
            except EghactError as error:
                return error

    return list(await asyncio.gather(*(one(call) for call in calls)))


async def _ensure_documents(uplinks: UplinkService, lookups: list[Lookup],
                            answers: list[Rendered | TarballRecord | EghactError | None]) -> None:
    """What the single reads of packuments and version documents do first, once per name:
    pull it (or refresh it) when routing allows. A name whose pull failed answers that error
    in each of its items (502 ``uplink_unavailable`` when the store has no copy to serve)."""
    names = list(dict.fromkeys(lookup[1] for lookup, answer in zip(lookups, answers, strict=True)
                               if answer is None and lookup[0] in ("packument", "version")))
    if not names:
        return
    outcomes = dict(zip(names, await _bounded([partial(uplinks.ensure, name) for name in names]), strict=True))
    for i, lookup in enumerate(lookups):
        outcome = outcomes.get(lookup[1]) if answers[i] is None and lookup[0] in ("packument", "version") else None
        if isinstance(outcome, EghactError):
            answers[i] = outcome


async def _fetch_tarballs(uplinks: UplinkService, answered: list[Answered]) -> list[Answered]:
    """What the single tarball read does after its look-up: a tarball the store lacks (its
    package not pulled yet) or holds without bytes (pulled, not fetched yet) goes through the
    uplink service, which pulls, fetches, checks and stores it, or says why not."""
    pending: list[int] = []
    calls: list[Callable[[], Awaitable[Any]]] = []
    for i, (_, (kind, name, filename), answer) in enumerate(answered):
        if kind != "tarball":
            continue
        if isinstance(answer, TarballRecord) and answer.size == 0:
            record: TarballRecord | None = answer
        elif isinstance(answer, NotFound) and not isinstance(answer, Unpublished):
            record = None
        else:
            continue
        pending.append(i)
        calls.append(partial(uplinks.tarball, name, filename, record))
    if not calls:
        return answered
    out = list(answered)
    for i, outcome in zip(pending, await _bounded(calls), strict=True):
        out[i] = (out[i][0], out[i][1], outcome)
    return out


def _groups(answered: list[Answered]) -> Iterator[list[Answered]]:
    group: list[Answered] = []
    weight = 0
    for entry in answered:
        answer = entry[2]
        size = answer.size if isinstance(answer, TarballRecord) else \
            len(answer.body) if isinstance(answer, Rendered) else 256
        if group and weight + size > GROUP_BYTES:
            yield group
            group, weight = [], 0
        group.append(entry)
        weight += size
    if group:
        yield group


def _read_blobs(blobs: BlobStore, records: list[TarballRecord]) -> list[bytes | EghactError]:
    bodies: list[bytes | EghactError] = []
    for record in records:
        digest = record.blob_digest
        try:
            bodies.append(blobs.get(digest, record.size))
        except OSError:
            # What the single read answers for a blob its metadata names but the disk lacks.
            log.exception("blob %s is missing from the blob store", digest)
            bodies.append(EghactError("internal error; the incident is logged"))
    return bodies


# Headers a frame can carry without working out the caching advice (most of a frame's cost
# when the reader keeps only these, as a mirror exporter does).
_CHEAP_HEADERS = frozenset({"content-type", "eghact-seq"})
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# What _ENCODE would escape in a string (ensure_ascii=False leaves everything else as it is).
_ESCAPED = re.compile(r'[\x00-\x1f"\\]')


def _cheap_headers(keep: set[str], content_type: str, seq: int | None) -> str:
    """The frame's headers as JSON text, formatted directly: a mirror exporter reads tens of
    thousands of frames, and encoding a dict for each was a good part of the origin's work."""
    fields = [f'"Content-Type":"{content_type}"'] if "content-type" in keep else []
    if seq is not None and "eghact-seq" in keep:
        fields.append(f'"Eghact-Seq":"{seq}"')
    return "{" + ",".join(fields) + "}"


def _frame_head(path: str, status: int, length: int, headers: str) -> bytes:
    """``{"path": ..., "status": ..., "length": ..., "headers": {...}}`` and its newline."""
    quoted = _ENCODE(path) if _ESCAPED.search(path) else f'"{path}"'
    return f'{{"path":{quoted},"status":{status},"length":{length},"headers":{headers}}}\n'.encode()


async def _frames(registry: Registry, group: list[Answered], is_private: Any, keep: set[str] | None,
                  public_numbering: bool) -> bytes:
    """``public_numbering``: the caller sees the public numbering (storage/public_feed.py); a
    batch is never stored by a shared cache, so its seqs are the caller's, documents of
    public packages included (an exporter compares them with the feed it reads)."""
    records = [answer for _, _, answer in group if isinstance(answer, TarballRecord)]
    blobs = iter(await run_blocking(_read_blobs, registry.blobs, records) if records else ())
    # The fields asked for when all are cheap to write; None: every caching header is written.
    cheap = keep if keep is not None and keep <= _CHEAP_HEADERS else None
    parts: list[bytes] = []
    for item, lookup, answer in group:
        headers: dict[str, str] | str
        if isinstance(answer, EghactError):
            status, headers, body = answer.status, _ERROR_HEADERS, dumps(answer.to_body())
        elif isinstance(answer, TarballRecord):
            blob = next(blobs)
            if isinstance(blob, EghactError):
                status, headers, body = blob.status, _ERROR_HEADERS, dumps(blob.to_body())
            else:
                status, body = 200, blob
                headers = _cheap_headers(cheap, "application/octet-stream", None) if cheap is not None else \
                    caching_headers(**tarball_caching(answer, private=is_private(answer.name)))
        else:
            kind, name, arg = lookup
            status, body = 200, answer.body
            if cheap is not None:
                content_type = "application/json" if kind == "version" or arg == "full" else \
                    DISTS_TYPE if arg == "dists" else ABBREVIATED_TYPE
                headers = _cheap_headers(cheap, content_type, answer.seq_for(public_numbering=public_numbering))
            else:
                if kind == "packument":
                    caching = packument_caching(name, answer, abbreviated=arg == "abbreviated",
                                                private=is_private(name), public_numbering=public_numbering)
                    if arg == "dists":
                        caching["content_type"] = DISTS_TYPE
                else:
                    caching = version_caching(name, answer, private=is_private(name),
                                              public_numbering=public_numbering)
                headers = caching_headers(**caching)
        if isinstance(headers, dict):
            if keep is not None:
                headers = {name: value for name, value in headers.items() if name.lower() in keep}
            headers = _ENCODE(headers)
        parts.append(_frame_head(item.path, status, len(body), headers))
        parts.append(body)
        parts.append(b"\n")
    return b"".join(parts)
