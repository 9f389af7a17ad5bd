"""A real, small pull-through for tests: a ``fetch_missing`` that copies whole packages from a
second origin of ours over HTTP into the local registry, through the registry's own publish path.

It stands where the uplink service's ``ensure_many`` will (same signature and meaning: make
each name present if the upstream has it), so that resolution tests run against two real
origins and a real store, without the uplink service and without a mock. It is not the uplink:
no routing, no freshness, no single flight across calls; :meth:`CopyFromOrigin.copy` called
again copies the versions published upstream since, which is what a refresh does.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from typing import Any

import aiohttp

from eghact_common import semver
from eghact_common.errors import NotFound
from eghact_origin.auth import Principal
from eghact_origin.registry import Registry

from ..support import escaped

_PULLER = Principal("pull-through", ("admin",))


class CopyFromOrigin:
    """``await copier(names) -> {name: present}``; ``calls`` lists each call's names and
    ``copied`` counts the packages copied per name (a name is copied once per resolution)."""

    def __init__(self, upstream: str, *, concurrency: int = 16):
        self.upstream = upstream.rstrip("/")
        self.calls: list[list[str]] = []
        self.copied: Counter[str] = Counter()
        self._limit = asyncio.Semaphore(concurrency)
        self._registry: Registry | None = None
        self._session: aiohttp.ClientSession | None = None

    def into(self, registry: Registry, session: aiohttp.ClientSession) -> CopyFromOrigin:
        """Where to copy to (the local origin's registry exists only once its app is built)."""
        self._registry, self._session = registry, session
        return self

    @property
    def asked(self) -> list[str]:
        return [name for call in self.calls for name in call]

    async def __call__(self, names: list[str]) -> dict[str, bool]:
        self.calls.append(list(names))

        async def one(name: str) -> bool:
            async with self._limit:
                return await self.copy(name)

        return dict(zip(names, await asyncio.gather(*(one(name) for name in names)), strict=True))

    async def copy(self, name: str) -> bool:
        """Copy every version of ``name`` the local registry lacks, then its dist-tags; False
        when the upstream has no such package."""
        registry, session = self._registry, self._session
        if registry is None or session is None:
            raise RuntimeError("CopyFromOrigin.into() was not called")
        async with session.get(f"{self.upstream}/{escaped(name)}") as response:
            if response.status == 404:
                return False
            response.raise_for_status()
            packument: dict[str, Any] = await response.json()
        try:
            have = set((await registry.store.package_state(name)).versions)
        except NotFound:
            have = set()
        tags: dict[str, str] = packument.get("dist-tags", {})
        for version in semver.sorted_versions(packument["versions"]):
            if version.raw in have:
                continue
            doc = packument["versions"][version.raw]
            async with session.get(doc["dist"]["tarball"]) as response:
                response.raise_for_status()
                data = await response.read()
            body = {"_id": name, "name": name, "versions": {version.raw: doc},
                    "dist-tags": {tag: v for tag, v in tags.items() if v == version.raw},
                    "_attachments": {f"{name}-{version.raw}.tgz": {
                        "content_type": "application/octet-stream",
                        "data": base64.b64encode(data).decode(), "length": len(data)}}}
            await registry.put_package(_PULLER, name, body)
        tags_here = (await registry.store.package_state(name)).dist_tags  # publishes moved latest
        for tag, version_text in tags.items():
            if tags_here.get(tag) != version_text:
                await registry.set_dist_tag(_PULLER, name, tag, version_text)
        self.copied[name] += 1
        return True
