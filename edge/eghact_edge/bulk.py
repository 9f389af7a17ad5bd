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

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from eghact_common.errors import UpstreamUnavailable
from eghact_common.wire import ABBREVIATED_TYPE

from .upstream import FILL, HttpUpstream, UpstreamResponse

BATCH_PATH = "/-/v1/batch"
MAX_ITEMS = 1000            # the origin's limit per request
_MAX_HEAD = 64 * 1024


class BatchUnsupported(Exception):
    """The upstream has no batch endpoint."""


async def fetch_batch(upstream: HttpUpstream,
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
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=upstream.timeout)
    try:
        async with upstream.session(FILL).post(upstream.url(BATCH_PATH), data=body, timeout=timeout,
                                         headers={"Content-Type": "application/json"}) as response:
            if response.status in (404, 405, 501):
                raise BatchUnsupported(f"{upstream.base_url} answered {response.status} to a batch")
            if response.status != 200:
                raise UpstreamUnavailable(f"the upstream's batch answered {response.status}")
            content = response.content
            for index in range(len(items)):
                line = await content.readuntil(b"\n")
                if not line.endswith(b"\n") or len(line) > _MAX_HEAD:
                    raise UpstreamUnavailable("the upstream's batch ended early")
                head = json.loads(line)
                length = int(head["length"])
                if length > upstream.max_body:
                    raise UpstreamUnavailable("a batch item exceeds the body limit", code="upstream_too_large")
                data = await content.readexactly(length)
                if await content.readexactly(1) != b"\n":
                    raise UpstreamUnavailable("the upstream's batch is out of step")
                headers = CIMultiDictProxy(CIMultiDict(head.get("headers") or {}))
                yield index, UpstreamResponse(int(head["status"]), headers, data, time.perf_counter() - started)
            upstream.answered("batch", 200, time.perf_counter() - started)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError, TypeError) as exc:
        # IncompleteReadError is an EOFError, ClientPayloadError a ClientError: a cut stream.
        upstream.failed(f"batch: {type(exc).__name__}: {exc}"[:200], "connect")
        raise UpstreamUnavailable(f"the batch from {upstream.base_url} failed") from exc
    except EOFError as exc:
        raise UpstreamUnavailable(f"the batch from {upstream.base_url} ended early") from exc
