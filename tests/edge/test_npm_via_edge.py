"""The real npm client through an edge: install, then install again with the origin
stopped and a clean npm cache (everything comes from the edge)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from .conftest import get, make_origin, publish
from .support import EdgeProcess

pytestmark = [pytest.mark.npm, pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")]


def npm_install(registry: str, root: Path, tag: str) -> subprocess.CompletedProcess[str]:
    app = root / f"app-{tag}"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "consumer", "version": "0.0.0", "private": True,
                                                  "dependencies": {"@np/app": "^1.0.0"}}))
    rc = root / f"npmrc-{tag}"
    rc.write_text(f"registry={registry}/\naudit=false\nfund=false\nupdate-notifier=false\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update({"npm_config_userconfig": str(rc), "npm_config_cache": str(root / f"cache-{tag}"),
                "NO_UPDATE_NOTIFIER": "1", "CI": "true"})
    result = subprocess.run(["npm", "install", "--no-audit", "--prefer-online"], cwd=app, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = json.loads((app / "node_modules" / "np-leaf" / "package.json").read_text())
    assert installed["version"] == "1.0.1"
    lock = json.loads((app / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/np-leaf"]["resolved"].startswith(registry)
    return result


async def test_npm_install_through_an_edge_then_with_the_origin_stopped(tmp_path: Path,
                                                                        edges: list[EdgeProcess]) -> None:
    origin = make_origin(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            await publish(http, origin.url, origin.admin, "np-leaf", "1.0.0")
            await publish(http, origin.url, origin.admin, "np-leaf", "1.0.1")
            await publish(http, origin.url, origin.admin, "@np/app", "1.0.0", dependencies={"np-leaf": "^1.0.0"})
        edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
        edges.append(edge)
        await asyncio.to_thread(npm_install, edge.url, tmp_path, "online")
    finally:
        origin.process.stop()
    await asyncio.to_thread(npm_install, edge.url, tmp_path, "offline")
    async with aiohttp.ClientSession() as http:
        health = json.loads((await get(http, f"{edge.url}/-/health"))[2])
    assert health["upstream"]["state"] == "down" or not health["feed"]["connected"]
