"""No private trace in public answers (issue 11, items 4 and 7): against a real origin on
127.0.0.1 with ``--private-scope @acme``, what an anonymous caller (or an edge token) reads —
search totals, the popular list, the changes feed and its seqs, the feed extent, health,
``Eghact-Seq``, the edge list — says nothing about private packages, and one edge token can
neither push a key to the top of the popular list nor take another edge's id."""

from __future__ import annotations

import json
from typing import Any

from ..conftest import LiveOrigin
from ..support import escaped, manifest, publish_body

SECRET = {"description": "zanzibar quokka ledger", "keywords": ["quokkaword"]}


async def publish(origin: LiveOrigin, token: str, name: str, version: str, **extra: Any) -> None:
    doc = manifest(name, version, **extra)
    async with origin.session.put(f"{origin.url}/{escaped(name)}", json=publish_body(doc),
                                  headers=origin.auth(token)) as response:
        assert response.status == 201, await response.text()


async def get_json(origin: LiveOrigin, path: str, token: str | None = None) -> tuple[int, Any, Any]:
    async with origin.session.get(origin.url + path, headers=origin.auth(token) if token else {}) as response:
        return response.status, response.headers, await response.json()


async def post(origin: LiveOrigin, path: str, body: Any, token: str) -> tuple[int, Any]:
    async with origin.session.post(origin.url + path, json=body, headers=origin.auth(token)) as response:
        return response.status, await response.json()


async def test_anonymous_search_counts_no_private_hit(origin: LiveOrigin) -> None:
    admin = origin.token("admin")
    await publish(origin, admin, "@acme/secret", "1.0.0", **SECRET)
    await publish(origin, admin, "open-thing", "1.0.0", description="an open thing")
    for text in ("quokka", "zanz", "keywords:quokkaword", "acme"):
        status, _, body = await get_json(origin, f"/-/v1/search?text={text}")
        assert status == 200 and (body["total"], body["objects"]) == (0, []), (text, body)
    # A reader of the scope sees the hit and counts it; an unrelated token does not.
    reader = origin.token("read:@acme/*", name="reader")
    _, _, body = await get_json(origin, "/-/v1/search?text=quokka", reader)
    assert body["total"] == 1 and body["objects"][0]["package"]["name"] == "@acme/secret"
    _, _, body = await get_json(origin, "/-/v1/search?text=quokka", origin.token("publish:open-*", name="p"))
    assert body["total"] == 0
    # Without text, the total is the number of public packages.
    _, _, body = await get_json(origin, "/-/v1/search?size=250")
    assert body["total"] == len(body["objects"]) == 1


async def test_anonymous_feed_has_no_gap_and_last_seq_is_the_last_shown(origin: LiveOrigin) -> None:
    admin = origin.token("admin")
    await publish(origin, admin, "feed-a", "1.0.0")
    await publish(origin, admin, "@acme/hidden", "1.0.0")
    await publish(origin, admin, "@acme/hidden", "1.0.1")
    await publish(origin, admin, "feed-b", "1.0.0")
    await publish(origin, admin, "@acme/hidden", "1.0.2")
    _, _, page = await get_json(origin, "/-/v1/changes?since=0")
    assert [(e["seq"], e["name"]) for e in page["results"]] == [(1, "feed-a"), (2, "feed-b")]
    # last_seq: the seq of the last event shown, not of the private publish after it.
    assert page["last_seq"] == 2
    _, _, page = await get_json(origin, "/-/v1/changes?since=2&feed=longpoll&timeout=100")
    assert (page["results"], page["last_seq"]) == ([], 2)
    _, _, extent = await get_json(origin, "/-/v1/feed")
    assert (extent["first_seq"], extent["last_seq"]) == (1, 2)
    _, headers, _ = await get_json(origin, "/feed-b")
    assert headers["Eghact-Seq"] == "2"
    _, _, health = await get_json(origin, "/-/health")
    assert (health["seq"], health["notifier_seq"], health["packages"], health["versions"]) == (2, 2, 2, 2)
    # SSE: the same public seqs, in order, with no private event in between.
    async with origin.session.get(f"{origin.url}/-/v1/changes?feed=sse&since=0") as response:
        seen: list[int] = []
        while len(seen) < 2:
            line = (await response.content.readline()).decode()
            if line.startswith("id: "):
                seen.append(int(line[4:]))
    assert seen == [1, 2]
    # A reader of the scope follows the registry's numbering and sees every event.
    reader = origin.token("read:@acme/*", name="reader")
    _, _, page = await get_json(origin, "/-/v1/changes?since=0", reader)
    assert [e["seq"] for e in page["results"]] == [1, 2, 3, 4, 5] and page["last_seq"] == 5
    _, _, health = await get_json(origin, "/-/health", reader)
    assert (health["seq"], health["packages"], health["versions"]) == (5, 3, 5)
    _, headers, _ = await get_json(origin, "/@acme%2fhidden", reader)
    assert headers["Eghact-Seq"] == "5"
    # The public packument's _rev carries no registry seq either.
    _, _, doc = await get_json(origin, "/feed-b")
    assert doc["_rev"].startswith("2-")


async def test_popular_lists_only_public_keys_counted_by_registered_edges(origin: LiveOrigin) -> None:
    admin = origin.token("admin")
    await publish(origin, admin, "@acme/secret", "1.0.0")
    for name in ("pop-honest", "pop-pushed"):
        await publish(origin, admin, name, "1.0.0")
    edges = [origin.token("edge", name=f"edge-{i}") for i in range(3)]
    for i, token in enumerate(edges):
        registration = {"id": f"e{i}", "region": "r", "url": f"http://127.0.0.1:{i + 1}"}
        status, _ = await post(origin, "/-/v1/edges", registration, token)
        assert status == 200
    # Two honest edges saw the public package; one of them also served a reader the private one
    # and a search; the third edge token posts a billion hits.
    honest = {"/pop-honest#f": 60_000, "/@acme%2fsecret#f": 10**6, "/@acme/secret/-/secret-1.0.0.tgz": 10**6,
              "/-/v1/search?text=quokka": 500, "/pop-honest?x=1": 9}
    for token, edge in ((edges[0], "e0"), (edges[1], "e1")):
        status, body = await post(origin, "/-/v1/stats", {"edge": edge, "hits": honest}, token)
        assert status == 202 and body["keys"] == 1 and body["ignored"] == 4, body
    status, body = await post(origin, "/-/v1/stats", {"edge": "e2", "hits": {"/pop-pushed#f": 10**9}}, edges[2])
    assert status == 202 and body["capped"] == 1
    for _ in range(3):   # again and again: the share stays capped
        await post(origin, "/-/v1/stats", {"edge": "e2", "hits": {"/pop-pushed#f": 10**9}}, edges[2])
    _, headers, popular = await get_json(origin, "/-/v1/popular?limit=10")
    keys = [k["key"] for k in popular["keys"]]
    assert keys[0] == "/pop-honest#f" and "/pop-pushed#f" in keys
    assert not any("acme" in key or "search" in key or "?" in key for key in keys)
    assert [p["name"] for p in popular["packages"]] == ["pop-honest", "pop-pushed"]
    assert headers["Cache-Control"].startswith("public")
    # Counts need an edge token, for an id that token registered.
    status, body = await post(origin, "/-/v1/stats", {"edge": "e0", "hits": {"/pop-pushed#f": 1}}, edges[2])
    assert (status, body["error"]) == (403, "edge_not_registered")
    status, body = await post(origin, "/-/v1/stats", {"edge": "e0", "hits": {"/pop-pushed#f": 1}}, admin)
    assert (status, body["error"]) == (403, "forbidden")


async def test_edge_ids_belong_to_their_token_and_the_public_list_hides_upstreams(origin: LiveOrigin) -> None:
    first, second = origin.token("edge", name="edge-a"), origin.token("edge", name="edge-b")
    health = {"status": "ok", "upstream": {"url": "http://127.0.0.1:9/internal", "state": "down",
                                           "last_error": "ConnectError: 10.0.0.7 refused"}}
    registration = {"id": "eu-1", "region": "eu", "url": "http://127.0.0.1:4874", "health": health}
    assert (await post(origin, "/-/v1/edges", registration, first))[0] == 200
    assert (await post(origin, "/-/v1/edges", registration, first))[0] == 200   # a heartbeat
    status, body = await post(origin, "/-/v1/edges", {**registration, "url": "http://127.0.0.1:6666"}, second)
    assert (status, body["error"]) == (403, "edge_taken")
    _, _, listed = await get_json(origin, "/-/v1/edges")
    assert [(e["id"], e["url"], e["alive"], e["health"]) for e in listed["edges"]] == [
        ("eu-1", "http://127.0.0.1:4874", True, {"status": "ok"})]
    assert "127.0.0.1:9" not in json.dumps(listed) and "last_error" not in json.dumps(listed)
    _, _, listed = await get_json(origin, "/-/v1/edges", origin.token("admin"))
    assert listed["edges"][0]["health"]["upstream"]["last_error"].startswith("ConnectError")


async def test_new_private_scopes_renumber_the_public_feed_under_a_new_id(tmp_path: Any) -> None:
    """Seqs handed out before a scope became private counted its events: the public feed is
    numbered again, and its registry id changes so that a follower cannot resume by mistake."""
    import aiohttp

    from ..conftest import start_origin

    data = tmp_path / "data"
    runner, url = await start_origin(data)
    async with aiohttp.ClientSession() as session:
        origin = LiveOrigin(url, runner.app, data, session)
        admin = origin.token("admin")
        for name in ("re-a", "@acme/was-public", "re-b"):
            await publish(origin, admin, name, "1.0.0")
        _, _, before = await get_json(origin, "/-/v1/feed")
    await runner.cleanup()
    assert before["last_seq"] == 3
    runner, url = await start_origin(data, private_scopes=("@acme",))
    async with aiohttp.ClientSession() as session:
        origin = LiveOrigin(url, runner.app, data, session)
        _, _, after = await get_json(origin, "/-/v1/feed")
        _, _, page = await get_json(origin, "/-/v1/changes?since=0")
        _, _, health = await get_json(origin, "/-/health")
    await runner.cleanup()
    assert after == {"registry_id": before["registry_id"] + ".1", "first_seq": 1, "last_seq": 2,
                     "protocol": "1.0"}
    assert [(e["seq"], e["name"]) for e in page["results"]] == [(1, "re-a"), (2, "re-b")]
    assert (health["registry_id"], health["seq"], health["packages"]) == (after["registry_id"], 2, 2)
