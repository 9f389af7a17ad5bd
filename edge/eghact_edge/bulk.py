"""Bulk reads from the upstream, for warming: the origin's ``POST /-/v1/batch``.

Warming the popular list one GET at a time costs a request's work at the edge and at the
origin per key: thousands of keys take seconds that a fresh edge spends missing. A batch
asks for hundreds of paths in one request and reads the answers as frames (the format is
the origin's, documented in ``eghact_origin.http.batch``)::

    {"path": ..., "status": 200, "length": N, "headers": {...}}\\n  <N bytes>  \\n

Each frame becomes an :class:`UpstreamResponse`, exactly what a GET would have given, so
warming stores it through the same checks as any fetch. An upstream without the endpoint
(a plain npm registry, an older origin) answers 404 or 405: :class:`BatchUnsupported`, and
the caller falls back to single GETs.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from multidict import CIMultiDict, CIMultiDictProxy

from eghact_common.errors import UpstreamUnavailable
from eghact_common.wire import ABBREVIATED_TYPE

from .upstream import FILL, UpstreamClient, UpstreamResponse

BATCH_PATH = "/-/v1/batch"
MAX_ITEMS = 1000            # the origin's limit per request
_MAX_HEAD = 64 * 1024


class BatchUnsupported(Exception):
    """The upstream has no batch endpoint."""


async def fetch_batch(upstream: UpstreamClient,
                      items: list[tuple[str, bool]]) -> AsyncIterator[tuple[int, UpstreamResponse]]:
    """(index into ``items``, answer) for each (upstream path, abbreviated) asked for, in order.

    Anonymous on purpose: warming fills shared tiers, so it must see only public content.
    Raises BatchUnsupported, or UpstreamUnavailable when the stream fails or breaks off.
    """
    if len(items) > MAX_ITEMS:
        raise ValueError(f"at most {MAX_ITEMS} items per batch")
    body = json.dumps([{"path": path, "accept": ABBREVIATED_TYPE} if abbreviated else path
                       for path, abbreviated in items]).encode()
    started = time.perf_counter()
    # No total limit (a batch of a thousand tarballs takes what it takes), but no silence
    # longer than an ordinary exchange may take.
    async with upstream.stream("POST", BATCH_PATH, headers={"Content-Type": "application/json"}, body=body,
                               pool=FILL, total=None, idle=upstream.timeout, kind="batch") as response:
        if response.status in (404, 405, 501):
            raise BatchUnsupported(f"{upstream.base_url} answered {response.status} to a batch")
        if response.status != 200:
            raise UpstreamUnavailable(f"the upstream's batch answered {response.status}")
        for index in range(len(items)):
            line = await response.readuntil(b"\n")
            if not line.endswith(b"\n") or len(line) > _MAX_HEAD:
                raise response.broken("the upstream's batch ended early")
            try:
                head = json.loads(line)
                length = int(head["length"])
                status = int(head["status"])
                headers = CIMultiDictProxy(CIMultiDict(head.get("headers") or {}))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise response.broken(f"a batch frame's head is malformed: {type(exc).__name__}") from exc
            if length > upstream.max_body:
                raise UpstreamUnavailable("a batch item exceeds the body limit", code="upstream_too_large")
            data = await response.readexactly(length)
            if await response.readexactly(1) != b"\n":
                raise response.broken("the upstream's batch is out of step")
            yield index, UpstreamResponse(status, headers, data, time.perf_counter() - started)
