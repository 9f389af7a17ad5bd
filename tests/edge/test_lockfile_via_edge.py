"""Lockfiles resolved through an edge point at the edge: ``registry`` and every ``resolved``,
whether the lockfile comes from ``POST /-/v1/resolve``, ``GET /-/v1/resolutions/{hash}`` or
``eghact-origin resolve --registry``; and the real npm client, installing from it with
``npm ci``, fetches every tarball through the edge (the origin's request count says so)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..support import cli
from .conftest import Origin, get, make_origin, publish
from .support import EdgeProcess

PLUGIN = {"eghact": {"version": "^2.0.0", "type": "component"}}


async def universe(http: aiohttp.ClientSession, origin: Origin) -> None:
    """A plugin over two plain libraries that need two versions of a third: the default
    strategy nests the second copy, so the lockfile has a nested key too."""
    for name, version, extra in (
            ("lv-ms", "1.0.0", {}), ("lv-ms", "2.0.0", {}),
            ("lv-debug", "1.0.0", {"dependencies": {"lv-ms": "1.0.0"}}),
            ("lv-send", "1.0.0", {"dependencies": {"lv-ms": "2.0.0"}}),
            ("lv-shop", "1.0.0", {**PLUGIN, "dependencies": {"lv-debug": "^1.0.0", "lv-send": "^1.0.0"}})):
        assert await publish(http, origin.url, origin.admin, name, version, **extra) == 201


def assert_points_at(lock: dict[str, Any], base: str) -> None:
    assert lock["registry"] == base
    assert lock["packages"], "an empty lockfile proves nothing"
    for key, entry in lock["packages"].items():
        assert entry["resolved"].startswith(base + "/"), (key, entry["resolved"])


async def test_a_lockfile_resolved_through_an_edge_names_the_edge(tmp_path: Path, http: aiohttp.ClientSession,
                                                                   edges: list[EdgeProcess]) -> None:
    origin = make_origin(tmp_path)
    try:
        await universe(http, origin)
        edge = await EdgeProcess(origin.url, tmp_path / "edge").astart()
        edges.append(edge)
        request = {"dependencies": {"lv-shop": "^1"}}
        async with http.post(f"{edge.url}/-/v1/resolve", json=request) as response:
            assert response.status == 200, await response.text()
            lock = await response.json()
            location = response.headers["Location"]
        assert_points_at(lock, edge.url)
        assert lock["packages"]["node_modules/lv-send/node_modules/lv-ms"]["version"] == "2.0.0"

        # the built resolution, read through the edge's cache (a miss, then a hit), too
        for expected in ("MISS", "HIT-MEM"):
            status, headers, body = await get(http, edge.url + location)
            assert status == 200 and headers["X-Cache"] == expected
            assert json.loads(body) == lock

        # straight at the origin, the same resolution names the origin
        status, _, body = await get(http, origin.url + location)
        assert status == 200
        assert_points_at(json.loads(body), origin.url)

        # the CLI writes what the registry it was given answered
        out = tmp_path / "eghact-lock.json"
        await asyncio.to_thread(cli, "resolve", "lv-shop@^1", "--registry", edge.url, "-o", str(out))
        assert_points_at(json.loads(out.read_text()), edge.url)
    finally:
        origin.process.stop()


def package_lock(lock: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """package.json and package-lock.json (v3) for an app that installs ``lock`` as it is."""
    dependencies = lock["request"]["dependencies"]
    manifest = {"name": "consumer", "version": "0.0.0", "private": True, "dependencies": dependencies}
    packages: dict[str, Any] = {"": {"name": "consumer", "version": "0.0.0", "dependencies": dependencies}}
    for key, entry in lock["packages"].items():
        packages[key] = {"version": entry["version"], "resolved": entry["resolved"],
                         "integrity": entry["integrity"], "license": entry["license"]}
        if entry["dependencies"]:
            packages[key]["dependencies"] = entry["dependencies"]
    return manifest, {"name": "consumer", "version": "0.0.0", "lockfileVersion": 3, "requires": True,
                      "packages": packages}


def npm_ci(registry: str, root: Path, lock: dict[str, Any], tag: str) -> None:
    app = root / f"app-{tag}"
    app.mkdir()
    manifest, npm_lock = package_lock(lock)
    (app / "package.json").write_text(json.dumps(manifest))
    (app / "package-lock.json").write_text(json.dumps(npm_lock))
    rc = root / f"npmrc-{tag}"
    rc.write_text(f"registry={registry}/\naudit=false\nfund=false\nupdate-notifier=false\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update({"npm_config_userconfig": str(rc), "npm_config_cache": str(root / f"cache-{tag}"),
                "NO_UPDATE_NOTIFIER": "1", "CI": "true"})
    result = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit"], cwd=app, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    for key, entry in lock["packages"].items():
        installed = json.loads((app / key / "package.json").read_text())
        assert installed["version"] == entry["version"], key


def tarball_requests(metrics: str) -> int:
    """Tarball GETs the origin answered, from its Prometheus text."""
    pattern = re.compile(r'^eghact_origin_requests_total\{([^}]*)\} (\S+)$', re.M)
    return sum(int(float(value)) for labels, value in pattern.findall(metrics)
               if 'route="tarball"' in labels and 'method="GET"' in labels)


@pytest.mark.npm
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
async def test_npm_ci_from_a_lockfile_resolved_through_an_edge_fetches_through_the_edge(
        tmp_path: Path, http: aiohttp.ClientSession, edges: list[EdgeProcess]) -> None:
    origin = make_origin(tmp_path)
    try:
        await universe(http, origin)
        edge = await EdgeProcess(origin.url, tmp_path / "edge", args=("--no-warm",)).astart()
        edges.append(edge)
        async with http.post(f"{edge.url}/-/v1/resolve", json={"dependencies": {"lv-shop": "^1"}}) as response:
            assert response.status == 200, await response.text()
            lock = await response.json()
        tarballs = {entry["resolved"] for entry in lock["packages"].values()}
        assert len(tarballs) == 5

        async def origin_tarball_requests() -> int:
            # The admin's view: with a private scope, the origin's metrics are for admins only.
            status, _, body = await get(http, f"{origin.url}/-/metrics", Authorization=f"Bearer {origin.admin}")
            assert status == 200
            return tarball_requests(body.decode())

        before = await origin_tarball_requests()
        await asyncio.to_thread(npm_ci, edge.url, tmp_path, lock, "first")
        first = await origin_tarball_requests() - before
        # each tarball reached the origin once at most: the edge's misses
        assert first <= len(tarballs)
        # a second install with an empty npm cache: every tarball from the edge, none from the origin
        await asyncio.to_thread(npm_ci, edge.url, tmp_path, lock, "second")
        assert await origin_tarball_requests() - before == first
    finally:
        origin.process.stop()
