"""From a bearer token to a :class:`Principal`, with a short-lived cache.

A lookup is one indexed SQLite read; the cache saves it on hot paths (npm sends the token
with every request). Revocation therefore takes effect within ``ttl`` seconds — stated in
the README — which is the usual trade of registries that cache auth.
"""

from __future__ import annotations

from cachetools import TTLCache

from eghact_common.errors import AuthRequired

from .auth import Principal, hash_token
from .storage import MetadataStore


class TokenResolver:
    def __init__(self, store: MetadataStore, *, ttl: float = 5.0, maxsize: int = 10_000):
        self._store = store
        self._cache: TTLCache[str, Principal | None] = TTLCache(maxsize=maxsize, ttl=ttl)

    async def principal(self, token: str | None) -> Principal | None:
        if token is None:
            return None
        digest = hash_token(token)
        if digest in self._cache:
            principal = self._cache[digest]
        else:
            record = await self._store.token_by_hash(digest)
            principal = None if record is None or record.revoked else Principal(record.name, record.scopes, record.id)
            self._cache[digest] = principal
        if principal is None:
            raise AuthRequired("the token is unknown or revoked", code="invalid_token")
        return principal
