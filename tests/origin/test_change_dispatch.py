"""The origin's change dispatcher (feed.py): every committed event reaches every subscriber
once, in seq order, whether this process wrote it or another one did."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from eghact_common import wire
from eghact_origin.auth import hash_token, new_token
from eghact_origin.http.appkeys import NOTIFIER, REGISTRY, RESOLUTIONS

from ..conftest import start_origin
from ..support import cli, escaped, manifest, publish_body
from .test_mirror_apply import stage


class Recorder:
    """A subscriber that keeps what it was handed, batch by batch."""

    def __init__(self) -> None:
        self.events: list[wire.ChangeEvent] = []

    def __call__(self, events: list[wire.ChangeEvent]) -> None:
        self.events.extend(events)

    @property
    def seqs(self) -> list[int]:
        return [event.seq for event in self.events]


async def publish(session: aiohttp.ClientSession, url: str, token: str, name: str, version: str,
                  **extra: object) -> None:
    async with session.put(f"{url}/{escaped(name)}", json=publish_body(manifest(name, version, **extra)),
                           headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 201, await response.text()


async def deliveries(session: aiohttp.ClientSession, url: str, admin: str) -> dict[str, float]:
    async with session.get(f"{url}/-/metrics", headers={"Authorization": f"Bearer {admin}"}) as response:
        assert response.status == 200
        text = await response.text()
    found = re.findall(r'^eghact_origin_change_deliveries_total\{subscriber="([^"]+)"\} (\S+)$', text, re.M)
    return {name: float(value) for name, value in found}


async def changes_since(session: aiohttp.ClientSession, url: str, admin: str, since: int) -> list[dict]:
    async with session.get(f"{url}/-/v1/changes?since={since}&limit=1000",
                           headers={"Authorization": f"Bearer {admin}"}) as response:
        return (await response.json())["results"]


async def test_a_publish_invalidates_a_resolution_once(tmp_path: Path) -> None:
    # The poll sleeps through the test: whatever is delivered was handed over or poked.
    runner, url = await start_origin(tmp_path / "data", private_scopes=("@acme",), feed_poll_interval=3600)
    try:
        admin, token = _token(runner.app, "admin"), _token(runner.app, "publish:*")
        notifier, resolutions = runner.app[NOTIFIER], runner.app[RESOLUTIONS]
        async with aiohttp.ClientSession() as session:
            await publish(session, url, token, "utilx", "1.0.0")
            await publish(session, url, token, "chart", "1.0.0", dependencies={"utilx": "^1.0.0"})
            async with session.post(f"{url}/-/v1/resolve", json={"dependencies": {"chart": "*"}}) as response:
                assert response.status == 200, await response.text()
                digest = response.headers["Eghact-Resolution"]
            before, since = await deliveries(session, url, admin), notifier.last_seq

            await publish(session, url, token, "utilx", "1.1.0")
            await resolutions.settle()  # the stale marking, which appends a resolution event and pokes
            events = await changes_since(session, url, admin, since)
            assert [(e["type"], e["name"]) for e in events] == [("publish", "utilx"), ("resolution", "utilx")]
            assert f"res:{digest}" in events[1]["keys"]  # marked stale once: one event, not one per delivery
            assert await notifier.wait_beyond(events[-1]["seq"] - 1, 10)  # delivered without waiting for a tick
            # What the poll does at its tick: read the table beyond its cursor, where nothing is new.
            await notifier.catch_up()
            await resolutions.settle()
            after = await deliveries(session, url, admin)
        assert notifier.last_seq == events[-1]["seq"]
        for subscriber in ("registry", "resolutions"):
            assert after[subscriber] - before.get(subscriber, 0) == len(events), (subscriber, before, after)
    finally:
        await runner.cleanup()


async def test_local_and_foreign_writes_are_delivered_in_seq_order(tmp_path: Path) -> None:
    # The poll sleeps through the test: each foreign event can only reach the subscribers
    # through the gap a later local write finds before its own events.
    runner, url = await start_origin(tmp_path / "data", feed_poll_interval=3600)
    data = str(tmp_path / "data")
    try:
        notifier = runner.app[NOTIFIER]
        recorder = Recorder()
        notifier.subscribe("test", recorder)
        token = _token(runner.app, "publish:*")
        async with aiohttp.ClientSession() as session:
            await publish(session, url, token, "lib-a", "1.0.0")
            for step in range(2):  # foreign, local, foreign, local
                await asyncio.to_thread(cli, "advisory", "add", "--data", data, "--name", "lib-a", "--range",
                                        f"<1.{step}.0", "--severity", "low", "--title", f"t{step}")
                await publish(session, url, token, "lib-a", f"1.{step + 1}.0")
            await notifier.catch_up()
            async with session.get(f"{url}/lib-a") as response:  # the registry cache saw the last publish
                assert set((await response.json())["versions"]) == {"1.0.0", "1.1.0", "1.2.0"}
        assert [(e.seq, e.type) for e in recorder.events] == [
            (1, "publish"), (2, "advisory"), (3, "publish"), (4, "advisory"), (5, "publish")]
        assert notifier.last_seq == 5
    finally:
        await runner.cleanup()


def _token(app: web.Application, scope: str) -> str:
    token = new_token()
    app[REGISTRY].store.create_token_sync(scope, hash_token(token), [scope], actor="test")
    return token


@dataclass
class _Url:
    url: str


async def test_events_mirror_apply_writes_into_a_served_data_dir_are_delivered_once(tmp_path: Path) -> None:
    source_runner, source_url = await start_origin(tmp_path / "source")
    mirror_dir = tmp_path / "mirror"
    try:
        token = _token(source_runner.app, "publish:*")
        source = _Url(source_url)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{source_url}/-/health") as response:
                origin_id = (await response.json())["registry_id"]
            await publish(session, source_url, token, "m-a", "1.0.0")
            first = await asyncio.to_thread(stage, source, tmp_path / "s1", since=0, previous=None,  # type: ignore[arg-type]
                                            origin_id=origin_id)
            await asyncio.to_thread(cli, "mirror-apply", "--data", str(mirror_dir), "--staged", str(tmp_path / "s1"))

            # Served with a private scope: the events mirror-apply writes are numbered by the server.
            runner, url = await start_origin(mirror_dir, read_only=True, private_scopes=("@p",),
                                             feed_poll_interval=0.05)
            try:
                notifier = runner.app[NOTIFIER]
                recorder = Recorder()
                notifier.subscribe("test", recorder)
                async with session.get(f"{url}/m-a") as response:  # rendered and cached
                    assert set((await response.json())["versions"]) == {"1.0.0"}

                await publish(session, source_url, token, "m-a", "1.1.0")
                await publish(session, source_url, token, "@p/secret", "1.0.0")
                await publish(session, source_url, token, "m-c", "1.0.0")
                second = await asyncio.to_thread(stage, source, tmp_path / "s2", since=first["to_seq"],  # type: ignore[arg-type]
                                                 previous=first["bundle_digest"], origin_id=origin_id)
                await asyncio.to_thread(cli, "mirror-apply", "--data", str(mirror_dir),
                                        "--staged", str(tmp_path / "s2"))
                assert await notifier.wait_beyond(second["to_seq"] - 1, 10)
                await notifier.catch_up()  # another look at the table delivers nothing again

                assert recorder.seqs == list(range(first["to_seq"] + 1, second["to_seq"] + 1))
                async with session.get(f"{url}/m-a") as response:  # the foreign event invalidated it
                    assert set((await response.json())["versions"]) == {"1.0.0", "1.1.0"}
                async with session.get(f"{url}/-/health") as response:
                    health = await response.json()
                # the public numbering skips the private event, and the notifier follows it
                assert health["seq"] == health["notifier_seq"] == second["to_seq"] - 1
                admin = _token(runner.app, "admin")
                counts = await deliveries(session, url, admin)
                assert counts["registry"] == counts["resolutions"] == second["event_count"] == 3
            finally:
                await runner.cleanup()
    finally:
        await source_runner.cleanup()

