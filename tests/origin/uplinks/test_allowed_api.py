"""``/-/v1/uplinks/allowed/{name}[/{version}]`` on a real origin on 127.0.0.1: admins only,
every bad name and version a 400 with its code, each change audited, and the app's hook
called with the name before the answer goes out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from eghact_origin.http.appkeys import ON_ALLOWED, REGISTRY

from ...conftest import LiveOrigin, start_origin

PREFIX = "/-/v1/uplinks/allowed"


@pytest.fixture
async def hooked(tmp_path: Path) -> AsyncIterator[tuple[LiveOrigin, list[str]]]:
    """An origin whose ON_ALLOWED hook records the names it is called with."""
    calls: list[str] = []
    apps: list[web.Application] = []

    async def reapply(name: str) -> None:
        # What the service's reapply reads: the overrides as the store has them now.
        stored = await apps[0][REGISTRY].store.uplink_allowed(name)
        calls.append(f"{name} {sorted(stored)}")

    def setup(app: web.Application) -> None:
        apps.append(app)
        app[ON_ALLOWED] = reapply

    runner, url = await start_origin(tmp_path / "data", setup=setup)
    async with aiohttp.ClientSession() as session:
        yield LiveOrigin(url, runner.app, tmp_path / "data", session), calls
    await runner.cleanup()


async def call(origin: LiveOrigin, method: str, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = origin.auth(token) if token else {}
    async with origin.session.request(method, f"{origin.url}{PREFIX}{path}", headers=headers) as response:
        assert response.content_type == "application/json"
        assert response.headers["Cache-Control"] == "no-store"
        return response.status, await response.json()


def audit_records(origin: LiveOrigin) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (origin.data_dir / "audit.jsonl").read_text().splitlines()]


async def test_an_admin_allows_lists_and_withdraws_and_the_hook_sees_each_change(
        hooked: tuple[LiveOrigin, list[str]]) -> None:
    origin, calls = hooked
    admin = origin.token("admin", name="ops")
    assert await call(origin, "PUT", "/left-pad/1.3.1", admin) == \
        (200, {"ok": True, "name": "left-pad", "version": "1.3.1", "changed": True})
    assert calls == ["left-pad ['1.3.1']"], "the view is recomputed before the answer"
    assert (await call(origin, "PUT", "/left-pad/1.3.1", admin))[1]["changed"] is False
    assert await call(origin, "PUT", "/left-pad/1.10.0-rc.1", admin) == \
        (200, {"ok": True, "name": "left-pad", "version": "1.10.0-rc.1", "changed": True})
    # scoped names in both of npm's spellings
    assert (await call(origin, "PUT", "/@types%2fnode/20.1.0", admin))[0] == 200
    assert (await call(origin, "PUT", "/@types/node/20.2.0", admin))[0] == 200
    assert await call(origin, "GET", "/left-pad", admin) == (200, {"name": "left-pad",
                                                                   "versions": ["1.3.1", "1.10.0-rc.1"]})
    assert await call(origin, "GET", "/@types/node", admin) == (200, {"name": "@types/node",
                                                                      "versions": ["20.1.0", "20.2.0"]})
    assert await call(origin, "GET", "/never-allowed", admin) == (200, {"name": "never-allowed", "versions": []})

    assert await call(origin, "DELETE", "/left-pad/1.3.1", admin) == \
        (200, {"ok": True, "name": "left-pad", "version": "1.3.1", "changed": True})
    status, body = await call(origin, "DELETE", "/left-pad/1.3.1", admin)
    assert (status, body["error"], body["detail"]) == (404, "not_found", {"name": "left-pad", "version": "1.3.1"})
    assert calls == ["left-pad ['1.3.1']", "left-pad ['1.10.0-rc.1', '1.3.1']", "@types/node ['20.1.0']",
                     "@types/node ['20.1.0', '20.2.0']", "left-pad ['1.10.0-rc.1']"], "only changes call it"

    records = [r for r in audit_records(origin) if r["action"].startswith("uplink-")]
    assert [(r["action"], r["actor"], r["subject"], r["data"]) for r in records] == [
        ("uplink-allow", "ops", "left-pad", {"version": "1.3.1"}),
        ("uplink-allow", "ops", "left-pad", {"version": "1.10.0-rc.1"}),
        ("uplink-allow", "ops", "@types/node", {"version": "20.1.0"}),
        ("uplink-allow", "ops", "@types/node", {"version": "20.2.0"}),
        ("uplink-disallow", "ops", "left-pad", {"version": "1.3.1"}),
    ]


@pytest.mark.parametrize(("method", "path"), [("GET", "/left-pad"), ("PUT", "/left-pad/1.0.0"),
                                              ("DELETE", "/left-pad/1.0.0"), ("PUT", "/Not A Name/x")])
async def test_only_admins_reach_it(origin: LiveOrigin, method: str, path: str) -> None:
    status, body = await call(origin, method, path)
    assert (status, body["error"]) == (401, "auth_required")
    for scopes in (("publish:*",), ("read",), ("edge",)):
        status, body = await call(origin, method, path, origin.token(*scopes))
        assert (status, body["error"]) == (403, "forbidden"), scopes
    assert await origin.registry.store.uplink_allowed("left-pad") == set()


@pytest.mark.parametrize(("path", "code"), [
    ("/_private/1.0.0", "invalid_name"),
    ("/node_modules/1.0.0", "invalid_name"),
    ("/a%20b/1.0.0", "invalid_name"),
    ("/@/x/1.0.0", "invalid_name"),              # a scope with no name
    ("/left-pad/latest", "invalid_version"),     # a dist-tag is not a version
    ("/left-pad/1.x", "invalid_version"),
    ("/left-pad/v1.0.0", "invalid_version"),
    ("/left-pad/1.0.0.0", "invalid_version"),
    ("/left-pad/" + "1" * 300, "invalid_version"),
])
async def test_bad_names_and_versions_are_400_with_their_code(origin: LiveOrigin, path: str, code: str) -> None:
    admin = origin.token("admin")
    status, body = await call(origin, "PUT", path, admin)
    assert (status, body["error"]) == (400, code), body
    if code == "invalid_name":
        status, body = await call(origin, "GET", path.rsplit("/", 1)[0], admin)
        assert (status, body["error"]) == (400, code), body


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("PUT", "/left-pad", 404, "not_found"),             # no version
    ("PUT", "/left-pad/1.0.0/more", 404, "not_found"),
    ("GET", "/left-pad/1.0.0", 404, "not_found"),
    ("GET", "", 404, "not_found"),
    ("POST", "/left-pad/1.0.0", 405, "method_not_allowed"),
])
async def test_other_shapes_are_refused(origin: LiveOrigin, method: str, path: str, status: int, code: str) -> None:
    got, body = await call(origin, method, path, origin.token("admin"))
    assert (got, body["error"]) == (status, code), body


async def test_without_a_hook_the_override_is_stored_all_the_same(origin: LiveOrigin) -> None:
    assert origin.app[ON_ALLOWED] is None
    assert (await call(origin, "PUT", "/left-pad/1.0.0", origin.token("admin")))[0] == 200
    assert await origin.registry.store.uplink_allowed("left-pad") == {"1.0.0"}
    # names valid only for packages that already exist are what uplinks pull: capitals, core modules
    assert (await call(origin, "PUT", "/JSONStream/1.3.5", origin.token("admin")))[0] == 200
    assert (await call(origin, "PUT", "/events/3.3.0", origin.token("admin")))[0] == 200
