"""Issue 14 item 3: ``POST /-/v1/resolve`` across local packages and packages pulled from an
upstream registry. Two real origins: the upstream, and a local one whose ``fetch_missing``
copies packages from it over HTTP (``pull_from_origin.py``, where the uplink service will be)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from eghact_origin.auth import hash_token
from eghact_origin.http.appkeys import RESOLUTIONS

from ..conftest import LiveOrigin, start_origin
from ..support import escaped, manifest, publish_body
from .pull_from_origin import CopyFromOrigin


@dataclass
class Pair:
    upstream: LiveOrigin
    local: LiveOrigin
    copier: CopyFromOrigin
    admin: str  # a token of both origins' stores, for publishing and /-/metrics

    async def publish(self, where: LiveOrigin, name: str, version: str, **extra: Any) -> dict[str, Any]:
        body = publish_body(manifest(name, version, **extra))
        await self.put(where, name, body)
        return body

    async def put(self, where: LiveOrigin, name: str, body: dict[str, Any]) -> None:
        async with where.session.put(f"{where.url}/{escaped(name)}", json=body,
                                     headers=where.auth(self.admin)) as response:
            assert response.status == 201, await response.text()

    async def upstream_has(self, universe: dict[str, list[tuple[str, dict[str, Any]]]]) -> None:
        for name, versions in universe.items():
            for version, extra in versions:
                await self.publish(self.upstream, name, version, **extra)

    async def resolve(self, where: LiveOrigin, request: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
        async with where.session.post(f"{where.url}/-/v1/resolve", json=request) as response:
            return response.status, await response.json(), response.headers.get("Eghact-Resolution", "")

    async def pulled(self) -> dict[str, float]:
        """The local origin's pull counters by phase (walk, retry)."""
        async with self.local.session.get(f"{self.local.url}/-/metrics", headers=self.local.auth(self.admin)) as r:
            text = await r.text()
        found = {}
        for line in text.splitlines():
            if line.startswith("eghact_origin_resolve_pulled_names_total{"):
                phase = line.split('phase="')[1].split('"')[0]
                found[phase] = float(line.rsplit(" ", 1)[1])
        return found


Start = Callable[..., Awaitable[Pair]]


@pytest.fixture
async def two_origins(tmp_path: Path) -> AsyncIterator[Start]:
    """``await two_origins(**settings)``: an upstream origin, and a local one with those
    settings that pulls what it lacks from the upstream."""
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def start(**overrides: object) -> Pair:
            up_runner, up_url = await start_origin(tmp_path / "upstream")
            stack.push_async_callback(up_runner.cleanup)
            copier = CopyFromOrigin(up_url)
            runner, url = await start_origin(tmp_path / "local", fetch_missing=copier, **overrides)
            stack.push_async_callback(runner.cleanup)
            upstream = LiveOrigin(up_url, up_runner.app, tmp_path / "upstream", session)
            local = LiveOrigin(url, runner.app, tmp_path / "local", session)
            copier.into(local.registry, session)
            admin = upstream.token("admin")
            local.registry.store.create_token_sync("admin", hash_token(admin), ["admin"], actor="test")
            return Pair(upstream, local, copier, admin)

        yield start


def plugin(**extra: Any) -> dict[str, Any]:
    return {"eghact": {"version": "^2.0.0", "type": "component"}, **extra}


# board -> widgets -> layout -> geometry (-> canvas-shim, an optional peer), with an optional
# dependency (fast-path), a peer (ui-core) and an npm: alias (chart-lib -> charts)
BOARD = plugin(dependencies={"widgets": "^1.0.0", "chart-lib": "npm:charts@^2.0.0"},
               optionalDependencies={"fast-path": "^1.0.0"}, peerDependencies={"ui-core": "^3.0.0"})
CLOSURE: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "widgets": [("1.0.0", plugin(dependencies={"layout": "^2.0.0"})),
                ("1.2.0", plugin(dependencies={"layout": "^2.1.0"}))],
    "layout": [("2.0.0", {"dependencies": {"geometry": "~1.0.0"}}),
               ("2.1.0", {"dependencies": {"geometry": "~1.0.0"}})],
    "geometry": [("1.0.0", {}), ("1.0.5", {"peerDependencies": {"canvas-shim": "^1.0.0"},
                                           "peerDependenciesMeta": {"canvas-shim": {"optional": True}}})],
    "canvas-shim": [("1.0.0", {})],
    "fast-path": [("1.0.0", {})],
    "ui-core": [("3.0.0", {}), ("3.1.0", {})],
    "charts": [("2.0.0", {}), ("2.3.0", {})],
}
PULLED = set(CLOSURE)


async def board_everywhere(pair: Pair) -> None:
    """The closure upstream only; ``board`` in both (the same bytes: the reference resolution
    on the upstream must be the same package)."""
    await pair.upstream_has(CLOSURE)
    body = publish_body(manifest("board", "1.0.0", **BOARD))
    await pair.put(pair.upstream, "board", body)
    await pair.put(pair.local, "board", body)


async def test_a_closure_absent_locally_is_pulled_by_the_walk_and_resolves_as_if_local(two_origins: Start) -> None:
    pair = await two_origins()
    await board_everywhere(pair)
    request = {"dependencies": {"board": "^1.0.0"}}

    # two askers at once: one build, each package copied once
    (status, lock, digest), again = await asyncio.gather(pair.resolve(pair.local, request),
                                                         pair.resolve(pair.local, request))
    assert status == 200, lock
    assert again == (status, lock, digest)
    status, reference, _ = await pair.resolve(pair.upstream, request)
    assert status == 200, reference
    as_local = json.loads(json.dumps(reference).replace(pair.upstream.url, pair.local.url))
    assert lock == as_local
    versions = {entry["name"]: entry["version"] for entry in lock["packages"].values()}
    assert versions == {"board": "1.0.0", "widgets": "1.2.0", "layout": "2.1.0", "geometry": "1.0.5",
                        "fast-path": "1.0.0", "ui-core": "3.1.0", "charts": "2.3.0"}
    assert lock["packages"]["node_modules/chart-lib"]["name"] == "charts"  # the npm: alias's folder

    # everything came from the walk, before the build, each name once; the alias target too
    assert set(pair.copier.asked) == PULLED and len(pair.copier.asked) == len(PULLED)
    assert set(pair.copier.copied.values()) == {1}
    assert pair.copier.calls[0] == sorted(["widgets", "charts", "fast-path", "ui-core"])
    assert await pair.pulled() == {"walk": len(PULLED), "retry": 0}

    # the built resolution names the pulled packages among those it considered
    async with pair.local.session.get(f"{pair.local.url}/-/v1/resolutions/{digest}") as response:
        keys = set(response.headers["Surrogate-Key"].split())
    assert {f"pkg:{name}" for name in PULLED} <= keys  # the alias's target too


async def test_a_dependency_reached_only_by_the_version_chosen_is_fetched_after_the_build(two_origins: Start) -> None:
    pair = await two_origins()
    # parser@1.1.0 is the latest, but needs framework 3; under framework 2.5 the solver takes
    # 1.0.0, whose dependency the walk (which follows the latest) never saw
    await pair.upstream_has({
        "parser": [("1.0.0", plugin(dependencies={"old-lexer": "^1.0.0"})),
                   ("1.1.0", {"eghact": {"version": "^3.0.0", "type": "component"},
                              "dependencies": {"new-lexer": "^1.0.0"}})],
        "old-lexer": [("1.0.0", {})],
        "new-lexer": [("1.0.0", {})],
    })
    await pair.publish(pair.local, "reader", "1.0.0", **plugin(dependencies={"parser": "^1.0.0"}))
    status, lock, _ = await pair.resolve(pair.local, {"dependencies": {"reader": "^1.0.0"}, "framework": "2.5.0"})
    assert status == 200, lock
    versions = {entry["name"]: entry["version"] for entry in lock["packages"].values()}
    assert versions == {"reader": "1.0.0", "parser": "1.0.0", "old-lexer": "1.0.0"}
    assert pair.copier.calls == [["parser"], ["new-lexer"], ["old-lexer"]]
    assert await pair.pulled() == {"walk": 2, "retry": 1}


def rows(origin: LiveOrigin, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(origin.data_dir / "registry.sqlite3") as conn:
        return conn.execute(sql).fetchall()


async def test_a_name_the_upstream_lacks_is_the_usual_422_and_is_not_kept(two_origins: Start) -> None:
    pair = await two_origins()
    await pair.publish(pair.local, "lonely", "1.0.0", **plugin(dependencies={"nowhere": "^1.0.0"}))
    request = {"dependencies": {"lonely": "^1.0.0"}}
    status, body, _ = await pair.resolve(pair.local, request)
    assert status == 422 and body["error"] == "unresolvable", body
    assert body["detail"]["conflict"]["package"] == "nowhere" and body["detail"]["conflict"]["missing"] is True
    # an upstream's 404 is a fact of the moment: the answer was not stored ...
    assert rows(pair.local, "SELECT COUNT(*) FROM resolutions") == [(0,)]
    # ... so once the upstream has the name, the same request resolves (no local event needed)
    await pair.publish(pair.upstream, "nowhere", "1.0.0")
    status, lock, _ = await pair.resolve(pair.local, request)
    assert status == 200, lock
    assert {e["name"] for e in lock["packages"].values()} == {"lonely", "nowhere"}
    assert pair.copier.asked == ["nowhere", "nowhere"]


async def test_a_closure_beyond_the_name_bound_is_refused_with_413_before_fetching_beyond(two_origins: Start) -> None:
    pair = await two_origins(resolve_fetch_max_names=3)
    libs = [f"lib-{i}" for i in range(5)]
    await pair.upstream_has({name: [("1.0.0", {})] for name in libs})
    await pair.publish(pair.local, "wide", "1.0.0", **plugin(dependencies={name: "^1.0.0" for name in libs}))
    status, body, _ = await pair.resolve(pair.local, {"dependencies": {"wide": "*"}})
    assert status == 413 and body["error"] == "closure_too_large", body
    assert body["detail"]["limit"] == 3
    assert pair.copier.asked == []
    assert rows(pair.local, "SELECT COUNT(*) FROM resolutions") == [(0,)]


async def test_builds_again_at_most_resolve_fetch_rounds_times(two_origins: Start) -> None:
    pair = await two_origins(resolve_fetch_rounds=0)
    await pair.upstream_has({
        "parser": [("1.0.0", plugin(dependencies={"old-lexer": "^1.0.0"})),
                   ("1.1.0", {"eghact": {"version": "^3.0.0", "type": "component"}})],
        "old-lexer": [("1.0.0", {})],
    })
    await pair.publish(pair.local, "reader", "1.0.0", **plugin(dependencies={"parser": "^1.0.0"}))
    status, body, _ = await pair.resolve(pair.local, {"dependencies": {"reader": "*"}, "framework": "2.5.0"})
    assert status == 413 and body["error"] == "closure_too_large" and body["detail"]["rounds"] == 0, body
    assert "old-lexer" not in pair.copier.asked


async def test_the_fetch_deadline_is_a_503_not_a_hang(two_origins: Start) -> None:
    pair = await two_origins(resolve_fetch_seconds=0.0)
    await pair.upstream_has({"far-lib": [("1.0.0", {})]})
    await pair.publish(pair.local, "remote-user", "1.0.0", **plugin(dependencies={"far-lib": "^1.0.0"}))
    started = time.monotonic()
    status, body, _ = await pair.resolve(pair.local, {"dependencies": {"remote-user": "*"}})
    assert time.monotonic() - started < 10
    assert status == 503 and body["error"] == "closure_timeout", body
    # the fetch was not cancelled: it finishes, and what it copied is there for the next ask
    await pair.local.app[RESOLUTIONS].settle()
    assert pair.copier.copied["far-lib"] == 1


async def test_a_change_to_a_pulled_dependency_makes_the_built_resolution_stale(two_origins: Start) -> None:
    pair = await two_origins()
    await board_everywhere(pair)
    status, lock, digest = await pair.resolve(pair.local, {"dependencies": {"board": "^1.0.0"}})
    assert status == 200
    assert {e["version"] for e in lock["packages"].values() if e["name"] == "layout"} == {"2.1.0"}
    assert rows(pair.local, f"SELECT stale FROM resolutions WHERE hash='{digest}'") == [(0,)]

    # the upstream publishes layout 2.2.0; the pull-through refreshes it (a local event on layout)
    await pair.publish(pair.upstream, "layout", "2.2.0", dependencies={"geometry": "~1.0.0"})
    assert await pair.copier.copy("layout")
    await pair.local.app[RESOLUTIONS].settle()

    assert rows(pair.local, f"SELECT stale FROM resolutions WHERE hash='{digest}'") == [(1,)]
    async with pair.local.session.get(f"{pair.local.url}/-/v1/changes?limit=1000") as response:
        events = (await response.json())["results"]
    assert any(e["type"] == "resolution" and e["name"] == "layout" for e in events)
    async with pair.local.session.get(f"{pair.local.url}/-/v1/resolutions/{digest}") as response:
        rebuilt = await response.json()
    assert {e["version"] for e in rebuilt["packages"].values() if e["name"] == "layout"} == {"2.2.0"}
