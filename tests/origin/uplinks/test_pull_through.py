"""Pull-through against a real upstream origin behind a counting proxy: packuments and tarballs
fetched once, stored, served from the store after; concurrent misses share one request."""

from __future__ import annotations

import asyncio
from pathlib import Path

from eghact_common.wire import ABBREVIATED_TYPE

from ...edge.support import FakeRegistry
from ...support import OriginProcess, escaped
from .support import doc, fetch, uplinked


async def test_a_packument_and_its_tarball_are_pulled_once_and_served_from_the_store(tmp_path: Path) -> None:
    async with uplinked(tmp_path) as (upstream, proxy, subject):
        data = await upstream.publish("left-pad", "1.0.0")
        await upstream.publish("left-pad", "1.1.0", dependencies={"tiny": "^1.0.0"})
        status, full = await doc(f"{subject.url}/left-pad")
        assert status == 200 and sorted(full["versions"]) == ["1.0.0", "1.1.0"]
        assert full["dist-tags"]["latest"] == "1.1.0" and "1.0.0" in full["time"]
        tarball = full["versions"]["1.0.0"]["dist"]["tarball"]
        assert tarball == f"{subject.url}/left-pad/-/left-pad-1.0.0.tgz"  # ours, not the upstream's
        status, short = await doc(f"{subject.url}/left-pad", accept=ABBREVIATED_TYPE)
        assert status == 200 and short["versions"]["1.1.0"]["dependencies"] == {"tiny": "^1.0.0"}
        status, version = await doc(f"{subject.url}/left-pad/1.1.0")
        assert status == 200 and version["version"] == "1.1.0"
        assert proxy.count("/left-pad") == 1  # one upstream packument request for the three reads

        status, body, headers = await fetch(tarball)
        assert status == 200 and body == data  # byte for byte what the upstream published
        assert headers["Repr-Digest"].startswith("sha-512=:")
        status, again, _ = await fetch(tarball)
        assert again == data
        assert proxy.count("/left-pad/-/") == 1
        status, metrics, _ = await fetch(f"{subject.url}/-/metrics")
        assert b'eghact_origin_uplink_fetches_total{status="200",uplink="default",what="tarball"} 1.0' in metrics
        assert b"eghact_origin_uplink_hits_total" in metrics


async def test_twenty_concurrent_misses_make_one_upstream_request(tmp_path: Path) -> None:
    async with uplinked(tmp_path) as (upstream, proxy, subject):
        await upstream.publish("@pub/busy", "2.0.0")
        answers = await asyncio.gather(*(doc(f"{subject.url}/{escaped('@pub/busy')}") for _ in range(20)))
        assert {status for status, _ in answers} == {200}
        assert proxy.count("busy") == 1
        tarball = answers[0][1]["versions"]["2.0.0"]["dist"]["tarball"]
        bodies = await asyncio.gather(*(fetch(tarball) for _ in range(20)))
        assert {status for status, _, _ in bodies} == {200} and len({body for _, body, _ in bodies}) == 1
        assert proxy.count("/-/busy-2.0.0.tgz") == 1


async def test_an_unknown_name_is_a_404_remembered_briefly(tmp_path: Path) -> None:
    async with uplinked(tmp_path, "--uplink-negative-ttl", "1s") as (upstream, proxy, subject):
        for _ in range(3):
            status, _ = await doc(f"{subject.url}/nowhere")
            assert status == 404
        assert proxy.count("/nowhere") == 1  # the 404 is believed for a while ...
        await upstream.publish("nowhere", "1.0.0")
        await asyncio.sleep(1.2)
        status, found = await doc(f"{subject.url}/nowhere")  # ... not for ever
        assert status == 200 and list(found["versions"]) == ["1.0.0"]
        assert proxy.count("/nowhere") == 2


async def test_a_tarball_that_does_not_match_its_integrity_is_refused_and_not_stored(tmp_path: Path) -> None:
    fake = await FakeRegistry(packages={"bent": {"1.0.0": b"the real bytes"}}, tamper={"bent"}).start()
    subject = OriginProcess(tmp_path / "subject", ("--uplink", fake.url))
    try:
        await asyncio.to_thread(subject.start)
        status, full = await doc(f"{subject.url}/bent")
        assert status == 200
        status, refused = await doc(full["versions"]["1.0.0"]["dist"]["tarball"])
        assert status == 502 and refused["error"] == "uplink_integrity_mismatch"
        stored = [p for p in (tmp_path / "subject" / "blobs").rglob("*") if p.is_file() and len(p.name) == 128]
        assert stored == []  # nothing stored
        audit = (tmp_path / "subject" / "audit.jsonl").read_text()
        assert '"uplink-pull"' in audit and '"bent"' in audit  # the first pull is in the audit log
    finally:
        await asyncio.to_thread(subject.stop)
        await fake.stop()
