"""No dependency confusion, by construction: private scopes, names published here (unpublished
ones too) and names routed ``local`` are never requested from an uplink, whatever is asked
(packument, version, tarball, resolve); a pulled copy is read-only, and publishing over it
takes an admin's explicit takeover, after which the name is local for ever."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from ...support import cli, escaped, manifest, publish_body
from .support import doc, fetch, put, uplinked


def token(data_dir: Path, name: str, *scopes: str) -> str:
    args = [a for scope in scopes for a in ("--scope", scope)]
    return cli("token", "create", "--data", str(data_dir), "--name", name, *args).stdout.split()[-1]


async def test_private_local_and_local_routed_names_never_reach_the_uplink(tmp_path: Path) -> None:
    (tmp_path / "subject").mkdir()
    admin = token(tmp_path / "subject", "admin", "admin")
    async with uplinked(tmp_path, "--private-scope", "@acme", "--route", "internal-*=local") as (
            upstream, proxy, subject):
        for name in ("mine", "gone", "@acme/secret", "@acme/other", "internal-tool"):
            await upstream.publish(name, "9.9.9")  # the attacker's copies, upstream
        for name in ("mine", "gone", "@acme/secret"):
            assert (await put(subject.url, name, publish_body(manifest(name, "1.0.0")), admin))[0] == 201
        async with aiohttp.ClientSession() as http, http.delete(
                f"{subject.url}/gone/-rev/1", headers={"Authorization": f"Bearer {admin}"}) as response:
            assert response.status == 200  # every version of it unpublished: still local for ever

        assert list((await doc(f"{subject.url}/mine"))[1]["versions"]) == ["1.0.0"]
        assert (await doc(f"{subject.url}/mine/9.9.9"))[0] == 404
        assert (await doc(f"{subject.url}/gone"))[0] == 404
        assert list((await doc(f"{subject.url}/{escaped('@acme/secret')}", token=admin))[1]["versions"]) == ["1.0.0"]
        assert (await doc(f"{subject.url}/{escaped('@acme/other')}", token=admin))[0] == 404
        assert (await doc(f"{subject.url}/{escaped('@acme/other')}"))[0] == 401
        assert (await doc(f"{subject.url}/internal-tool"))[0] == 404
        assert (await doc(f"{subject.url}/internal-tool/9.9.9"))[0] == 404
        for path in ("/mine/-/mine-9.9.9.tgz", "/gone/-/gone-9.9.9.tgz", "/internal-tool/-/internal-tool-9.9.9.tgz",
                     "/@acme/other/-/other-9.9.9.tgz"):
            assert (await fetch(subject.url + path, token=admin))[0] in (401, 404)
        async with aiohttp.ClientSession() as http, http.post(
                f"{subject.url}/-/v1/resolve", headers={"Authorization": f"Bearer {admin}"},
                json={"dependencies": {"internal-tool": "^9.0.0", "@acme/other": "^9.0.0", "mine": "^9.0.0"}}) as r:
            assert r.status == 422
        assert sum(proxy.requests.values()) == 0, proxy.requests


async def test_a_pulled_copy_is_read_only_until_an_admin_takes_it_over(tmp_path: Path) -> None:
    (tmp_path / "subject").mkdir()
    admin = token(tmp_path / "subject", "admin", "admin")
    publisher = token(tmp_path / "subject", "pub", "publish:*")
    async with uplinked(tmp_path) as (upstream, proxy, subject):
        await upstream.publish("pulled", "1.0.0")
        assert (await doc(f"{subject.url}/pulled"))[0] == 200
        status, refused = await put(subject.url, "pulled", publish_body(manifest("pulled", "2.0.0")), admin)
        assert status == 409 and refused["error"] == "uplinked_package" and "takeover=1" in refused["message"]
        async with aiohttp.ClientSession() as http, http.put(
                f"{subject.url}/-/package/pulled/dist-tags/beta", data=json.dumps("1.0.0"),
                headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"}) as response:
            assert response.status == 409 and (await response.json())["error"] == "uplinked_package"
        status, _ = await put(subject.url, "pulled", publish_body(manifest("pulled", "2.0.0")), publisher,
                              query="?takeover=1")
        assert status == 403  # a takeover is an admin's
        status, _ = await put(subject.url, "pulled", publish_body(manifest("pulled", "1.0.0")), admin,
                              query="?takeover=1")
        assert status == 409  # a version number the uplink used stays used; nothing changed
        assert list((await doc(f"{subject.url}/pulled"))[1]["versions"]) == ["1.0.0"]
        status, _ = await put(subject.url, "pulled", publish_body(manifest("pulled", "2.0.0")), admin,
                              query="?takeover=1")
        assert status == 201
        before = proxy.count("/pulled")
        status, local = await doc(f"{subject.url}/pulled")
        assert status == 200 and list(local["versions"]) == ["2.0.0"]
        await upstream.publish("pulled", "3.0.0")
        assert list((await doc(f"{subject.url}/pulled"))[1]["versions"]) == ["2.0.0"]
        assert proxy.count("/pulled") == before  # local for ever: never asked upstream again
