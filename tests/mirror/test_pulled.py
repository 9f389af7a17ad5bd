"""Pulled packages in bundles, against a second origin of ours as the upstream (behind the
counting proxy of the uplink tests): a local plugin's closure carries its public dependencies
with only the versions the closure needs, fetched through the origin; the mirror shows only
those (tags moved onto them) and serves them with no origin; an incremental bundle after a
refresh adds the new versions the closure needs and nothing for those it does not; ``sync``
carries what the origin holds."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ..origin.uplinks.support import CountingProxy, Upstream, admin_token, put, uplinked
from ..support import OriginProcess, escaped, get, manifest, publish_body
from .helpers import get_or_none, mirror, read_members


def index_of(bundle: Path) -> dict[str, Any]:
    return dict(json.loads(dict(read_members(bundle))["index.json"]))


def carried(index: dict[str, Any]) -> dict[str, list[str] | None]:
    """Each package entry's versions (None: a local package, whole)."""
    return {entry["name"]: entry.get("versions") for entry in index["packages"]}


def tarballs(index: dict[str, Any]) -> int:
    return sum(f["path"].startswith("tarballs/") for f in index["files"])


def shown(url: str, name: str) -> dict[str, Any]:
    return dict(json.loads(get(f"{url}/{escaped(name)}")))


async def refreshed(subject: OriginProcess, proxy: CountingProxy, name: str) -> None:
    """Read ``name`` once its copy is older than the max age (1 s): the subject revalidates it."""
    before = proxy.count(f"/{name}")
    await asyncio.sleep(1.2)
    await asyncio.to_thread(get, f"{subject.url}/{escaped(name)}")
    assert proxy.count(f"/{name}") == before + 1


async def publish_universe(upstream: Upstream) -> None:
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        await upstream.publish("tiny", version)
    await upstream.publish("@pub/util", "1.0.0", dependencies={"tiny": "^1.0.0"})
    await upstream.publish("@pub/util", "3.0.0", dependencies={"unused": "*"})
    await upstream.publish("unused", "1.0.0")


@pytest.mark.slow
async def test_a_closure_carries_the_pulled_versions_it_needs_and_incrementals_add_only_those(
        tmp_path: Path) -> None:
    key, mirror_dir, synced = tmp_path / "key", tmp_path / "mirror", tmp_path / "synced"
    await asyncio.to_thread(mirror, "keygen", "-o", str(key))
    async with uplinked(tmp_path, "--uplink-max-age", "1s") as (upstream, proxy, subject):
        await publish_universe(upstream)
        token = admin_token(subject.data_dir)
        plugin = manifest("@acme/plugin", "1.0.0", dependencies={"@pub/util": "^1.0.0", "tiny": "^1.1.0"})
        assert (await put(subject.url, "@acme/plugin", publish_body(plugin), token))[0] == 201

        def export(out: str, *args: str) -> dict[str, Any]:
            mirror("export", "--origin", subject.url, "--key", str(key), "-o", str(tmp_path / out),
                   "--filter", "@acme/*", "--closure", *args)
            mirror("import", str(tmp_path / out), "--into", str(mirror_dir), "--trust", f"{key}.pub")
            return index_of(tmp_path / out)

        first = await asyncio.to_thread(export, "b1")
        # The closure's versions only: util@1.0.0 (not 3.0.0, nor 3.0.0's dependency), tiny 1.x.
        assert carried(first) == {"@acme/plugin": None, "@pub/util": ["1.0.0"], "tiny": ["1.0.0", "1.1.0"]}
        assert tarballs(first) == 4
        assert first["selection"]["pulled"] == {"@pub/util": ["1.0.0"], "tiny": ["1.0.0", "1.1.0"]}
        # The origin fetched the tarballs the export asked for, once each, and no others.
        assert proxy.count("/tiny/-/tiny-1.0.0.tgz") == proxy.count("/tiny/-/tiny-1.1.0.tgz") == 1
        assert proxy.count("util-1.0.0.tgz") == 1
        assert proxy.count("tiny-2.0.0.tgz") == proxy.count("util-3.0.0.tgz") == proxy.count("unused") == 0

        await upstream.publish("tiny", "1.2.0")  # the closure needs it (^1.0.0, ^1.1.0)
        await upstream.publish("tiny", "3.0.0")  # it does not
        await refreshed(subject, proxy, "tiny")
        second = await asyncio.to_thread(export, "b2", "--after", str(tmp_path / "b1"))
        # util's first pull (b1's closure walk made it) was in b1's range: util has not changed since.
        assert carried(second) == {"tiny": ["1.0.0", "1.1.0", "1.2.0"]}
        assert tarballs(second) == 1  # 1.2.0's; the mirror has the others
        assert second["selection"]["pulled"]["tiny"] == ["1.0.0", "1.1.0", "1.2.0"]

        await upstream.publish("tiny", "4.0.0")
        await refreshed(subject, proxy, "tiny")
        third = await asyncio.to_thread(export, "b3", "--after", str(tmp_path / "b2"))
        assert carried(third) == {"tiny": ["1.0.0", "1.1.0", "1.2.0"]}
        assert tarballs(third) == 0  # a refresh whose new version the closure does not need adds nothing
        assert proxy.count("tiny-3.0.0.tgz") == proxy.count("tiny-4.0.0.tgz") == 0

        # sync (a name predicate): what the origin holds of each pulled package.
        await asyncio.to_thread(mirror, "sync", "--origin", subject.url, "--into", str(synced), "--once")

    served = OriginProcess(mirror_dir, ("--read-only",))
    await asyncio.to_thread(served.start)
    try:
        tiny = shown(served.url, "tiny")
        assert list(tiny["versions"]) == ["1.0.0", "1.1.0", "1.2.0"]
        assert tiny["dist-tags"] == {"latest": "1.2.0"}  # moved off 4.0.0, which the mirror lacks
        assert set(tiny["time"]) == {"created", "modified", "1.0.0", "1.1.0", "1.2.0"}
        util = shown(served.url, "@pub/util")
        assert list(util["versions"]) == ["1.0.0"] and util["dist-tags"] == {"latest": "1.0.0"}
        for doc in (tiny, util):
            for version in doc["versions"].values():
                assert version["dist"]["tarball"].startswith(served.url)
                assert get(version["dist"]["tarball"])  # there, with no origin to ask
        if shutil.which("npm"):
            await asyncio.to_thread(npm_install, tmp_path, served.url, {"@acme/plugin": "1.0.0"})
            lock = json.loads((tmp_path / "app" / "package-lock.json").read_text())["packages"]
            assert {k: v["version"] for k, v in lock.items() if k} == {
                "node_modules/@acme/plugin": "1.0.0", "node_modules/@pub/util": "1.0.0",
                "node_modules/tiny": "1.2.0"}
    finally:
        assert served.stop() == 0
    served = OriginProcess(synced, ("--read-only",))
    await asyncio.to_thread(served.start)
    try:
        assert list(shown(served.url, "tiny")["versions"]) == ["1.0.0", "1.1.0", "1.2.0"]
        assert list(shown(served.url, "@pub/util")["versions"]) == ["1.0.0"]
        assert get_or_none(f"{served.url}/unused") is None
    finally:
        assert served.stop() == 0


def npm_install(root: Path, registry: str, dependencies: dict[str, str]) -> None:
    app = root / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "app", "version": "1.0.0", "dependencies": dependencies}))
    subprocess.run(["npm", "install", "--registry", registry, "--cache", str(root / "npm-cache"), "--prefer-online",
                    "--no-audit", "--no-fund", "--ignore-scripts"], cwd=app, check=True, capture_output=True,
                   timeout=180)


async def test_a_lockfile_carries_the_pulled_versions_it_pins(tmp_path: Path) -> None:
    key, mirror_dir = tmp_path / "key", tmp_path / "mirror"
    await asyncio.to_thread(mirror, "keygen", "-o", str(key))
    lockfile = tmp_path / "package-lock.json"
    lockfile.write_text(json.dumps({"packages": {"": {"name": "app"}, "node_modules/tiny": {"version": "1.1.0"},
                                                 "node_modules/@pub/util": {"version": "1.0.0"}}}))
    async with uplinked(tmp_path) as (upstream, proxy, subject):
        await publish_universe(upstream)
        await asyncio.to_thread(mirror, "export", "--origin", subject.url, "--key", str(key), "-o",
                                str(tmp_path / "b1"), "--lockfile", str(lockfile))
        index = index_of(tmp_path / "b1")
        assert carried(index) == {"@pub/util": ["1.0.0"], "tiny": ["1.1.0"]} and tarballs(index) == 2
        assert proxy.count("tiny-1.0.0.tgz") == proxy.count("tiny-2.0.0.tgz") == 0
    await asyncio.to_thread(mirror, "import", str(tmp_path / "b1"), "--into", str(mirror_dir), "--trust",
                            f"{key}.pub")
    served = OriginProcess(mirror_dir, ("--read-only",))
    await asyncio.to_thread(served.start)
    try:
        tiny = shown(served.url, "tiny")
        assert list(tiny["versions"]) == ["1.1.0"] and tiny["dist-tags"] == {"latest": "1.1.0"}
    finally:
        assert served.stop() == 0
