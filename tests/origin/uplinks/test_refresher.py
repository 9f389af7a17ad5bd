"""The background refresher: pulled packages are revalidated after their max age with no read at
the origin (an edge in front holds them fresh until an event comes, so reads never would), an
uplink that is down is asked no more while it cools off, and how far behind it is shows."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from ...edge.support import EdgeProcess
from .support import doc, fetch, uplinked, versions_become


async def metric(url: str, name: str) -> float:
    _, text, _ = await fetch(f"{url}/-/metrics")
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text.decode(), re.M)
    return float(found.group(1)) if found else 0.0


async def test_an_edge_serves_a_new_upstream_version_with_no_read_at_the_origin(tmp_path: Path) -> None:
    async with uplinked(tmp_path, "--uplink-max-age", "1s") as (upstream, proxy, subject):
        await upstream.publish("quiet", "1.0.0")
        edge = await EdgeProcess(subject.url, tmp_path / "edge").astart()
        try:
            assert list((await doc(f"{edge.url}/quiet"))[1]["versions"]) == ["1.0.0"]
            await upstream.publish("quiet", "1.1.0")
            # No read of the package anywhere while we wait: only the origin's feed is looked at.
            started = time.monotonic()
            for _ in range(60):
                _, changes = await doc(f"{subject.url}/-/v1/changes?since=0&limit=1000")
                if len([e for e in changes["results"] if e["name"] == "quiet"]) == 2:
                    break
                await asyncio.sleep(0.1)
            waited = time.monotonic() - started
            assert waited < 1.0 + 0.5 + 1.0, waited  # max age, one cycle (a quarter of it, at least 0.5 s), slack
            assert proxy.conditional["/quiet"] >= 1
            assert await metric(subject.url, 'eghact_origin_uplink_refresher_packages_total{result="refreshed"}') >= 1
            # the event reaches the edge over its feed
            assert await versions_become(edge.url, "quiet", ["1.0.0", "1.1.0"]) == ["1.0.0", "1.1.0"]
        finally:
            await edge.astop()
        assert await asyncio.to_thread(subject.stop) == 0  # SIGTERM with the refresher running: a clean exit


async def test_a_down_uplink_is_left_alone_and_the_lag_shows(tmp_path: Path) -> None:
    async with uplinked(tmp_path, "--uplink-max-age", "1s") as (upstream, proxy, subject):
        for name in ("a-pkg", "b-pkg", "c-pkg"):
            await upstream.publish(name, "1.0.0")
            assert (await doc(f"{subject.url}/{name}"))[0] == 200
        _, health = await doc(f"{subject.url}/-/health")
        assert health["uplinks"]["refresh"]["behind_seconds"] == 0
        proxy.mode = "503"
        for _ in range(60):  # the refresher's failures take the uplink down (two failed requests in a row)
            _, health = await doc(f"{subject.url}/-/health")
            if health["uplinks"]["states"]["default"] == "down":
                break
            await asyncio.sleep(0.1)
        assert health["uplinks"]["states"]["default"] == "down"
        asked = proxy.count()
        await asyncio.sleep(2.0)  # several cycles, every package due: none asked of a down uplink
        assert proxy.count() == asked
        _, health = await doc(f"{subject.url}/-/health")
        assert health["status"] == "degraded" and health["uplinks"]["serving_stale"] >= 1
        assert health["uplinks"]["refresh"]["cycles"] >= 3
        assert health["uplinks"]["refresh"]["behind_seconds"] >= 1.0  # what waits on a down uplink counts
        assert await metric(subject.url, "eghact_origin_uplink_refresher_behind_seconds") >= 1.0
        assert await metric(subject.url, 'eghact_origin_uplink_refresher_packages_total{result="failed"}') >= 1
        for name in ("a-pkg", "b-pkg", "c-pkg"):  # the stored copies are served meanwhile
            assert (await doc(f"{subject.url}/{name}"))[0] == 200
        assert proxy.count() == asked
