"""The batch read pulls through as the single reads do: packuments, version documents and
tarballs of names the store lacks are fetched from the uplink (one upstream request per name
or tarball, however many items ask), behind the same gate (private scopes and local names
never leave), with the single read's error for each item that cannot be served."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from ...support import escaped, manifest, publish_body
from ..test_batch_read import frames
from .support import admin_token, fetch, put, uplinked

CORGI = "application/vnd.npm.install-v1+json"
DISTS = "application/vnd.eghact.dists+json"


async def batch(url: str, items: list[Any], token: str | None = None) -> list[tuple[dict[str, Any], bytes]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.post(f"{url}/-/v1/batch", json=items,
                                                                headers=headers) as response:
        assert response.status == 200, await response.text()
        return frames(await response.read())


async def test_a_batch_pulls_packuments_and_tarballs_through_once(tmp_path: Path) -> None:
    async with uplinked(tmp_path) as (upstream, proxy, subject):
        pad = await upstream.publish("left-pad", "1.0.0")
        await upstream.publish("left-pad", "1.1.0")
        scoped = await upstream.publish("@pub/thing", "2.0.0")
        items: list[Any] = ["/left-pad", {"path": "/left-pad", "accept": CORGI}, "/left-pad/1.1.0",
                            {"path": "/left-pad", "accept": DISTS}, "/left-pad/-/left-pad-1.0.0.tgz",
                            "/left-pad/-/left-pad-1.0.0.tgz",
                            # a tarball whose package was never read: pulled first, then fetched
                            f"/{escaped('@pub/thing')}/-/thing-2.0.0.tgz", "/nowhere", "/nowhere/-/nowhere-1.0.0.tgz"]
        got = await batch(subject.url, items)
        assert [head["status"] for head, _ in got] == [200, 200, 200, 200, 200, 200, 200, 404, 404]
        assert sorted(json.loads(got[0][1])["versions"]) == ["1.0.0", "1.1.0"]
        assert json.loads(got[2][1])["version"] == "1.1.0"
        assert got[4][1] == got[5][1] == pad and got[6][1] == scoped  # byte for byte the upstream's
        assert proxy.count("/left-pad") == 2  # one packument and one tarball request for six items
        assert proxy.count("/left-pad/-/") == 1 and proxy.count("thing-2.0.0.tgz") == 1
        assert proxy.count("/nowhere") == 1  # a 404, believed for the rest of the batch
        # The tarball list says the package is pulled, and which tarballs the origin holds.
        listed = json.loads((await batch(subject.url, [{"path": "/left-pad", "accept": DISTS}]))[0][1])
        assert listed["uplink"] == "default"
        assert {version: size for version, _, _, size in listed["dists"]} == {"1.0.0": len(pad), "1.1.0": 0}

        again = await batch(subject.url, items[:7])
        assert [head["status"] for head, _ in again] == [200] * 7
        assert proxy.count("/left-pad") == 2 and proxy.count("thing-2.0.0.tgz") == 1  # now local reads


async def test_private_and_local_names_never_leave_through_a_batch(tmp_path: Path) -> None:
    async with uplinked(tmp_path, "--private-scope", "@acme") as (upstream, proxy, subject):
        await upstream.publish("@acme/secret", "1.0.0")
        await upstream.publish("mine", "9.0.0")
        token = admin_token(subject.data_dir)
        status, _ = await put(subject.url, "mine", publish_body(manifest("mine", "1.0.0")), token)
        assert status == 201
        items = [f"/{escaped('@acme/secret')}", f"/{escaped('@acme/secret')}/-/secret-1.0.0.tgz",
                 "/mine", "/mine/9.0.0", "/mine/-/mine-9.0.0.tgz", "/mine/-/mine-1.0.0.tgz"]
        anonymous = await batch(subject.url, items)
        assert [head["status"] for head, _ in anonymous][:2] == [401, 401]
        got = await batch(subject.url, items, token)
        assert [head["status"] for head, _ in got] == [404, 404, 200, 404, 404, 200]
        assert list(json.loads(got[2][1])["versions"]) == ["1.0.0"]
        assert proxy.count("secret") == 0 and proxy.count("mine") == 0
        listed = json.loads((await batch(subject.url, [{"path": "/mine", "accept": DISTS}], token))[0][1])
        assert "uplink" not in listed  # a local package


async def test_each_item_gets_the_single_reads_error_when_the_uplink_is_down(tmp_path: Path) -> None:
    async with uplinked(tmp_path) as (upstream, proxy, subject):
        await upstream.publish("kept", "1.0.0")
        await upstream.publish("never-read", "1.0.0")
        assert (await batch(subject.url, ["/kept"]))[0][0]["status"] == 200
        proxy.mode = "503"
        got = await batch(subject.url, ["/kept", "/never-read", "/never-read/1.0.0",
                                        "/kept/-/kept-1.0.0.tgz", "/never-read/-/never-read-1.0.0.tgz"])
        statuses = [head["status"] for head, _ in got]
        errors = [json.loads(body).get("error") if head["status"] != 200 else None for head, body in got]
        assert statuses == [200, 502, 502, 502, 502], errors  # a stored name is never a 5xx ...
        assert errors[1:] == ["uplink_unavailable"] * 4  # ... a missing one is the single read's 502
        single, body, _ = await fetch(f"{subject.url}/never-read")
        assert single == 502 and json.loads(body)["error"] == "uplink_unavailable"
