"""``POST /-/v1/resolve`` across both worlds: a local plugin whose dependencies are public
packages the store lacks resolves, their packuments pulled through the uplink first."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from ...support import manifest, publish_body
from .support import admin_token, put, uplinked


async def test_a_local_plugin_with_public_dependencies_resolves_through_the_uplink(tmp_path: Path) -> None:
    (tmp_path / "subject").mkdir()
    admin = admin_token(tmp_path / "subject")
    async with uplinked(tmp_path) as (upstream, proxy, subject):
        await upstream.publish("pub-dep", "2.0.0")
        await upstream.publish("pub-dep", "3.0.0")
        await upstream.publish("pub-lib", "1.0.0", dependencies={"pub-dep": "^2.0.0"})
        await upstream.publish("pub-lib", "1.1.0", dependencies={"pub-dep": "^2.0.0"})
        await upstream.publish("pub-unused", "1.0.0")
        plugin = manifest("@loc/plugin", "1.0.0", dependencies={"pub-lib": "^1.0.0"})
        assert (await put(subject.url, "@loc/plugin", publish_body(plugin), admin))[0] == 201
        async with aiohttp.ClientSession() as http, http.post(
                f"{subject.url}/-/v1/resolve", json={"dependencies": {"@loc/plugin": "^1.0.0"}}) as response:
            body = await response.json()
            assert response.status == 200, body
        pins = {(p["name"], p["version"]) for p in body["packages"].values()} if isinstance(body["packages"], dict) \
            else {(p["name"], p["version"]) for p in body["packages"]}
        assert {("@loc/plugin", "1.0.0"), ("pub-lib", "1.1.0"), ("pub-dep", "2.0.0")} <= pins
        assert proxy.count("/pub-lib") == 1 and proxy.count("/pub-dep") == 1
        assert proxy.count("/pub-unused") == 0 and proxy.count("plugin") == 0  # only what it reaches; never local names
