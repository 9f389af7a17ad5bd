"""The client against a real origin and two real edges: the nearest edge first and failover when
it dies mid-install, the primary when every edge is down, a tampered tarball refused with the
project left as it was, frozen installs reproducing the plugins folder byte for byte, a second
project installed offline from the shared cache, and an unchanged project that asks no one."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from eghact_client.errors import IntegrityMismatch, LockfileOutOfDate
from eghact_client.manager import PluginManager

from ..edge.conftest import Origin, make_origin
from ..edge.support import EdgeProcess, LoopbackServer
from ..support import tree_digest
from .conftest import ROOTS, Recorder, project, publish_sync, start_edges


def installed_versions(root: Path) -> dict[str, str]:
    """Each placed package's folder -> the version its own package.json states."""
    modules = root / "eghact_modules"
    return {str(p.parent.relative_to(modules)): json.loads(p.read_text())["version"]
            for p in modules.rglob("package.json")}


def locked_versions(root: Path) -> dict[str, str]:
    lock = json.loads((root / "eghact-lock.json").read_text())
    return {key.removeprefix("node_modules/"): entry["version"] for key, entry in lock["packages"].items()}


async def test_the_nearest_edge_killed_mid_install_fails_over_to_the_other(
        origin: Origin, edges: list[EdgeProcess], tmp_path: Path) -> None:
    await start_edges(origin, tmp_path, edges)
    root = project(tmp_path / "app", origin.url)
    recorder = Recorder()
    killed: list[str] = []

    def kill_the_nearest(key: str, source: str | None) -> None:
        nearest = recorder.order[0].url
        if source == nearest and not killed:
            edge = next(e for e in edges if e.url == nearest)
            assert edge.proc is not None
            edge.proc.send_signal(signal.SIGKILL)
            edge.proc.wait(10)
            killed.append(nearest)

    recorder.on_fetched = kill_the_nearest
    # two at a time, so that most packages are still to fetch when the edge dies
    async with PluginManager(root, cache_dir=tmp_path / "cache", reporter=recorder, concurrency=2) as manager:
        result = await manager.install(all_chunks=True)
    assert [s.kind for s in recorder.order] == ["edge", "edge", "primary"]
    nearest, other = recorder.order[0].url, recorder.order[1].url
    assert killed == [nearest]
    assert result.changed and result.downloaded == len(recorder.fetched_from) == 12
    sources = set(recorder.fetched_from.values())
    assert sources == {nearest, other}, "some from the nearest before it died, the rest from the other edge"
    assert [url for url, _ in recorder.failovers] == [nearest]
    # resolved through the nearest edge, installed whole through both
    assert json.loads((root / "eghact-lock.json").read_text())["registry"] == nearest
    assert installed_versions(root) == locked_versions(root) and len(locked_versions(root)) == 12


async def test_with_both_edges_down_the_primary_serves(origin: Origin, edges: list[EdgeProcess],
                                                       tmp_path: Path) -> None:
    await start_edges(origin, tmp_path, edges)
    for edge in edges:
        await edge.astop()
    root = project(tmp_path / "app", origin.url)
    recorder = Recorder()
    async with PluginManager(root, cache_dir=tmp_path / "cache", reporter=recorder) as manager:
        result = await manager.install(all_chunks=True)
    # both still listed alive by the origin, both left out by their probes
    assert [s.kind for s in recorder.order] == ["primary"]
    assert result.downloaded == 12 and set(recorder.fetched_from.values()) == {origin.url}
    assert installed_versions(root) == locked_versions(root)


class TamperingEdge(LoopbackServer):
    """An "edge" on 127.0.0.1 that passes everything to the origin and alters every tarball."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.tampered = 0

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()
        headers = {"Accept-Encoding": "identity", **{k: v for k, v in request.headers.items()
                                                     if k.lower() in ("content-type", "accept")}}
        async with aiohttp.ClientSession() as session, session.request(
                request.method, self.upstream + request.raw_path, data=body or None, headers=headers) as answer:
            data = await answer.read()
            content_type = answer.headers.get("Content-Type", "application/octet-stream")
        if request.raw_path.endswith(".tgz") and answer.status == 200:
            self.tampered += 1
            data = data[:-1] + bytes([data[-1] ^ 1])
        return web.Response(status=answer.status, body=data, headers={"Content-Type": content_type})


async def test_a_tampered_tarball_is_refused_and_the_project_is_left_as_it_was(
        origin: Origin, tmp_path: Path) -> None:
    root = project(tmp_path / "app", origin.url, dependencies={"cl-plugin-0": "^1.0.0"}, edges=[])
    cache = tmp_path / "cache"
    async with PluginManager(root, cache_dir=cache) as manager:
        assert (await manager.install(all_chunks=True)).downloaded == 3
    fake = await TamperingEdge(origin.url).start()
    try:
        # now a new plugin, through an edge that alters tarballs (the three known ones are cached)
        (root / "eghact.json").write_text(json.dumps({
            "dependencies": {"cl-plugin-0": "^1.0.0", "cl-extra": "^1.0.0"},
            "registry": {"primary": origin.url, "edges": [fake.url]}}))
        before = tree_digest(root)
        async with PluginManager(root, cache_dir=cache) as manager:
            with pytest.raises(IntegrityMismatch) as refused:
                await manager.install(all_chunks=True)
    finally:
        await fake.stop()
    assert fake.tampered == 1
    assert refused.value.detail["package"] == "cl-extra" and fake.url in refused.value.detail["url"]
    assert tree_digest(root) == before, "plugins folder, lockfile, state and project file as they were"
    assert not list((root / ".eghact").glob("stage-*")) and not (root / ".eghact" / "journal.json").exists()
    assert "cl-extra" not in installed_versions(root)
    assert not any("cl-extra" in str(p) for p in cache.rglob("*")), "nothing tampered enters the cache"


async def test_a_frozen_install_reproduces_the_plugins_folder_byte_for_byte(origin: Origin, tmp_path: Path) -> None:
    first = project(tmp_path / "first", origin.url, edges=[])
    async with PluginManager(first, cache_dir=tmp_path / "cache-1") as manager:
        await manager.install(all_chunks=True)
    second = tmp_path / "second"
    second.mkdir()
    for name in ("eghact.json", "eghact-lock.json"):
        shutil.copy(first / name, second / name)
    async with PluginManager(second, cache_dir=tmp_path / "cache-2") as manager:
        result = await manager.install(frozen=True, all_chunks=True)
    assert result.resolution == "lockfile" and result.downloaded == 12
    assert tree_digest(second / "eghact_modules") == tree_digest(first / "eghact_modules")
    assert (second / "eghact-lock.json").read_bytes() == (first / "eghact-lock.json").read_bytes()

    # a requirement the lockfile does not answer: refused, nothing changed
    (second / "eghact.json").write_text(json.dumps({"dependencies": {**ROOTS, "cl-extra": "^1.0.0"},
                                                    "registry": {"primary": origin.url, "edges": []}}))
    before = tree_digest(second)
    async with PluginManager(second, cache_dir=tmp_path / "cache-2") as manager:
        with pytest.raises(LockfileOutOfDate) as refused:
            await manager.install(frozen=True, all_chunks=True)
    assert refused.value.detail["problems"] == ["cl-extra is required but not in the lockfile"]
    assert tree_digest(second) == before


async def test_a_second_project_installs_offline_from_the_shared_cache(tmp_path: Path,
                                                                       edges: list[EdgeProcess]) -> None:
    own = make_origin(tmp_path / "own")
    try:
        for name, version, extra in (("cl-util", "1.0.0", {}), ("cl-fmt", "1.0.0", {"dependencies": {"cl-util": "1"}}),
                                     ("cl-plugin-0", "1.0.0", {"dependencies": {"cl-fmt": "^1.0.0"}})):
            publish_sync(own, name, version, **extra)
        await start_edges(own, tmp_path, edges, count=1)
        first = project(tmp_path / "first", own.url, dependencies={"cl-plugin-0": "^1.0.0"})
        async with PluginManager(first, cache_dir=tmp_path / "cache") as manager:
            assert (await manager.install(all_chunks=True)).downloaded == 3
    finally:
        for edge in edges:
            await edge.astop()
        own.process.stop()
    second = tmp_path / "second"
    second.mkdir()
    for name in ("eghact.json", "eghact-lock.json"):
        shutil.copy(first / name, second / name)
    recorder = Recorder()
    async with PluginManager(second, cache_dir=tmp_path / "cache", reporter=recorder) as manager:
        result = await manager.install(all_chunks=True)
    assert (result.downloaded, result.cached, result.resolution) == (0, 3, "lockfile")
    assert recorder.order == [], "no source was even looked up"
    assert tree_digest(second / "eghact_modules") == tree_digest(first / "eghact_modules")


async def test_an_unchanged_project_asks_no_one_and_resolves_again_in_one_request(
        origin: Origin, tmp_path: Path) -> None:
    root = project(tmp_path / "app", origin.url, edges=[])
    async with PluginManager(root, cache_dir=tmp_path / "cache") as manager:
        assert (await manager.install(all_chunks=True)).resolution == "resolved"
    recorder = Recorder()
    async with PluginManager(root, cache_dir=tmp_path / "cache", reporter=recorder) as manager:
        again = await manager.install(all_chunks=True)
        assert (again.changed, again.resolution) == (False, "lockfile")
        assert recorder.order == [], "nothing asked of any source"
        lock = (root / "eghact-lock.json").read_bytes()
        resolution = await manager.resolve()
    assert resolution.how == "prebuilt" and resolution.lock.data == lock
