"""The pull policy end to end: a second origin of ours as the upstream (through the counting
proxy), the origin under test in this process on an injected clock, an edge in front of it.

The cooldown hides a just-published version (its tarball too, even by direct URL); an admin's
allow shows it with one feed event that reaches the edge; moving the clock past its reveal time
shows it with no upstream request (the background refresher applies the policy again); an
advisory hides a version at pull time; a package with nothing visible is 404
``versions_held_back``; exempt names skip the cooldown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from eghact_origin.auth import hash_token, new_token
from eghact_origin.http.appkeys import REGISTRY
from eghact_origin.uplinks.policy import published_at

from ...edge.support import EdgeProcess
from .support import Clock, InProcess, doc, fetch, until, uplinked_here

HOUR = 3600.0


def admin(origin: InProcess) -> str:
    token = new_token()
    origin.app[REGISTRY].store.create_token_sync("ops", hash_token(token), ["admin"], actor="test")
    return token


async def events(origin: InProcess, name: str) -> list[dict[str, Any]]:
    _, changes = await doc(f"{origin.url}/-/v1/changes?since=0&limit=1000")
    return [e for e in changes["results"] if e["name"] == name]


async def allowed(origin: InProcess, method: str, path: str, token: str) -> int:
    async with aiohttp.ClientSession() as http, http.request(
            method, f"{origin.url}/-/v1/uplinks/allowed/{path}", headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status


async def test_cooldown_allow_reveal_advisory_and_exemption(tmp_path: Path) -> None:
    clock = Clock()
    async with uplinked_here(tmp_path, clock, uplink_min_age=HOUR, uplink_min_age_exempt=("exempt-*",),
                             uplink_block_severity="high") as (upstream, proxy, origin):
        await upstream.publish("risky", "1.0.0")
        await upstream.publish("cool", "1.0.0")
        await asyncio.sleep(0.3)  # so that the two versions' publish times differ by that much
        await upstream.publish("cool", "1.1.0")
        _, up = await doc(f"{upstream.origin.url}/cool")
        first, second = (published_at(up["time"], v) for v in ("1.0.0", "1.1.0"))
        assert first is not None and second is not None and second - first >= 0.25
        # An hour after 1.0.0 was published, not yet an hour after 1.1.0.
        clock.now = first + HOUR + (second - first) / 2

        edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
        try:
            status, cool = await doc(f"{edge.url}/cool")
            assert status == 200 and list(cool["versions"]) == ["1.0.0"] and cool["dist-tags"]["latest"] == "1.0.0"
            assert "1.1.0" not in cool["time"]
            for url in (f"{origin.url}/cool/-/cool-1.1.0.tgz", f"{edge.url}/cool/-/cool-1.1.0.tgz",
                        f"{origin.url}/cool/1.1.0"):
                status, body = await doc(url)
                assert (status, body["error"]) == (404, "versions_held_back"), url
                assert body["detail"] == {"name": "cool", "version": "1.1.0", "reason": "cooldown"}
            assert proxy.count("cool-1.1.0.tgz") == 0  # a hidden tarball is never fetched

            # An admin lets 1.1.0 through: one feed event, and the edge (which holds the packument
            # as fresh while the feed vouches for it) purges it and serves the new view.
            token = admin(origin)
            before = len(await events(origin, "cool"))
            assert await allowed(origin, "PUT", "cool/1.1.0", token) == 200
            assert [e["type"] for e in (await events(origin, "cool"))[before:]] == ["uplink"]

            async def edge_shows_both() -> bool:
                _, seen = await doc(f"{edge.url}/cool")
                return sorted(seen["versions"]) == ["1.0.0", "1.1.0"] and seen["dist-tags"]["latest"] == "1.1.0"

            assert await until(edge_shows_both)
            assert (await fetch(f"{edge.url}/cool/-/cool-1.1.0.tgz"))[0] == 200

            # Withdrawn: hidden again (one more event). Then its time comes: visible again with
            # no upstream request, and no read at the origin to trigger anything.
            assert await allowed(origin, "DELETE", "cool/1.1.0", token) == 200
            _, hidden = await doc(f"{origin.url}/cool")
            assert list(hidden["versions"]) == ["1.0.0"]

            async def tarball_held_back_at_the_edge() -> bool:
                status, body, _ = await fetch(f"{edge.url}/cool/-/cool-1.1.0.tgz")  # the edge held it: purged
                return status == 404 and json.loads(body)["error"] == "versions_held_back"

            assert await until(tarball_held_back_at_the_edge)
            asked, before = proxy.count(), len(await events(origin, "cool"))
            clock.now = second + HOUR + 0.01
            assert await until(lambda: _uplink_events_since(origin, "cool", before))
            assert await until(edge_shows_both)
            assert proxy.count() == asked, proxy.requests

            # An advisory of the blocking severity hides a version at pull time; with nothing
            # else visible the package is 404 versions_held_back (no visible_after: no cooldown).
            await asyncio.to_thread(origin.app[REGISTRY].store.add_advisory_sync, {
                "name": "risky", "vulnerable_versions": "<2.0.0", "severity": "high", "title": "bad"}, actor="t")
            status, body = await doc(f"{origin.url}/risky")
            assert (status, body["error"]) == (404, "versions_held_back")
            assert body["detail"] == {"name": "risky", "hidden": {"advisory": 1}}
            status, body = await doc(f"{origin.url}/risky/latest")
            assert (status, body["error"]) == (404, "versions_held_back")
            status, body = await doc(f"{origin.url}/risky/-/risky-1.0.0.tgz")
            assert (status, body["detail"]) == (404, {"name": "risky", "version": "1.0.0", "reason": "advisory"})
            assert proxy.count("risky-1.0.0.tgz") == 0

            # Published just now: cooled, every version; an exempt name is not.
            await upstream.publish("young", "1.0.0")
            await upstream.publish("exempt-young", "1.0.0")
            status, body = await doc(f"{edge.url}/young")
            assert (status, body["error"]) == (404, "versions_held_back")
            assert body["detail"]["hidden"] == {"cooldown": 1} and body["detail"]["visible_after"] > "2026"
            status, body = await doc(f"{edge.url}/exempt-young")
            assert status == 200 and list(body["versions"]) == ["1.0.0"]

            # A resolution that needs a held-back package says so, with the same code.
            async with aiohttp.ClientSession() as http, http.post(
                    f"{origin.url}/-/v1/resolve", json={"dependencies": {"young": "^1.0.0"}}) as response:
                answer = await response.json()
            assert (response.status, answer["error"]) == (404, "versions_held_back"), answer
            assert answer["detail"]["name"] == "young"
        finally:
            await edge.astop()


async def _uplink_events_since(origin: InProcess, name: str, count: int) -> bool:
    return len(await events(origin, name)) > count
