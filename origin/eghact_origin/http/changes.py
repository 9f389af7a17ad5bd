"""``GET /-/v1/changes``: the changes feed, paged, long-poll, or Server-Sent Events.

    ?since=N&limit=M             {"results": [event, ...], "last_seq": N}   (CouchDB's shape)
    &feed=longpoll&timeout=MS    waits until something after `since` exists
    &feed=sse                    a stream: `id: <seq>`, `event: change`, `data: <event>`;
                                 resumes from `Last-Event-ID` when the client sends it

Events about private packages are shown only to principals that may read them, and a caller
who may read no private package sees the public numbering (``storage/public_feed.py``): its
seqs have no gap where a private event is, and its ``last_seq`` is the seq of the last event it
was shown (or ``since`` when there is none), so nothing in the page tells it that a private
event happened.

An SSE follower is fed from the database a page at a time (settings ``feed_page_events``,
default 500), each page read as the JSON bytes SQLite renders (no event objects) and written
before the next is read: one from seq 0 over a long history holds one page, and a slow one
holds up the reads, not the memory (issue 11: 200 followers from seq 0 took 68 to 245 MB).
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from eghact_common.errors import BadRequest

from .appkeys import ACCESS, CLOSING, NOTIFIER, PRINCIPAL, REGISTRY, REPORTER, ROUTE, SETTINGS

MAX_LIMIT = 10_000
HEARTBEAT_SECONDS = 15.0
MAX_SEQ = 2**62  # a seq beyond SQLite's INTEGER would fail in the query, not here


def _int_param(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    return _bounded_int(name, request.query.get(name), default, low=low, high=high)


def _bounded_int(name: str, raw: str | None, default: int, *, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"{name} must be an integer", code="invalid_parameter", detail={name: raw}) from exc
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}", code="invalid_parameter", detail={name: raw})
    return value


def _shown(request: web.Request, name: str) -> bool:
    access, principal = request.app[ACCESS], request[PRINCIPAL]
    return not access.is_private(name) or bool(principal and principal.can_read(name))


def _public(request: web.Request) -> bool:
    """Whether the caller reads the public numbering (it may read no private package)."""
    return request.app[ACCESS].public_view(request[PRINCIPAL])


async def changes(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "changes"
    feed = request.query.get("feed", "normal")
    since = _int_param(request, "since", 0, low=0, high=MAX_SEQ)
    limit = _int_param(request, "limit", 1000, low=1, high=MAX_LIMIT)
    if feed == "sse":
        # The same bounds as `since`: checked before the stream starts, as a 400, and not
        # as an OverflowError in the stream's first query that cuts it after its 200.
        since = _bounded_int("Last-Event-ID", request.headers.get("Last-Event-ID"), since, low=0, high=MAX_SEQ)
        return await _sse(request, since)
    if feed not in ("normal", "longpoll"):
        raise BadRequest("feed must be normal, longpoll or sse", code="invalid_parameter")
    store, public = request.app[REGISTRY].store, _public(request)
    events = await store.changes_json(since, limit, public=public)
    if not events and feed == "longpoll":
        timeout = _int_param(request, "timeout", 30_000, low=0, high=300_000) / 1000
        await request.app[NOTIFIER].wait_beyond(since, timeout, public=public)
        events = await store.changes_json(since, limit, public=public)
    # last_seq is where the reader should resume: past filtered-out events too (those of a
    # reader of the registry's numbering that may read some private packages, not all).
    last_seq = events[-1][0] if events else max(since, 0)
    shown = [event for _, name, event in events if _shown(request, name)]
    response = web.Response(body=b'{"results":[' + b",".join(shown) + b'],"last_seq":%d}' % last_seq,
                            content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


async def _sse(request: web.Request, since: int) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no",
    })
    await response.prepare(request)
    notifier, store, public = request.app[NOTIFIER], request.app[REGISTRY].store, _public(request)
    closing: asyncio.Event = request.app[CLOSING]  # type: ignore[assignment]
    reporter = request.app[REPORTER]
    page = request.app[SETTINGS].feed_page_events
    reporter.feed_clients(1)
    try:
        await response.write(b"retry: 2000\n\n")
        while not closing.is_set():
            events = await store.changes_json(since, page, public=public)
            if events:
                reporter.feed_page(len(events))
                chunk = b"".join(b"id: %d\nevent: change\ndata: %s\n\n" % (seq, event)
                                 for seq, name, event in events if _shown(request, name))
                since = events[-1][0]
                del events  # the page is in the chunk now: hold it once while the write drains
                if chunk:
                    await response.write(chunk)
                continue
            if not await notifier.wait_beyond(since, HEARTBEAT_SECONDS, public=public) and not closing.is_set():
                await response.write(b": keep-alive\n\n")
    except ConnectionResetError:
        return response
    finally:
        reporter.feed_clients(-1)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response
