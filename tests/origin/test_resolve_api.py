"""Serving resolutions: ``POST /-/v1/resolve`` and ``GET /-/v1/resolutions/{hash}``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3

from eghact_origin.http.appkeys import RESOLUTIONS
from eghact_origin.resolver import ResolveRequest

from ..conftest import LiveOrigin
from ..support import escaped, manifest, publish_body


def plugin(kind: str = "component", **extra: object) -> dict:
    return {"eghact": {"version": "^2.0.0", "type": kind}, **extra}


async def publish(origin: LiveOrigin, token: str, name: str, version: str, **extra: object) -> None:
    async with origin.session.put(f"{origin.url}/{escaped(name)}", json=publish_body(manifest(name, version, **extra)),
                                  headers=origin.auth(token)) as response:
        assert response.status == 201, await response.text()


async def universe(origin: LiveOrigin) -> str:
    token = origin.token("publish:*")
    await publish(origin, token, "utilx", "1.0.0")
    await publish(origin, token, "utilx", "1.1.0")
    await publish(origin, token, "chart", "1.0.0", **plugin(dependencies={"utilx": "^1.0.0"}))
    await publish(origin, token, "editor", "2.0.0", **plugin(dependencies={"utilx": "~1.1.0"}))
    await publish(origin, token, "logger", "1.0.0", **plugin("middleware"))
    await publish(origin, token, "old-util", "1.0.0")
    await publish(origin, token, "needs-old", "1.0.0", **plugin(dependencies={"utilx": "~1.0.0"}))
    return token


async def test_resolve_serves_a_lockfile_and_a_cacheable_resolution(origin: LiveOrigin) -> None:
    token = await universe(origin)
    request = {"dependencies": {"chart": "^1.0.0", "editor": "^2.0.0", "logger": "*"}}
    async with origin.session.post(f"{origin.url}/-/v1/resolve", json=request) as response:
        assert response.status == 200, await response.text()
        lock = await response.json()
        location = response.headers["Location"]
        digest = response.headers["Eghact-Resolution"]
    assert lock["hash"] == digest and location == f"/-/v1/resolutions/{digest}"
    assert lock["registry"] == origin.url
    versions = {entry["name"]: entry["version"] for entry in lock["packages"].values()}
    assert versions == {"chart": "1.0.0", "editor": "2.0.0", "logger": "1.0.0", "utilx": "1.1.0"}
    util = next(e for e in lock["packages"].values() if e["name"] == "utilx")
    assert util["resolved"] == f"{origin.url}/utilx/-/utilx-1.1.0.tgz" and util["integrity"].startswith("sha512-")
    chunks = {c["id"]: c for c in lock["loadPlan"]["chunks"]}
    assert [p.split("/")[-1] for p in chunks["eager"]["plugins"]] == ["logger"]
    assert {"lazy:chart", "lazy:editor"} <= set(chunks)

    async with origin.session.get(origin.url + location) as response:
        assert response.status == 200
        assert await response.json() == lock
        keys = response.headers["Surrogate-Key"].split()
        etag = response.headers["ETag"]
        assert f"res:{digest}" in keys and "pkg:utilx" in keys and "pkg:chart" in keys
        assert response.headers["Cache-Control"].startswith("public")
    async with origin.session.get(origin.url + location, headers={"If-None-Match": etag}) as response:
        assert response.status == 304

    # Same request written differently: same hash, served from what was built.
    reordered = {"dependencies": {"logger": "*", "editor": "2.x", "chart": "1"}}
    async with origin.session.post(f"{origin.url}/-/v1/resolve", json=reordered) as response:
        assert response.headers["Eghact-Resolution"] != ""

    await publish(origin, token, "utilx", "1.2.0")
    await origin.app[RESOLUTIONS].settle()
    async with origin.session.get(origin.url + location) as response:
        rebuilt = await response.json()
    # chart takes the new utilx; editor pins ~1.1, and a plain library nests for it
    assert {key: e["version"] for key, e in rebuilt["packages"].items() if e["name"] == "utilx"} == {
        "node_modules/utilx": "1.2.0", "node_modules/editor/node_modules/utilx": "1.1.0"}
    async with origin.session.get(f"{origin.url}/-/v1/changes?limit=1000") as response:
        events = (await response.json())["results"]
    assert any(e["type"] == "resolution" and f"res:{digest}" in e["keys"] for e in events)


async def test_a_new_version_changes_the_answer(origin: LiveOrigin) -> None:
    token = await universe(origin)
    async with origin.session.post(f"{origin.url}/-/v1/resolve", json={"dependencies": {"chart": "*"}}) as response:
        digest = response.headers["Eghact-Resolution"]
    await publish(origin, token, "utilx", "1.5.0")
    async with origin.session.get(f"{origin.url}/-/v1/resolutions/{digest}") as response:
        lock = await response.json()
    assert {e["name"]: e["version"] for e in lock["packages"].values()}["utilx"] == "1.5.0"


async def test_the_default_nests_plain_libraries_and_explains_plugin_conflicts(origin: LiveOrigin) -> None:
    token = await universe(origin)
    request = {"dependencies": {"editor": "^2.0.0", "needs-old": "1.0.0"}}
    async with origin.session.post(f"{origin.url}/-/v1/resolve", json=request) as response:
        assert response.status == 200, await response.text()
        lock = await response.json()
    assert lock["request"]["strategy"]["duplicate"] == "plugins"
    assert {key: entry["version"] for key, entry in lock["packages"].items() if entry["name"] == "utilx"} == {
        "node_modules/utilx": "1.1.0", "node_modules/needs-old/node_modules/utilx": "1.0.0"}
    chunks = {c["id"]: c["plugins"] for c in lock["loadPlan"]["chunks"]}
    # a nested library goes with the plugin that needs it
    assert "node_modules/needs-old/node_modules/utilx" in chunks["lazy:needs-old"]

    await publish(origin, token, "theme-core", "1.0.0", **plugin("theme"))
    await publish(origin, token, "theme-core", "2.0.0", **plugin("theme"))
    await publish(origin, token, "dark", "1.0.0", **plugin(dependencies={"theme-core": "^1.0.0"}))
    await publish(origin, token, "light", "1.0.0", **plugin(dependencies={"theme-core": "^2.0.0"}))
    async with origin.session.post(f"{origin.url}/-/v1/resolve",
                                   json={"dependencies": {"dark": "^1", "light": "^1"}}) as response:
        assert response.status == 422
        body = await response.json()
    assert body["detail"]["conflict"]["package"] == "theme-core" and body["detail"]["conflict"]["plugin"] is True
    assert all(name in body["message"] for name in ("dark@1.0.0", "light@1.0.0", "theme-core is a plugin"))


async def test_conflicts_get_a_422_explanation(origin: LiveOrigin) -> None:
    await universe(origin)
    request = {"dependencies": {"editor": "^2.0.0", "needs-old": "1.0.0"}, "strategy": {"duplicate": "dedupe-all"}}
    async with origin.session.post(f"{origin.url}/-/v1/resolve", json=request) as response:
        assert response.status == 422
        body = await response.json()
        digest = response.headers["Eghact-Resolution"]
    assert body["error"] == "unresolvable"
    assert "utilx" in body["message"] and "editor" in body["message"] and "needs-old" in body["message"]
    assert body["detail"]["conflict"]["package"] == "utilx"
    async with origin.session.get(f"{origin.url}/-/v1/resolutions/{digest}") as response:
        assert response.status == 422
        assert response.headers["Cache-Control"] == "no-store"


async def test_bad_requests_are_400_with_every_problem(origin: LiveOrigin) -> None:
    bad = {"dependencies": {"Not A Name": "^1", "x": "git+https://e/x.git"}, "strategy": {"version": "newest"}}
    async with origin.session.post(f"{origin.url}/-/v1/resolve", json=bad) as response:
        assert response.status == 400
        body = await response.json()
    assert body["error"] == "invalid_request" and len(body["detail"]["problems"]) >= 3
    async with origin.session.post(f"{origin.url}/-/v1/resolve", data=b"{nope") as response:
        assert (await response.json())["error"] == "invalid_json"
    async with origin.session.get(f"{origin.url}/-/v1/resolutions/xyz") as response:
        assert (await response.json())["error"] == "invalid_hash"
    async with origin.session.get(f"{origin.url}/-/v1/resolutions/{'0' * 64}") as response:
        assert response.status == 404


async def test_private_packages_are_not_resolvable_anonymously(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    await publish(origin, token, "@acme/secret", "1.0.0")
    await publish(origin, token, "public-app", "1.0.0", dependencies={"@acme/secret": "^1.0.0"})
    async with origin.session.post(f"{origin.url}/-/v1/resolve", json={"dependencies": {"public-app": "*"}}) as r:
        assert r.status == 401
    reader = origin.token("read:@acme/*", name="reader")
    async with origin.session.post(f"{origin.url}/-/v1/resolve", json={"dependencies": {"public-app": "*"}},
                                   headers=origin.auth(reader)) as response:
        assert response.status == 200
        digest = response.headers["Eghact-Resolution"]
    async with origin.session.get(f"{origin.url}/-/v1/resolutions/{digest}") as response:
        assert response.status == 401
    async with origin.session.get(f"{origin.url}/-/v1/resolutions/{digest}", headers=origin.auth(reader)) as r:
        assert r.status == 200 and r.headers["Cache-Control"].startswith("private")


async def test_prompt_returns_the_open_choices(origin: LiveOrigin) -> None:
    await universe(origin)
    request = {"dependencies": {"chart": "^1.0.0"}, "strategy": {"version": "prompt"}}
    async with origin.session.post(f"{origin.url}/-/v1/resolve", json=request) as response:
        body = await response.json()
    assert body["prompt"] is True and set(body["choices"]["utilx"]) == {"1.0.0", "1.1.0"}


async def test_popular_resolutions_are_rebuilt_at_once(origin: LiveOrigin) -> None:
    token = await universe(origin)
    request = {"dependencies": {"chart": "^1.0.0"}}
    for _ in range(3):
        async with origin.session.post(f"{origin.url}/-/v1/resolve", json=request) as response:
            digest = response.headers["Eghact-Resolution"]
    resolutions = origin.app[RESOLUTIONS]
    await publish(origin, token, "utilx", "1.9.0")
    await asyncio.wait_for(resolutions.settle(), 30)
    prebuilt = resolutions._memory.get(digest)
    assert prebuilt is not None, "a popular resolution was not rebuilt after its input changed"
    assert b'"version": "1.9.0"' in prebuilt.body


async def test_a_resolution_stored_as_dedupe_is_served_by_its_dedupe_all_build(origin: LiveOrigin) -> None:
    # A resolution built before duplicate=dedupe was renamed dedupe-all: its stored request
    # now hashes as dedupe-all. Fetching the old hash answers that build, built once.
    await universe(origin)
    old = {"dependencies": {"chart": ">=1.0.0 <2.0.0-0"}, "eager": [], "framework": None,
           "policy": {"capabilities": {"allow": None, "deny": []}, "licenses": None, "peer": "warn"},
           "strategy": {"duplicate": "dedupe", "security": "audit", "version": "highest"}}
    text = json.dumps(old, sort_keys=True, separators=(",", ":"))
    old_hash = hashlib.sha256(text.encode()).hexdigest()
    new_hash = ResolveRequest.from_body(old).hash
    assert new_hash != old_hash

    def insert(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO resolutions (hash, request, status, body, built_seq, built, stale) "
                     "VALUES (?, ?, 200, ?, 0, '2026-01-01T00:00:00.000Z', 1)", (old_hash, text, b"{}"))

    def built_at(conn: sqlite3.Connection) -> str:
        return conn.execute("SELECT built FROM resolutions WHERE hash=?", (new_hash,)).fetchone()[0]

    store = origin.app[RESOLUTIONS]._store
    await store.write(insert)
    async with origin.session.get(f"{origin.url}/-/v1/resolutions/{old_hash}") as response:
        assert response.status == 200
        assert response.headers["Eghact-Resolution"] == new_hash
        lock = await response.json()
    assert lock["hash"] == new_hash and lock["request"]["strategy"]["duplicate"] == "dedupe-all"
    first = await store.read(built_at)
    async with origin.session.get(f"{origin.url}/-/v1/resolutions/{old_hash}") as response:
        assert response.status == 200 and (await response.json())["hash"] == new_hash
    assert await store.read(built_at) == first, "the old hash was built again"
