"""Pulled packages through an edge: a refresh event purges what the edge holds, and the real
npm client installs an uplinked package with a dependency through the edge."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ...edge.support import EdgeProcess
from .support import doc, uplinked


async def test_an_edge_purges_a_pulled_packument_on_its_refresh_event(tmp_path: Path) -> None:
    async with uplinked(tmp_path, "--uplink-max-age", "1s") as (upstream, _proxy, subject):
        await upstream.publish("edgy", "1.0.0")
        edge = await EdgeProcess(subject.url, tmp_path / "edge").astart()
        try:
            assert list((await doc(f"{edge.url}/edgy"))[1]["versions"]) == ["1.0.0"]
            await upstream.publish("edgy", "1.1.0")
            await asyncio.sleep(1.2)
            assert (await doc(f"{subject.url}/edgy"))[0] == 200  # a read at the origin refreshes it
            for _ in range(50):  # the event reaches the edge over its feed; bounded wait
                versions = sorted((await doc(f"{edge.url}/edgy"))[1]["versions"])
                if versions == ["1.0.0", "1.1.0"]:
                    break
                await asyncio.sleep(0.1)
            assert versions == ["1.0.0", "1.1.0"]
        finally:
            await edge.astop()


@pytest.mark.npm
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
async def test_npm_installs_a_pulled_package_with_a_dependency_through_an_edge(tmp_path: Path) -> None:
    async with uplinked(tmp_path) as (upstream, proxy, subject):
        await upstream.publish("up-leaf", "1.0.0")
        await upstream.publish("up-leaf", "1.2.0")
        await upstream.publish("@up/app", "1.0.0", dependencies={"up-leaf": "^1.0.0"})
        edge = await EdgeProcess(subject.url, tmp_path / "edge").astart()
        try:
            app = tmp_path / "app"
            app.mkdir()
            (app / "package.json").write_text(json.dumps({"name": "consumer", "version": "0.0.0", "private": True,
                                                          "dependencies": {"@up/app": "^1.0.0"}}))
            rc = tmp_path / "npmrc"
            rc.write_text(f"registry={edge.url}/\naudit=false\nfund=false\nupdate-notifier=false\n")
            env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
            env.update({"npm_config_userconfig": str(rc), "npm_config_cache": str(tmp_path / "cache"),
                        "NO_UPDATE_NOTIFIER": "1", "CI": "true"})
            result = await asyncio.to_thread(subprocess.run, ["npm", "install", "--no-audit"], cwd=app, env=env,
                                             capture_output=True, text=True, timeout=180)
            assert result.returncode == 0, result.stdout + result.stderr
            leaf = json.loads((app / "node_modules" / "up-leaf" / "package.json").read_text())
            assert leaf["version"] == "1.2.0"
            lock = json.loads((app / "package-lock.json").read_text())
            assert lock["packages"]["node_modules/@up/app"]["resolved"].startswith(edge.url)
            assert proxy.count("/-/up-leaf-1.2.0.tgz") == 1 and proxy.count("/-/app-1.0.0.tgz") == 1
        finally:
            await edge.astop()
