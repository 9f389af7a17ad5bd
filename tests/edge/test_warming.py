"""Warming and hints: popularity with decay, batched stats to the origin and its global
popular list, warming a fresh edge from it, prefetch hints, Link headers, registration."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from eghact_edge.hints import hint_key
from eghact_edge.popularity import Popularity

from .conftest import Origin, get, publish
from .support import EdgeProcess, FakeRegistry, metric


def test_popularity_decays_and_reports_in_batches() -> None:
    now = [0.0]
    popularity = Popularity(half_life=10.0, clock=lambda: now[0])
    for _ in range(8):
        popularity.hit("/a#a")
    popularity.hit("/b#a")
    popularity.fold()
    assert popularity.top(1) == ["/a#a"]
    now[0] = 10.0
    popularity.fold()
    assert abs(popularity.score("/a#a") - 4.0) < 1e-9
    assert popularity.drain_report() == {"/a#a": 8, "/b#a": 1}
    assert popularity.drain_report() == {}


def test_hint_forms() -> None:
    assert hint_key("left-pad") == "/left-pad#a"
    assert hint_key("@s/n") == "/@s%2fn#a"
    assert hint_key("@s/n@1.0.0") == "/@s/n/-/n-1.0.0.tgz"
    assert hint_key("res:abc") == "/-/v1/resolutions/abc"
    assert hint_key("") is None and hint_key("@") is None


async def test_prefetch_hints_warm_in_the_background(tmp_path: Path, edges: list[EdgeProcess],
                                                     http: aiohttp.ClientSession) -> None:
    fake = await FakeRegistry(packages={"hint-a": {"1.0.0": b"a"}, "hint-b": {"1.0.0": b"b"}}).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge").astart()
        edges.append(edge)
        async with http.post(f"{edge.url}/-/v1/prefetch", json={"packages": ["hint-a", "hint-a"],
                                                                "tarballs": ["hint-a@1.0.0"]}) as r:
            assert r.status == 202
            assert (await r.json())["queued"] == 2      # deduplicated
        await get(http, f"{edge.url}/hint-b", **{"Eghact-Prefetch": "hint-b@1.0.0"})
        for _ in range(200):   # three warmed entries: hint-a's packument and both tarballs
            if json.loads((await get(http, f"{edge.url}/-/health"))[2])["warming"]["done"] >= 3:
                break
            await asyncio.sleep(0.02)
        abbreviated = "application/vnd.npm.install-v1+json"
        assert (await get(http, f"{edge.url}/hint-a", Accept=abbreviated))[1]["X-Cache"] == "HIT-MEM"
        assert (await get(http, f"{edge.url}/hint-b/-/hint-b-1.0.0.tgz"))[1]["X-Cache"] == "HIT-MEM"
        async with http.post(f"{edge.url}/-/v1/prefetch", data=b"{not json") as r:
            assert r.status == 400
    finally:
        await fake.stop()


async def test_stats_popularity_registration_and_warm_start(origin: Origin, edges: list[EdgeProcess],
                                                            tmp_path: Path, http: aiohttp.ClientSession) -> None:
    await publish(http, origin.url, origin.admin, "warm-dep", "1.0.0")
    await publish(http, origin.url, origin.admin, "warm-top", "1.0.0", dependencies={"warm-dep": "^1.0.0"})
    token = ("--token", origin.edge_token)
    first = await EdgeProcess(origin.url, tmp_path / "first", region="eu", args=token).astart()
    edges.append(first)
    for _ in range(5):
        _, headers, _ = await get(http, f"{first.url}/warm-top")
    assert headers["Link"] == "</warm-dep>; rel=prefetch"
    popular: list[str] = []
    for _ in range(100):   # stats go out every 0.5 s in tests
        popular = [k["key"] for k in json.loads((await get(http, f"{origin.url}/-/v1/popular?limit=10"))[2])["keys"]]
        if "/warm-top#f" in popular:
            break
        await asyncio.sleep(0.05)
    assert "/warm-top#f" in popular
    listed = json.loads((await get(http, f"{origin.url}/-/v1/edges"))[2])["edges"]
    assert any(e["url"] == first.url and e["region"] == "eu" and e["alive"] for e in listed)
    # A fresh edge warms the global popular list at start: its first request is a hit.
    second = await EdgeProcess(origin.url, tmp_path / "second", region="us", args=token).astart()
    edges.append(second)
    for _ in range(100):
        if json.loads((await get(http, f"{second.url}/-/health"))[2])["warming"]["done"] >= 1:
            break
        await asyncio.sleep(0.02)
    assert (await get(http, f"{second.url}/warm-top"))[1]["X-Cache"] == "HIT-MEM"
    # ... fetched in one batch from the origin, not key by key.
    exposition = (await get(http, f"{second.url}/-/metrics"))[2].decode()
    assert metric(exposition, "eghact_edge_upstream_fetches_total", kind="batch", status="200") >= 1
    assert metric(exposition, "eghact_edge_upstream_fetches_total", kind="packument", status="200") == 0


async def test_warm_start_falls_back_to_single_fetches_without_a_batch_endpoint(
        tmp_path: Path, edges: list[EdgeProcess], http: aiohttp.ClientSession) -> None:
    tarball = b"\x1f\x8b" + b"warm" * 50
    fake = await FakeRegistry(packages={"plain": {"1.0.0": tarball}},
                              popular=["/plain#a", "/plain/-/plain-1.0.0.tgz"]).start()
    try:
        edge = await EdgeProcess(fake.url, tmp_path / "edge", args=("--rate", "0")).astart()
        edges.append(edge)
        for _ in range(200):
            if json.loads((await get(http, f"{edge.url}/-/health"))[2])["warming"]["done"] >= 2:
                break
            await asyncio.sleep(0.02)
        assert fake.requests["/-/v1/batch"] == 1       # asked once, answered 404, not asked again
        assert fake.requests["/plain"] >= 1 and fake.requests["/plain/-/plain-1.0.0.tgz"] == 1
        status, headers, body = await get(http, f"{edge.url}/plain/-/plain-1.0.0.tgz")
        assert (status, headers["X-Cache"], body) == (200, "HIT-MEM", tarball)
    finally:
        await fake.stop()


async def test_origin_fleet_endpoints_check_tokens_and_input(origin: Origin, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{origin.url}/-/v1/stats", json={"edge": "x", "hits": {"/a#a": 1}}) as r:
        assert r.status == 401
    auth = {"Authorization": f"Bearer {origin.reader}"}
    async with http.post(f"{origin.url}/-/v1/stats", json={"edge": "x", "hits": {}}, headers=auth) as r:
        assert r.status == 403
    auth = {"Authorization": f"Bearer {origin.edge_token}"}
    async with http.post(f"{origin.url}/-/v1/stats", json={"edge": "", "hits": {"/a": -1}}, headers=auth) as r:
        body = await r.json()
        assert r.status == 400 and len(body["detail"]["problems"]) == 2
    async with http.post(f"{origin.url}/-/v1/edges", json={"id": "e", "region": "r", "url": "ftp://x"},
                         headers=auth) as r:
        assert r.status == 400
    feed = json.loads((await get(http, f"{origin.url}/-/v1/feed"))[2])
    assert feed["last_seq"] >= 0 and feed["registry_id"]


async def test_a_resolution_links_the_tarballs_its_load_plan_needs_first(
        origin: Origin, edges: list[EdgeProcess], tmp_path: Path, http: aiohttp.ClientSession) -> None:
    def plugin(kind: str, **extra: object) -> dict[str, object]:
        return {"eghact": {"version": "^2.0.0", "type": kind}, **extra}

    await publish(http, origin.url, origin.admin, "lp-util", "1.0.0")
    await publish(http, origin.url, origin.admin, "lp-chart", "1.0.0", **plugin("component",
                                                                                 dependencies={"lp-util": "^1"}))
    await publish(http, origin.url, origin.admin, "lp-logger", "1.0.0", **plugin("middleware"))
    request = {"dependencies": {"lp-chart": "^1.0.0", "lp-logger": "*"}}
    async with http.post(f"{origin.url}/-/v1/resolve", json=request) as r:
        assert r.status == 200, await r.text()
        location = r.headers["Location"]
    edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
    edges.append(edge)
    status, headers, _ = await get(http, edge.url + location)
    assert status == 200
    links = [part.split(">")[0].lstrip("<") for part in headers["Link"].split(", ")]
    # The eager chunk (the middleware) first, then the lazy chunk of lp-chart, dependencies first.
    assert links == ["/lp-logger/-/lp-logger-1.0.0.tgz", "/lp-util/-/lp-util-1.0.0.tgz",
                     "/lp-chart/-/lp-chart-1.0.0.tgz"]
    assert all("rel=prefetch" in part for part in headers["Link"].split(", "))
