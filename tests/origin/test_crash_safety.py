"""DESIGN §6.1: kill -9 at any moment, restart, and every acknowledged publish is there
intact; the feed has no gap; the audit log still verifies."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from eghact_common.integrity import sri_sha512

from ..support import OriginProcess, cli, manifest, publish_body, tarball_for

pytestmark = pytest.mark.slow

ROUNDS = 3
WRITERS = 4


async def publish_until_killed(url: str, token: str, round_no: int, acked: dict[str, bytes],
                               deadline: float) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async def writer(worker: int) -> None:
            n = 0
            while time.monotonic() < deadline:
                version = f"{round_no}.{worker}.{n}"
                doc = manifest("crashy", version)
                data = tarball_for(doc, {"payload.js": f"// {version}\n".encode() * 200})
                try:
                    async with session.put(f"{url}/crashy", json=publish_body(doc, data),
                                           headers={"Authorization": f"Bearer {token}"}) as response:
                        if response.status == 201:
                            await response.read()
                            acked[version] = data
                        n += 1
                except (aiohttp.ClientError, TimeoutError):
                    return  # the server is gone: what was acknowledged is what counts

        await asyncio.gather(*(writer(w) for w in range(WRITERS)))


async def kill_midway(origin: OriginProcess, token: str, round_no: int, acked: dict[str, bytes],
                      kill_after: float) -> None:
    task = asyncio.create_task(publish_until_killed(origin.url, token, round_no, acked, time.monotonic() + 30))
    await asyncio.sleep(kill_after)
    origin.stop(signal.SIGKILL)
    await asyncio.wait_for(task, 30)


def test_sigkill_during_publishes_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = cli("token", "create", "--data", str(data), "--name", "w", "--scope", "publish:*").stdout.splitlines()[-1]
    acked: dict[str, bytes] = {}
    rng = random.Random(1234)
    for round_no in range(ROUNDS):
        origin = OriginProcess(data).start()
        kill_after = rng.uniform(0.4, 1.2)

        before = len(acked)
        asyncio.run(kill_midway(origin, token, round_no, acked, kill_after))
        assert len(acked) > before, "no publish was acknowledged before the kill"
        print(f"round {round_no}: killed after {kill_after:.2f}s, {len(acked) - before} publishes acknowledged")

    origin = OriginProcess(data).start()
    try:
        async def check() -> None:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{origin.url}/crashy") as response:
                    doc = await response.json()
                for version, tarball in acked.items():
                    assert version in doc["versions"], f"acknowledged {version} lost"
                    assert doc["versions"][version]["dist"]["integrity"] == sri_sha512(tarball)
                for version in rng.sample(sorted(acked), min(20, len(acked))):
                    async with session.get(f"{origin.url}/crashy/-/crashy-{version}.tgz") as response:
                        assert await response.read() == acked[version]
                async with session.get(f"{origin.url}/-/v1/changes?limit=10000") as response:
                    events = (await response.json())["results"]
                seqs = [e["seq"] for e in events]
                assert seqs == list(range(1, len(seqs) + 1)), "the feed has a gap or is out of order"
                published = {e["version"] for e in events if e["type"] == "publish"}
                assert published == set(doc["versions"])  # every version has its event, and no more

        asyncio.run(check())
    finally:
        assert origin.stop() == 0
    assert list((data / "blobs" / "tmp").iterdir()) == []
    verified = cli("audit-verify", "--data", str(data))
    assert "intact" in verified.stdout
