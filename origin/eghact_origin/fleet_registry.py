"""The fleet as the origin sees it: global popularity and the registered edges.

Edges count hits per cache key (``/name#a``, ``/name/-/name-1.0.0.tgz``, ...) and send
batches (``POST /-/v1/stats``); the origin adds them to one table with *forward decay*
(Cormode et al., "Forward Decay: A Practical Time Decay Model", 2009): a hit at time t
adds ``2^((t - t0) / half_life)`` instead of decaying every stored score. Ordering by the
stored value is then ordering by the decayed one at any moment, so ``popular`` is an
indexed ``ORDER BY`` and nothing is rewritten as time passes. When the exponent grows
large the table is rebased (every score scaled down, t0 moved) in one statement
(``storage/sqlite/decay.py``).

The popular list is public and edges warm it at start, so what may enter it is narrow: keys
of public packages that exist (never a private name an authorized client fetched, never a
search query string), counted only from edge tokens, for an edge id registered by the same
token, and with each token's share of a key capped (``share_cap`` decayed hits, and as much
per report): one edge token cannot post 10^9 hits and rank a key first, it can at most
weigh as much as ``share_cap`` hits of an honest edge.

Edges register and heartbeat (``POST /-/v1/edges``: region, public URL, health), so
clients can list them (``GET /-/v1/edges``) and pick the nearest; an edge not heard from
within ``edge_ttl`` is listed as not alive. A registration belongs to the token that made it:
another token cannot take the id over (403) unless the owner's token is revoked, or it is an
admin's. The public list shows what a client needs to choose (region, URL, alive, status);
an edge's upstream, feed state and last error are for admin tokens only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from eghact_common.errors import BadRequest, Forbidden

from .auth import AccessPolicy, Principal
from .storage import EdgeRecord, MetadataStore

MAX_KEYS_PER_BATCH = 50_000
MAX_KEY_LENGTH = 512
SHARE_CAP = 100_000.0   # decayed hits one edge token may add to one key


def package_of(key: str) -> str | None:
    """The package a cache key belongs to (``/@s%2fn#a`` -> ``@s/n``), or None."""
    path = key.split("#", 1)[0].split("?", 1)[0]
    if not path.startswith("/") or path.startswith("/-/"):
        return None
    segments = [unquote(s) for s in path.split("/")[1:]]
    if not segments or not segments[0]:
        return None
    first = segments[0]
    if first.startswith("@") and "/" not in first:
        return f"{first}/{segments[1]}" if len(segments) > 1 and segments[1] else None
    return first


def validate_hits(body: Any) -> tuple[str, dict[str, int]]:
    """``{"edge": id, "hits": {key: count}}``; every problem reported at once."""
    problems = []
    if not isinstance(body, dict):
        raise BadRequest("the stats body must be {\"edge\": id, \"hits\": {key: count}}", code="invalid_stats")
    edge = body.get("edge")
    if not isinstance(edge, str) or not edge or len(edge) > 200:
        problems.append("edge must be a non-empty string of at most 200 characters")
    hits = body.get("hits")
    clean: dict[str, int] = {}
    if not isinstance(hits, dict):
        problems.append("hits must be an object {key: count}")
    elif len(hits) > MAX_KEYS_PER_BATCH:
        problems.append(f"at most {MAX_KEYS_PER_BATCH} keys per batch, got {len(hits)}")
    else:
        for key, count in hits.items():
            if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
                problems.append(f"bad key {str(key)[:60]!r}")
            elif not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 10**9:
                problems.append(f"bad count for {key[:60]!r}")
            elif count:
                clean[key] = count
    if problems:
        raise BadRequest("invalid stats batch: " + "; ".join(problems[:20]), code="invalid_stats",
                         detail={"problems": problems})
    return str(edge), clean


def validate_edge(body: Any) -> dict[str, Any]:
    problems = []
    if not isinstance(body, dict):
        raise BadRequest("the body must be {\"id\", \"region\", \"url\", \"health\"}", code="invalid_edge")
    for field in ("id", "region", "url"):
        value = body.get(field)
        if not isinstance(value, str) or not value or len(value) > 300:
            problems.append(f"{field} must be a non-empty string")
    url = body.get("url")
    if isinstance(url, str) and not url.startswith(("http://", "https://")):
        problems.append("url must be an http(s) URL")
    health = body.get("health", {})
    if not isinstance(health, dict) or len(json.dumps(health)) > 16_384:
        problems.append("health must be an object of at most 16 KiB")
    if problems:
        raise BadRequest("invalid edge registration: " + "; ".join(problems), code="invalid_edge",
                         detail={"problems": problems})
    return {"id": body["id"], "region": body["region"], "url": str(url).rstrip("/"), "health": health}


class Fleet:
    def __init__(self, store: MetadataStore, *, access: AccessPolicy | None = None,
                 clock: Callable[[], float] = time.time, half_life: float = 86_400.0, edge_ttl: float = 120.0,
                 share_cap: float = SHARE_CAP):
        self._store = store
        self._access = access or AccessPolicy()
        self._clock = clock
        self._half_life = half_life
        self._edge_ttl = edge_ttl
        self._share_cap = share_cap

    def countable(self, key: str) -> str | None:
        """The public package ``key`` counts for, or None: not a package read, or private."""
        if "?" in key:
            return None
        name = package_of(key)
        return None if name is None or self._access.is_private(name) else name

    # -- popularity -----------------------------------------------------------------

    async def record_hits(self, owner: Principal, edge_id: str, hits: dict[str, int]) -> dict[str, int]:
        """Add an edge's counts; ``{"keys": counted, "ignored": left out, "capped": cut}``.
        Forbidden unless ``edge_id`` is registered by ``owner``'s token."""
        named = {key: (name, count) for key, count in hits.items() if (name := self.countable(key)) is not None}
        added = await self._store.popularity_add(owner.token_id, edge_id, named, now=self._clock(),
                                                 half_life=self._half_life, share_cap=self._share_cap)
        if added is None:
            raise Forbidden(f"edge {edge_id!r} is not registered by token {owner.name!r}: register it first "
                            "(POST /-/v1/edges)", code="edge_not_registered", detail={"edge": edge_id})
        counted, capped = added
        return {"keys": counted, "ignored": len(hits) - len(named), "capped": capped}

    async def popular(self, limit: int) -> dict[str, Any]:
        """Top keys and top packages, decayed scores as of now."""
        # Anyone reads this list: only public packages that exist, whatever was recorded
        # before (private scopes are configuration, and older data counted every key).
        keys, packages = await self._store.popularity_top(limit, self._access.name_filter(None), now=self._clock(),
                                                          half_life=self._half_life)
        return {
            "keys": [{"key": k, "score": round(s, 4)} for k, s in keys],
            "packages": [{"name": n, "score": round(s, 4)} for n, s in packages],
        }

    # -- edges ----------------------------------------------------------------------

    async def register(self, owner: Principal, edge: dict[str, Any]) -> dict[str, Any]:
        now = self._clock()
        record = EdgeRecord(edge["id"], edge["region"], edge["url"], edge["health"],
                            datetime.fromtimestamp(now, UTC).isoformat(), now)
        if not await self._store.edge_register(record, owner.token_id, admin=owner.is_admin):
            raise Forbidden(f"edge {edge['id']!r} is registered by another token", code="edge_taken",
                            detail={"edge": edge["id"]})
        return {**edge, "last_seen": now, "alive": True}

    async def edges(self, *, full: bool = False) -> list[dict[str, Any]]:
        """Registered edges; ``full`` (admins) adds what the edge reported about its upstream."""
        now = self._clock()
        listed = []
        for edge in await self._store.edge_list():
            entry: dict[str, Any] = {"id": edge.id, "region": edge.region, "url": edge.url,
                                     "registered": edge.registered, "last_seen": edge.last_seen,
                                     "alive": now - edge.last_seen < self._edge_ttl}
            if full:
                entry["health"] = edge.health
            else:
                # What a client needs to choose an edge; the upstream URL, feed state and
                # last error an edge reports stay with admins.
                status = edge.health.get("status") if isinstance(edge.health, dict) else None
                entry["health"] = {"status": status} if isinstance(status, str) else {}
            listed.append(entry)
        return listed
