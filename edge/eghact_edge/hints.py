"""Client prefetch hints: ``POST /-/v1/prefetch`` and the ``Eghact-Prefetch`` header.

A hint names what a client expects to need next: a package (its abbreviated packument,
what npm asks for), ``name@version`` (that tarball), or ``res:HASH`` (a built resolution).
Hints feed the warmer at the lowest priority, deduplicated by the warmer's queue, and each
client has its own budget (a token bucket), so hints cannot become a way to make the edge
fetch without bound. A hint that cannot be parsed is ignored, not an error: hints are
advice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eghact_common.bodies import parse_json
from eghact_common.errors import BadRequest, InvalidJson

from . import routes
from .ratelimit import RateLimiter
from .warming import HINT, Warmer

MAX_PER_REQUEST = 100
# 100 hints of at most 300 characters, with room for JSON's quoting.
MAX_BODY_BYTES = 64 * 1024
_SHAPE = "the prefetch body must be a list of names or {packages: [], tarballs: [], resolutions: []}"


def hint_key(hint: str) -> str | None:
    """The cache key a hint names, or None."""
    hint = hint.strip()
    if not hint or len(hint) > 300:
        return None
    try:
        if hint.startswith("res:"):
            route = routes.parse("/-/v1/resolutions/" + hint[4:])
            return route.key if route.kind == routes.RESOLUTION else None
        if hint.startswith("/"):
            route = routes.parse(hint)
            return route.cache_key(True) if route.kind else None
        at = hint.find("@", 1)  # a scope's own "@" is at 0
        if at > 0:
            route = routes.parse(routes.tarball_path(hint[:at], hint[at + 1:]))
        else:
            route = routes.parse("/" + routes.escaped(hint))
        return route.cache_key(True) if route.kind else None
    except BadRequest:
        return None


def parse_body(raw: bytes) -> list[str]:
    """``["a", "b@1.0.0", "res:..."]`` or ``{"packages": [...], "tarballs": [...], "resolutions": [...]}``.
    A body of another shape is 400 ``invalid_json``; items that are not strings are ignored."""
    body: Any = parse_json(raw or b"null", what="the prefetch body")
    if isinstance(body, dict):
        lists = [body.get(field, []) for field in ("packages", "tarballs", "resolutions")]
        if not all(isinstance(part, list) for part in lists):
            raise InvalidJson(_SHAPE)
        packages, tarballs, resolutions = lists
        items = [*packages, *tarballs, *("res:" + r for r in resolutions if isinstance(r, str))]
    elif isinstance(body, list):
        items = body
    else:
        raise InvalidJson(_SHAPE)
    return [item for item in items if isinstance(item, str)]


def parse_header(value: str) -> list[str]:
    return [part for part in (p.strip() for p in value.split(",")) if part]


class Hints:
    def __init__(self, warmer: Warmer, *, per_client_rate: float = 20.0, per_client_burst: float = 200.0):
        self._warmer = warmer
        self._budget = RateLimiter(per_client_rate, per_client_burst)

    def accept(self, client: str, hints: Iterable[str]) -> dict[str, int]:
        queued = ignored = 0
        for hint in list(hints)[:MAX_PER_REQUEST]:
            key = hint_key(hint)
            if key is None or self._budget.take(client) > 0:
                ignored += 1
                continue
            if self._warmer.enqueue(key, HINT):
                queued += 1
            else:
                ignored += 1
        return {"queued": queued, "ignored": ignored}
