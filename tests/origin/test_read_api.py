"""The read API of DESIGN §3 against a real origin on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

from eghact_common.integrity import sri_sha512

from ..conftest import LiveOrigin
from ..support import escaped, manifest, publish_body, tarball_for

PLUGIN = {"eghact": {"version": "^2.0.0", "type": "component", "capabilities": {"required": ["dom:read"]},
                     "metadata": {"category": "charts"}}}


async def publish(origin: LiveOrigin, token: str, doc: dict, **kw: object) -> dict:
    async with origin.session.put(f"{origin.url}/{escaped(doc['name'])}", json=publish_body(doc, **kw),
                                  headers=origin.auth(token)) as response:
        body = await response.json()
        assert response.status == 201, body
        return body


async def test_packument_full_and_abbreviated(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    await publish(origin, token, manifest("chart", "1.0.0", **PLUGIN, dependencies={"lodash": "^4.0.0"}))
    await publish(origin, token, manifest("chart", "1.1.0", **PLUGIN))
    async with origin.session.get(f"{origin.url}/chart") as response:
        assert response.status == 200
        full = await response.json()
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.headers["Cache-Control"].startswith("public, max-age=")
        assert "stale-while-revalidate" in response.headers["Cache-Control"]
        assert response.headers["Surrogate-Key"] == "pkg:chart"
        assert int(response.headers["Eghact-Seq"]) >= 2
        assert response.headers["ETag"].startswith('"')
    assert full["dist-tags"] == {"latest": "1.1.0"}
    assert set(full["versions"]) == {"1.0.0", "1.1.0"}
    assert full["versions"]["1.0.0"]["dependencies"] == {"lodash": "^4.0.0"}
    dist = full["versions"]["1.0.0"]["dist"]
    assert dist["tarball"] == f"{origin.url}/chart/-/chart-1.0.0.tgz"
    assert set(full["time"]) >= {"created", "modified", "1.0.0", "1.1.0"}
    corgi = {"Accept": "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"}
    async with origin.session.get(f"{origin.url}/chart", headers=corgi) as response:
        abbreviated = await response.json()
        assert response.headers["Content-Type"].startswith("application/vnd.npm.install-v1+json")
        assert response.headers["Vary"] == "Accept"
    assert set(abbreviated) == {"name", "modified", "dist-tags", "versions"}
    assert "description" not in abbreviated["versions"]["1.0.0"]
    assert abbreviated["versions"]["1.0.0"]["eghact"]["type"] == "component"
    assert abbreviated["versions"]["1.0.0"]["dist"] == dist


async def test_etag_revalidation_gives_304_and_changes_after_publish(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    await publish(origin, token, manifest("etag-pkg", "1.0.0"))
    async with origin.session.get(f"{origin.url}/etag-pkg") as response:
        etag = response.headers["ETag"]
    async with origin.session.get(f"{origin.url}/etag-pkg", headers={"If-None-Match": etag}) as response:
        assert response.status == 304
        assert response.headers["ETag"] == etag
        assert await response.read() == b""
    await publish(origin, token, manifest("etag-pkg", "1.0.1"))
    async with origin.session.get(f"{origin.url}/etag-pkg", headers={"If-None-Match": etag}) as response:
        assert response.status == 200
        assert response.headers["ETag"] != etag
        assert "1.0.1" in (await response.json())["versions"]


async def test_every_spelling_of_a_scoped_name(origin: LiveOrigin) -> None:
    token = origin.token("publish:@eg/*")
    await publish(origin, token, manifest("@eg/widgets", "2.0.0"))
    bodies = set()
    for path in ("/@eg%2fwidgets", "/@eg%2Fwidgets", "/@eg/widgets"):
        async with origin.session.get(origin.url + path) as response:
            assert response.status == 200, path
            bodies.add(await response.read())
    assert len(bodies) == 1
    async with origin.session.get(f"{origin.url}/@eg/widgets/latest") as response:
        doc = await response.json()
    assert doc["version"] == "2.0.0"
    async with origin.session.get(doc["dist"]["tarball"]) as response:
        assert response.status == 200
        data = await response.read()
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Surrogate-Key"] == "tgz:@eg/widgets@2.0.0"
        etag = response.headers["ETag"]
    assert sri_sha512(data) == doc["dist"]["integrity"]
    async with origin.session.get(doc["dist"]["tarball"], headers={"If-None-Match": etag}) as response:
        assert response.status == 304


async def test_version_document_by_version_and_tag(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    await publish(origin, token, manifest("vdoc", "1.0.0"))
    await publish(origin, token, manifest("vdoc", "2.0.0-beta.1"), tag="next")
    async with origin.session.get(f"{origin.url}/vdoc/next") as response:
        assert (await response.json())["version"] == "2.0.0-beta.1"
    async with origin.session.get(f"{origin.url}/vdoc/1.0.0") as response:
        assert (await response.json())["_id"] == "vdoc@1.0.0"
    async with origin.session.get(f"{origin.url}/vdoc/9.9.9") as response:
        assert response.status == 404
        assert (await response.json())["error"] == "not_found"
    async with origin.session.get(f"{origin.url}/-/package/vdoc/dist-tags") as response:
        assert await response.json() == {"latest": "1.0.0", "next": "2.0.0-beta.1"}


async def test_dist_tags_add_remove_and_latest_is_protected(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    await publish(origin, token, manifest("tagged", "1.0.0"))
    await publish(origin, token, manifest("tagged", "1.1.0"))
    url = f"{origin.url}/-/package/tagged/dist-tags"
    async with origin.session.put(f"{url}/stable", data=json.dumps("1.0.0"), headers=origin.auth(token)) as r:
        assert r.status == 201
    async with origin.session.put(f"{url}/stable", data=json.dumps("7.0.0"), headers=origin.auth(token)) as r:
        assert r.status == 404
    async with origin.session.put(f"{url}/1.x", data=json.dumps("1.0.0"), headers=origin.auth(token)) as r:
        assert (await r.json())["error"] == "invalid_tag"
    async with origin.session.delete(f"{url}/latest", headers=origin.auth(token)) as r:
        assert (await r.json())["error"] == "latest_tag_required"
    async with origin.session.put(f"{url}/stable", data=json.dumps("1.0.0")) as r:
        assert r.status == 401
    async with origin.session.delete(f"{url}/stable", headers=origin.auth(token)) as r:
        assert r.status == 200
    async with origin.session.get(url) as r:
        assert await r.json() == {"latest": "1.1.0"}


async def test_private_scope_needs_a_read_token_and_is_never_public(origin: LiveOrigin) -> None:
    publisher = origin.token("publish:@acme/*")
    await publish(origin, publisher, manifest("@acme/secret", "1.0.0"))
    reader = origin.token("read:@acme/*", name="reader")
    outsider = origin.token("read:@other/*", name="outsider")
    for path in ("/@acme%2fsecret", "/@acme/secret/1.0.0", "/@acme/secret/-/secret-1.0.0.tgz",
                 "/-/package/@acme%2fsecret/dist-tags", "/@acme%2fmissing"):
        async with origin.session.get(origin.url + path) as response:
            assert response.status == 401, path
            assert (await response.json())["error"] == "auth_required"
        async with origin.session.get(origin.url + path, headers=origin.auth(outsider)) as response:
            assert response.status == 403, path
    async with origin.session.get(f"{origin.url}/@acme%2fsecret", headers=origin.auth(reader)) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"].startswith("private")
        assert "Authorization" in response.headers["Vary"]
    async with origin.session.get(f"{origin.url}/-/v1/search?text=secret") as response:
        assert (await response.json())["objects"] == []
    async with origin.session.get(f"{origin.url}/-/v1/changes") as response:
        assert all(e["name"] != "@acme/secret" for e in (await response.json())["results"])
    async with origin.session.get(f"{origin.url}/-/v1/changes", headers=origin.auth(reader)) as response:
        assert any(e["name"] == "@acme/secret" for e in (await response.json())["results"])


async def test_unknown_and_revoked_tokens_are_refused(origin: LiveOrigin) -> None:
    async with origin.session.get(f"{origin.url}/-/whoami", headers=origin.auth("egh_nope")) as response:
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_token"
    token = origin.token("read", name="soon-gone")
    async with origin.session.get(f"{origin.url}/-/whoami", headers=origin.auth(token)) as response:
        assert (await response.json())["username"] == "soon-gone"
    origin.registry.store.revoke_token_sync(None, "soon-gone", actor="test")
    origin.app[__import__("eghact_origin.http.appkeys", fromlist=["TOKENS"]).TOKENS]._cache.clear()
    async with origin.session.get(f"{origin.url}/-/whoami", headers=origin.auth(token)) as response:
        assert response.status == 401


async def test_search_with_eghact_filters(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    await publish(origin, token, manifest("line-chart", "1.0.0", keywords=["chart", "svg"], **PLUGIN))
    theme = {"eghact": {"version": "^2.0.0", "type": "theme", "metadata": {"category": "themes"},
                        "capabilities": {"optional": ["network:fetch:*.fonts.example.com"]}}}
    await publish(origin, token, manifest("dark-theme", "1.0.0", keywords=["theme"], **theme))
    await publish(origin, token, manifest("plain-lib", "1.0.0", keywords=["chart"]))

    async def names(query: str) -> list[str]:
        async with origin.session.get(f"{origin.url}/-/v1/search?{query}") as response:
            assert response.status == 200
            body = await response.json()
            assert body["total"] >= len(body["objects"])
            return [o["package"]["name"] for o in body["objects"]]

    assert (await names("text=chart"))[0] == "line-chart"
    assert set(await names("text=chart")) == {"line-chart", "plain-lib"}
    assert await names("text=type:theme") == ["dark-theme"]
    assert await names("type=component") == ["line-chart"]
    assert await names("type=library") == ["plain-lib"]
    assert await names("capability=network:fetch") == ["dark-theme"]
    assert await names("capability=dom:read") == ["line-chart"]
    assert await names("category=charts") == ["line-chart"]
    assert set(await names("keyword=chart")) == {"line-chart", "plain-lib"}
    assert await names("text=keywords:svg") == ["line-chart"]
    assert await names("text=%22%29%28*") == []  # FTS syntax in user text is inert
    async with origin.session.get(f"{origin.url}/-/v1/search?size=0") as response:
        assert (await response.json())["error"] == "invalid_parameter"


async def test_npm_audit_bulk_reports_matching_versions(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    await publish(origin, token, manifest("leaky", "1.2.0"))
    origin.registry.store.add_advisory_sync(
        {"name": "leaky", "vulnerable_versions": "<1.4.2", "severity": "high", "title": "Prototype pollution",
         "url": "https://advisories.example/1", "cwe": ["CWE-1321"], "cvss": 7.5}, actor="test")
    payload = {"leaky": ["1.2.0", "1.5.0"], "unknown": ["1.0.0"]}
    async with origin.session.post(f"{origin.url}/-/npm/v1/security/advisories/bulk", json=payload) as response:
        report = await response.json()
    assert list(report) == ["leaky"]
    assert report["leaky"][0]["severity"] == "high"
    assert report["leaky"][0]["vulnerable_versions"] == "<1.4.2"
    async with origin.session.post(f"{origin.url}/-/npm/v1/security/advisories/bulk",
                                   json={"leaky": ["1.5.0"]}) as response:
        assert await response.json() == {}


async def test_errors_are_json_with_stable_codes(origin: LiveOrigin) -> None:
    cases = [
        ("GET", "/does-not-exist", 404, "not_found"),
        ("GET", "/-/v1/changes?since=abc", 400, "invalid_parameter"),
        ("GET", "/-/v1/changes?feed=bogus", 400, "invalid_parameter"),
        ("PUT", "/something", 401, "auth_required"),
        ("GET", "/-/whoami", 401, "auth_required"),
        ("PATCH", "/x", 405, "method_not_allowed"),
        ("GET", "/-/nothing-here", 404, "not_found"),
    ]
    for method, path, status, code in cases:
        async with origin.session.request(method, origin.url + path) as response:
            assert response.status == status, (method, path)
            body = await response.json()
            assert body["error"] == code, (method, path, body)
            assert body["message"]


async def test_sse_refuses_a_last_event_id_it_cannot_resume_from(origin: LiveOrigin) -> None:
    # Found by the fuzz pass: a seq beyond SQLite's INTEGER was a 200 whose stream the
    # first query then cut (OverflowError); it is a 400 before the stream starts, as for `since`.
    for last_event in ("99999999999999999999999", "-1", "seq-4"):
        async with origin.session.get(f"{origin.url}/-/v1/changes?feed=sse",
                                      headers={"Last-Event-ID": last_event}) as response:
            assert response.status == 400, last_event
            body = await response.json()
            assert body["error"] == "invalid_parameter", body
            assert body["detail"] == {"Last-Event-ID": last_event}


async def test_health_and_metrics(origin: LiveOrigin) -> None:
    async with origin.session.get(f"{origin.url}/-/health") as response:
        health = await response.json()
    assert health["status"] == "ok" and health["role"] == "origin"
    async with origin.session.get(f"{origin.url}/-/ping") as response:
        assert response.status == 200
    # This origin has a private scope: its counters count private activity, for admins only.
    async with origin.session.get(f"{origin.url}/-/metrics") as response:
        assert response.status == 401 and (await response.json())["error"] == "auth_required"
    async with origin.session.get(f"{origin.url}/-/metrics", headers=origin.auth(origin.token("admin"))) as response:
        text = await response.text()
        assert response.headers["Content-Type"].startswith("text/plain")
    assert "eghact_origin_requests_total" in text
    assert 'route="health"' in text


async def test_changes_feed_paged_longpoll_and_sse(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    for i in range(5):
        await publish(origin, token, manifest("feedy", f"1.0.{i}"))
    async with origin.session.get(f"{origin.url}/-/v1/changes?since=0&limit=2") as response:
        page = await response.json()
    assert [e["seq"] for e in page["results"]] == [1, 2] and page["last_seq"] == 2
    event = page["results"][0]
    assert event["type"] == "publish" and event["name"] == "feedy" and event["version"] == "1.0.0"
    assert "pkg:feedy" in event["keys"] and event["time"]
    async with origin.session.get(f"{origin.url}/-/v1/changes?since=2") as response:
        assert [e["seq"] for e in (await response.json())["results"]] == [3, 4, 5]

    async def longpoll() -> dict:
        async with origin.session.get(f"{origin.url}/-/v1/changes?since=5&feed=longpoll&timeout=10000") as r:
            return await r.json()

    waiting = asyncio.create_task(longpoll())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await publish(origin, token, manifest("feedy", "1.0.5"))
    polled = await asyncio.wait_for(waiting, 5)
    assert [e["seq"] for e in polled["results"]] == [6]

    async with origin.session.get(f"{origin.url}/-/v1/changes?feed=sse",
                                  headers={"Last-Event-ID": "4"}) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        seen: list[int] = []
        published_live = False
        while len(seen) < 3:
            line = (await asyncio.wait_for(response.content.readline(), 5)).decode()
            if line.startswith("id: "):
                seen.append(int(line[4:]))
            if len(seen) == 2 and not published_live:
                published_live = True  # the third event must arrive live, not from the backlog
                await publish(origin, token, manifest("feedy", "1.0.6"))
        assert seen == [5, 6, 7]


async def test_longpoll_times_out_empty(origin: LiveOrigin) -> None:
    async with origin.session.get(f"{origin.url}/-/v1/changes?since=0&feed=longpoll&timeout=200") as response:
        assert await response.json() == {"results": [], "last_seq": 0}


async def test_concurrent_publishes_give_a_gapless_ordered_feed(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    docs = [manifest(f"race-{i % 4}", f"1.0.{i}") for i in range(24)]
    await asyncio.gather(*(publish(origin, token, d) for d in docs))
    async with origin.session.get(f"{origin.url}/-/v1/changes") as response:
        results = (await response.json())["results"]
    assert [e["seq"] for e in results] == list(range(1, 25))
    assert {(e["name"], e["version"]) for e in results} == {(d["name"], d["version"]) for d in docs}


async def test_tarball_integrity_matches_the_served_bytes(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    doc = manifest("bytes", "1.0.0")
    data = tarball_for(doc, {"big.js": b"x" * 100_000})
    await publish(origin, token, doc, tarball=data)
    async with origin.session.get(f"{origin.url}/bytes/-/bytes-1.0.0.tgz") as response:
        assert await response.read() == data
        assert response.headers["Eghact-Integrity"] == sri_sha512(data)
