"""Issue 11 item 3: a resolve request is bounded in size and cost, and co-usage statistics
(the load plan's prefetch hints) are learnt only from lockfiles and stay bounded."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from eghact_origin.http.appkeys import RESOLUTIONS
from eghact_origin.resolution.cousage import CoUsage
from eghact_origin.storage import SqliteMetadataStore

from ..conftest import LiveOrigin, start_origin
from ..support import cli
from .test_resolve_api import plugin, publish, universe

LAZY = ("chart", "editor", "gallery", "map", "table", "video")


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[LiveOrigin]:
    """An origin with small limits, so that the tests stay fast."""
    runner, url = await start_origin(tmp_path / "data", resolve_max_roots=8, resolve_max_body_bytes=4096,
                                     co_usage_top=2, resolutions_max_stored=5)
    async with aiohttp.ClientSession() as session:
        yield LiveOrigin(url, runner.app, tmp_path / "data", session)
    await runner.cleanup()


def rows(origin: LiveOrigin, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(origin.data_dir / "registry.sqlite3") as conn:
        return conn.execute(sql).fetchall()


def stored(origin: LiveOrigin) -> tuple[int, int, int]:
    """What resolving leaves in the database: resolutions, their names, co-usage pairs."""
    return (rows(origin, "SELECT COUNT(*) FROM resolutions")[0][0],  # type: ignore[return-value]
            rows(origin, "SELECT COUNT(*) FROM resolution_names")[0][0],
            rows(origin, "SELECT COUNT(*) FROM co_usage")[0][0])


async def resolve(origin: LiveOrigin, body: object) -> tuple[int, dict]:
    async with origin.session.post(f"{origin.url}/-/v1/resolve", json=body) as response:
        return response.status, await response.json()


async def test_too_many_roots_or_bytes_is_413_naming_the_limit_and_stores_nothing(small: LiveOrigin) -> None:
    status, body = await resolve(small, {"dependencies": {f"made-up-{i}": "*" for i in range(9)}})
    assert status == 413 and body["error"] == "too_many_roots"
    assert "at most 8" in body["message"] and body["detail"] == {"limit": 8, "roots": 9}

    padded = {"dependencies": {"made-up": "*"}, "policy": {"capabilities": {"deny": ["dom:read"] * 800}}}
    status, body = await resolve(small, padded)
    assert status == 413 and body["error"] == "payload_too_large" and "4096 bytes" in body["message"]
    await small.app[RESOLUTIONS].settle()
    assert stored(small) == (0, 0, 0)


async def test_a_declared_oversized_body_is_refused_before_it_is_sent(small: LiveOrigin) -> None:
    # The origin answers from the headers alone: it neither waits for nor reads 100 MB.
    host, port = small.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /-/v1/resolve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000000\r\n\r\n{\"dependencies\": {")
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert b" 413 " in status_line


async def test_failing_resolves_teach_no_co_usage(small: LiveOrigin) -> None:
    for i in range(20):
        status, body = await resolve(small, {"dependencies": {f"ghost-{i}-{j}": "*" for j in range(8)}})
        assert status == 422, body
    await universe(small)
    status, _ = await resolve(small, {"dependencies": {"chart": "*", "ghost": "*"}})  # a real name beside a ghost
    assert status == 422
    apache_only = {"dependencies": {"chart": "*", "editor": "*"}, "policy": {"licenses": {"allow": ["Apache-2.0"]}}}
    for _ in range(3):  # real names, refused by the policy: not used together by anyone
        status, body = await resolve(small, apache_only)
        assert status == 422 and body["error"] == "unresolvable", body
    await small.app[RESOLUTIONS].settle()
    status, lock = await resolve(small, {"dependencies": {"chart": "^1", "editor": "^2"}})
    assert status == 200 and lock["loadPlan"]["prefetch"] == {}  # nothing learnt from the failures
    await small.app[RESOLUTIONS].settle()
    assert sorted(rows(small, "SELECT name, other FROM co_usage")) == [("chart", "editor"), ("editor", "chart")]


async def test_co_usage_stays_top_k_per_root_over_many_distinct_resolutions(small: LiveOrigin) -> None:
    token = small.token("publish:*")
    for name in LAZY:
        await publish(small, token, name, "1.0.0", **plugin())
    combos = [c for k in (2, 3, 4) for c in itertools.combinations(LAZY, k)]
    for combo in combos:  # 50 distinct requests, every one a lockfile
        status, body = await resolve(small, {"dependencies": dict.fromkeys(combo, "*")})
        assert status == 200, body
    for _ in range(3):  # chart and video go together most
        await resolve(small, {"dependencies": {"chart": "^1", "video": "^1"}})
    await small.app[RESOLUTIONS].settle()
    per_root = dict(rows(small, "SELECT name, COUNT(*) FROM co_usage GROUP BY name"))
    assert set(per_root) == set(LAZY) and max(per_root.values()) == 2  # co_usage_top=2: 12 rows, not 30

    status, lock = await resolve(small, {"dependencies": {"chart": "~1", "video": "~1", "map": "~1"}})
    assert status == 200
    assert lock["loadPlan"]["prefetch"]["lazy:chart"][0] == "lazy:video"


async def test_co_usage_decays_so_new_habits_replace_old_ones(tmp_path: Path) -> None:
    now = [1_000_000.0]
    store = SqliteMetadataStore(tmp_path)
    try:
        usage = CoUsage(store, top=1, half_life=3600.0, clock=lambda: now[0])
        for _ in range(8):
            usage.learn(["a", "b"])
        await usage.flush()
        assert await usage.hints(["a", "b", "c"]) == {"a": ["b"], "b": ["a"]}
        now[0] += 4 * 3600  # 8 uses four half-lives ago weigh as 0.5 of one use now
        usage.learn(["a", "c"])
        await usage.flush()
        assert (await usage.hints(["a", "b", "c"]))["a"] == ["c"]
        now[0] += 20 * 3600  # everything decays below the floor and is deleted
        usage.learn(["x", "y"])
        await usage.flush()
        names = await store.read(lambda conn: conn.execute("SELECT name, other FROM co_usage ORDER BY name").fetchall())
        assert names == [("x", "y"), ("y", "x")]
    finally:
        store.close()


async def test_co_usage_is_not_relearnt_from_stored_requests_at_start(tmp_path: Path) -> None:
    runner, url = await start_origin(tmp_path / "data")
    async with aiohttp.ClientSession() as session:
        origin = LiveOrigin(url, runner.app, tmp_path / "data", session)
        await universe(origin)
        assert (await resolve(origin, {"dependencies": {"chart": "*", "editor": "*"}}))[0] == 200
        # a request stored by older code, whose roots were learnt from at every start
        ghost = {"dependencies": {f"ghost-{i}": "*" for i in range(400)}}
        with sqlite3.connect(origin.data_dir / "registry.sqlite3") as conn:
            conn.execute("INSERT INTO resolutions (hash, request, status, body, built_seq, built) "
                         "VALUES (?, ?, 422, x'7b7d', 0, '2026-01-01T00:00:00.000Z')", ("0" * 64, json.dumps(ghost)))
    await runner.cleanup()
    runner, url = await start_origin(tmp_path / "data")
    try:
        usage = runner.app[RESOLUTIONS].co_usage
        assert await usage.hints(["chart", "editor"]) == {"chart": ["editor"], "editor": ["chart"]}
        assert await usage.hints([f"ghost-{i}" for i in range(400)]) == {}
    finally:
        await runner.cleanup()


async def test_the_resolve_command_says_the_limit_and_exits_2(small: LiveOrigin, tmp_path: Path) -> None:
    specs = [f"made-up-{i}@*" for i in range(9)]
    result = await asyncio.to_thread(cli, "resolve", *specs, "--registry", small.url, "-o",
                                     str(tmp_path / "eghact-lock.json"), check=False, timeout=60)
    assert result.returncode == 2, result.stderr  # a bad request, not "registry unreachable" (4)
    assert "at most 8 dependencies" in result.stderr


async def test_made_up_requests_cannot_grow_the_stored_resolutions_without_bound(small: LiveOrigin) -> None:
    """Every distinct request's answer is stored (a 422 too): 40 anonymous requests for
    made-up trees used to leave 40 rows; the store keeps the most fetched, then the newest."""
    async with small.session.post(f"{small.url}/-/v1/resolve", json={"dependencies": {"made-up-0": "*"}}) as first:
        assert first.status == 422
        location = first.headers["Location"]
    async with small.session.get(small.url + location if location.startswith("/") else location) as response:
        assert response.status == 422  # stored: fetched by its hash
    for i in range(1, 40):
        status, _ = await resolve(small, {"dependencies": {f"made-up-{i}": "*"}})
        assert status == 422
    resolutions, names, _ = stored(small)
    assert resolutions == 5 and names <= 5 * 2, (resolutions, names)
    # The newest stay (made-up-0 was fetched once, but its hit is not folded in yet). One that
    # went is answered from the bounded memory cache while there, else 404: POST it again.
    newest = rows(small, "SELECT request FROM resolutions")
    assert {json.loads(r[0])["dependencies"].popitem()[0] for r in newest} == {f"made-up-{i}" for i in range(35, 40)}
    assert rows(small, f"SELECT count(*) FROM resolutions WHERE hash = '{location.rsplit('/', 1)[-1]}'") == [(0,)]
