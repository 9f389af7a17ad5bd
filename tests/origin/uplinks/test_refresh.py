"""Refresh and failure: a pulled packument is revalidated after its max age (a 304 changes
nothing; a changed upstream is one feed event), and served from the store when the uplink
fails or hangs (stale-if-error), while a name the store lacks gets the stable 502."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from .support import doc, fetch, uplinked


async def uplink_events(url: str, name: str) -> list[dict[str, object]]:
    _, changes = await doc(f"{url}/-/v1/changes?since=0&limit=1000")
    return [e for e in changes["results"] if e["name"] == name and e["type"] == "uplink"]


async def test_after_max_age_a_304_changes_nothing_and_a_new_version_is_one_event(tmp_path: Path) -> None:
    async with uplinked(tmp_path, "--uplink-max-age", "1s") as (upstream, proxy, subject):
        await upstream.publish("fresh", "1.0.0")
        assert (await doc(f"{subject.url}/fresh"))[0] == 200
        assert len(await uplink_events(subject.url, "fresh")) == 1  # the first pull
        await asyncio.sleep(1.2)
        status, same = await doc(f"{subject.url}/fresh")
        assert status == 200 and list(same["versions"]) == ["1.0.0"]
        assert proxy.conditional["/fresh"] == 1 and proxy.statuses[304] == 1
        assert len(await uplink_events(subject.url, "fresh")) == 1  # a 304 is no change
        _, metrics, _ = await fetch(f"{subject.url}/-/metrics")
        assert b'eghact_origin_uplink_refreshes_total{result="304",uplink="default"} 1.0' in metrics

        await upstream.publish("fresh", "1.1.0")
        status, cached = await doc(f"{subject.url}/fresh")  # within its max age: the stored copy
        assert list(cached["versions"]) == ["1.0.0"]
        await asyncio.sleep(1.2)
        status, newer = await doc(f"{subject.url}/fresh")
        assert status == 200 and sorted(newer["versions"]) == ["1.0.0", "1.1.0"]
        assert newer["dist-tags"]["latest"] == "1.1.0"
        events = await uplink_events(subject.url, "fresh")
        assert len(events) == 2 and events[-1]["keys"] == ["pkg:fresh", "search"]


async def test_the_stored_copy_is_served_when_the_uplink_is_down(tmp_path: Path) -> None:
    async with uplinked(tmp_path, "--uplink-max-age", "1s") as (upstream, proxy, subject):
        await upstream.publish("kept", "1.0.0")
        status, first = await doc(f"{subject.url}/kept")
        tarball = first["versions"]["1.0.0"]["dist"]["tarball"]
        assert (await fetch(tarball))[0] == 200
        _, health = await doc(f"{subject.url}/-/health")
        assert health["status"] == "ok" and health["uplinks"]["states"] == {"default": "ok"}
        proxy.mode = "503"
        await asyncio.sleep(1.2)
        status, stale = await doc(f"{subject.url}/kept")
        assert status == 200 and stale == first  # never a 5xx for a name the store holds
        assert (await fetch(tarball))[0] == 200  # a fetched tarball needs no uplink
        _, health = await doc(f"{subject.url}/-/health")
        assert health["status"] == "degraded" and health["uplinks"]["serving_stale"] == 1
        assert health["uplinks"]["states"]["default"] in ("degraded", "down")
        status, missing = await doc(f"{subject.url}/never-pulled")
        assert status == 502 and missing["error"] == "uplink_unavailable"


async def test_a_hanging_uplink_serves_the_stored_copy_within_the_deadline(tmp_path: Path) -> None:
    async with uplinked(tmp_path, "--uplink-max-age", "1s", "--uplink-timeout", "20s") as (upstream, proxy, subject):
        await upstream.publish("slow", "1.0.0")
        status, first = await doc(f"{subject.url}/slow")
        proxy.mode = "hang"
        await asyncio.sleep(1.2)
        started = time.monotonic()
        status, stale = await doc(f"{subject.url}/slow")
        assert status == 200 and stale == first
        assert time.monotonic() - started < 6  # the refresh deadline (3 s), not the 20 s timeout


async def test_a_dropped_connection_is_retried_then_502(tmp_path: Path) -> None:
    async with uplinked(tmp_path) as (_upstream, proxy, subject):
        proxy.mode = "drop"
        status, body = await doc(f"{subject.url}/dropped")
        assert status == 502 and body["error"] == "uplink_unavailable"
        # Three attempts (two retries with backoff); aiohttp itself asks again once when a
        # kept-alive connection is closed under a request, so each attempt is one or two requests.
        assert 3 <= proxy.requests["/dropped"] <= 6
        status, body = await doc(f"{subject.url}/dropped-too")
        assert status == 502 and 3 <= proxy.requests["/dropped-too"] <= 6
        # Two failed requests in a row: the uplink is down for its cool-off, asked no more.
        status, body = await doc(f"{subject.url}/dropped-three")
        assert status == 502 and proxy.requests["/dropped-three"] == 0
