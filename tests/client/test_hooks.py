"""Lifecycle hooks and capabilities against a real origin: registered callables and the plugins'
``eghactHooks`` modules (run by node in a child process) in the documented order, for installs,
updates and removals; a failing hook rolls the install back byte for byte; a hook that hangs is
killed at its timeout and one that eats memory is stopped; a denied required capability is
refused with the chain that pulled the plugin in, a denied optional one is recorded disabled,
and ``why`` shows the chains and the grants."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eghact_client import PluginManager, SyncPluginManager
from eghact_client.cli import main
from eghact_client.errors import CapabilityDenied, HookFailed
from eghact_client.hooks import HookEvent, HookLimits

from ..edge.conftest import Origin, make_origin
from ..support import escaped, manifest, publish_body, tarball_for, tree_digest
from .conftest import project

PLUGIN = {"eghact": {"version": "^2.0.0", "type": "component"}}
# a hook module that appends "HOOK:NAME" to the project's hooks.log
LOGGING = b"""const fs = require('fs');
module.exports = async (event) => {
  for (const p of event.plugins) if (p.name === require('../package.json').name)
    fs.appendFileSync(event.project + '/hooks.log', event.hook + ':' + p.name + '\\n');
};
"""
HANG = b"module.exports = () => new Promise(() => setInterval(() => {}, 1000));\n"
HUNGRY = b"module.exports = () => { const a = []; for (;;) a.push(new Array(1e5).fill(Math.random())); };\n"
FAIL = b"module.exports = async () => { throw new Error('the licence server said no'); };\n"
ALL = ("preInstall", "postInstall", "preUpdate", "postUpdate", "preRemove", "postRemove")


def _hooks(module: str, hooks: tuple[str, ...] = ALL) -> dict[str, Any]:
    return {"eghactHooks": {hook: module for hook in hooks}}


def _caps(required: list[str], optional: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {"eghact": {**PLUGIN["eghact"], "capabilities": {"required": required, "optional": list(optional)}}}


UNIVERSE: list[tuple[str, str, dict[str, Any], dict[str, bytes]]] = [
    ("hk-lib", "1.0.0", _hooks("hooks/log.js"), {"hooks/log.js": LOGGING}),
    ("hk-a", "1.0.0", {**PLUGIN, **_hooks("hooks/log.js"), "dependencies": {"hk-lib": "^1.0.0"}},
     {"hooks/log.js": LOGGING}),
    ("hk-a", "1.1.0", {**PLUGIN, **_hooks("hooks/log.js"), "dependencies": {"hk-lib": "^1.0.0"}},
     {"hooks/log.js": LOGGING}),
    ("hk-fail", "1.0.0", {**PLUGIN, **_hooks("hooks/fail.js", ("postInstall",))}, {"hooks/fail.js": FAIL}),
    ("hk-hang", "1.0.0", {**PLUGIN, **_hooks("hooks/hang.js", ("preInstall",))}, {"hooks/hang.js": HANG}),
    ("hk-hungry", "1.0.0", {**PLUGIN, **_hooks("hooks/eat.js", ("postInstall",))}, {"hooks/eat.js": HUNGRY}),
    ("cap-net", "1.0.0", _caps(["network:fetch"]), {}),
    ("cap-mid", "1.0.0", {**_caps(["dom:read"]), "dependencies": {"cap-net": "^1.0.0"}}, {}),
    ("cap-opt", "1.0.0", _caps(["dom:read"], ["network:fetch:*.api.example.com"]), {}),
]


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origin]:
    made = make_origin(tmp_path_factory.mktemp("hooks-origin"))
    try:
        for name, version, extra, files in UNIVERSE:
            doc = manifest(name, version, **extra)
            body = publish_body(doc, tarball_for(doc, files))
            request = urllib.request.Request(f"{made.url}/{escaped(name)}", data=json.dumps(body).encode(),
                                             method="PUT", headers={"Content-Type": "application/json",
                                                                    "Authorization": f"Bearer {made.admin}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 201
        yield made
    finally:
        if made.process.proc and made.process.proc.poll() is None:
            made.process.stop()


def app(root: Path, primary: str, dependencies: dict[str, str]) -> Path:
    """A project whose roots are all eager: an install places them (and runs their hooks)."""
    project(root, primary, dependencies=dependencies, edges=[])
    doc = json.loads((root / "eghact.json").read_text())
    (root / "eghact.json").write_text(json.dumps({**doc, "eager": sorted(dependencies)}))
    return root


def snapshot(root: Path) -> dict[str, str | None]:
    """Every byte the project is: the plugins folder, lockfile, state and project file."""
    files = {name: (root / name).read_text() if (root / name).exists() else None
             for name in ("eghact-lock.json", ".eghact/state.json", "eghact.json")}
    return {**files, "plugins": tree_digest(root / "eghact_modules") if (root / "eghact_modules").exists() else None}


def log_of(root: Path) -> list[str]:
    path = root / "hooks.log"
    return path.read_text().splitlines() if path.exists() else []


async def test_hooks_run_in_the_documented_order_for_install_update_and_remove(origin: Origin,
                                                                              tmp_path: Path) -> None:
    root = app(tmp_path / "app", origin.url, {})
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as manager:
        for hook in ALL:
            async def record(event: HookEvent, hook: str = hook) -> None:
                assert event.hook == hook
                with (root / "hooks.log").open("a") as log:
                    log.write(f"{hook}:manager:{','.join(p['name'] for p in event.plugins)}\n")
            manager.on(hook, record)

        await manager.install("hk-a", version="1.0.0", all_chunks=True)
        # pre: the manager's callables, then the plugins in load order (hk-lib before hk-a); post: reversed roles
        assert log_of(root) == ["preInstall:manager:hk-lib,hk-a", "preInstall:hk-lib", "preInstall:hk-a",
                                "postInstall:hk-lib", "postInstall:hk-a", "postInstall:manager:hk-lib,hk-a"]
        (root / "hooks.log").unlink()

        await manager.install("hk-a", version="1.1.0", all_chunks=True)
        assert log_of(root) == ["preUpdate:manager:hk-a", "preUpdate:hk-a", "postUpdate:hk-a",
                                "postUpdate:manager:hk-a"], "hk-lib did not change: no hook of its runs"
        (root / "hooks.log").unlink()

        await manager.remove("hk-a")
        # postRemove runs from the removed folder, which is kept until the hooks pass
        assert log_of(root) == ["preRemove:manager:hk-a,hk-lib", "preRemove:hk-a", "preRemove:hk-lib",
                                "postRemove:hk-a", "postRemove:hk-lib", "postRemove:manager:hk-a,hk-lib"]
        assert not (root / "eghact_modules" / "hk-a").exists()


async def test_a_failing_plugin_hook_rolls_the_install_back_byte_for_byte(origin: Origin, tmp_path: Path) -> None:
    root = app(tmp_path / "app", origin.url, {"hk-a": "^1.0.0"})
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as manager:
        await manager.install()
        before = snapshot(root)
        with pytest.raises(HookFailed) as failed:
            await manager.install("hk-fail", all_chunks=True)
        assert failed.value.detail["hook"] == "postInstall" and failed.value.detail["plugin"] == "hk-fail"
        assert "the licence server said no" in failed.value.message
        assert snapshot(root) == before, "the folder, lockfile, state and project file are as they were"
        assert not list((root / ".eghact").glob("stage-*")) and not (root / ".eghact" / "journal.json").exists()
        recorded = json.loads((root / ".eghact" / "last-failure.json").read_text())
        assert (recorded["operation"], recorded["error"]) == ("install", "hook_failed")

        # a registered callable that fails before anything is committed changes nothing either
        async def veto(event: HookEvent) -> None:
            raise RuntimeError("not today")
        manager.on("preInstall", veto)
        with pytest.raises(HookFailed) as vetoed:
            await manager.install("cap-opt", all_chunks=True)
        assert vetoed.value.detail["plugin"] == "manager"
        assert snapshot(root) == before


async def test_a_hanging_hook_is_killed_at_its_timeout(origin: Origin, tmp_path: Path) -> None:
    root = project(tmp_path / "app", origin.url, dependencies={}, edges=[])
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False,
                             hook_limits=HookLimits(timeout=1.5)) as manager:
        before = snapshot(root)
        started = time.monotonic()
        with pytest.raises(HookFailed) as hung:
            await manager.install("hk-hang", all_chunks=True)
        elapsed = time.monotonic() - started
        assert "killed" in hung.value.detail["reason"] and hung.value.detail["hook"] == "preInstall"
        assert 1.5 <= elapsed < 10, elapsed
        assert snapshot(root) == before


async def test_a_hook_that_eats_memory_is_stopped(origin: Origin, tmp_path: Path) -> None:
    root = project(tmp_path / "app", origin.url, dependencies={}, edges=[])
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False,
                             hook_limits=HookLimits(timeout=30, memory_mb=64)) as manager:
        before = snapshot(root)
        started = time.monotonic()
        with pytest.raises(HookFailed) as hungry:
            await manager.install("hk-hungry", all_chunks=True)
        assert "memory" in hungry.value.detail["reason"], hungry.value.detail
        assert time.monotonic() - started < 25, "stopped by its memory limit, not its timeout"
        assert snapshot(root) == before


async def test_a_denied_required_capability_is_refused_with_the_chain(origin: Origin, tmp_path: Path) -> None:
    root = project(tmp_path / "app", origin.url, dependencies={}, edges=[])
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as manager:
        before = snapshot(root)
        with pytest.raises(CapabilityDenied) as denied:
            await manager.install("cap-mid", capabilities={"network": False})
        assert denied.value.status == 403 and denied.value.code == "capability_denied"
        assert denied.value.detail == {"plugin": "cap-net", "version": "1.0.0", "capability": "network:fetch",
                                       "denied_by": "the grants of cap-mid", "chain": ["cap-mid@1.0.0",
                                                                                       "cap-net@1.0.0"]}
        assert "cap-mid@1.0.0 -> cap-net@1.0.0" in denied.value.message
        assert snapshot(root) == before, "refused before anything is written"
        # this run only (no name): the same denial over what the project already requires
        await manager.install("cap-mid")
        with pytest.raises(CapabilityDenied):
            await manager.install(capabilities={"network:fetch": False})


def test_a_denied_optional_capability_is_recorded_disabled_and_why_shows_it(origin: Origin, tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = project(tmp_path / "app", origin.url, dependencies={"cap-mid": "^1.0.0"}, edges=[])
    manager = SyncPluginManager(root, cache_dir=tmp_path / "cache", hints=False)
    manager.install()
    manager.install("cap-opt", capabilities={"network": False})
    state = json.loads((root / ".eghact" / "state.json").read_text())["plugins"]
    assert state["node_modules/cap-opt"]["disabledCapabilities"] == ["network:fetch:*.api.example.com"]
    assert "disabledCapabilities" not in state["node_modules/cap-mid"]
    assert json.loads((root / "eghact.json").read_text())["grants"] == {"cap-opt": {"network": False}}

    assert main(["--project", str(root), "--cache", str(tmp_path / "cache"), "--json", "why", "cap-opt"]) == 0
    (copy,) = json.loads(capsys.readouterr().out)
    assert copy["chains"] == [["cap-opt@1.0.0"]] and copy["state"] == "installed"
    assert copy["capabilities"] == {"dom:read": {"grant": "granted"},
                                    "network:fetch:*.api.example.com": {"grant": "disabled"}}
    assert main(["--project", str(root), "--cache", str(tmp_path / "cache"), "--json", "why", "cap-net"]) == 0
    (net,) = json.loads(capsys.readouterr().out)
    assert net["chains"] == [["cap-mid@1.0.0", "cap-net@1.0.0"]]
    assert net["capabilities"] == {"network:fetch": {"grant": "granted"}}
    # a denial recorded since the install: why says who denies it; the CLI's exit code says refused
    doc = json.loads((root / "eghact.json").read_text())
    (root / "eghact.json").write_text(json.dumps({**doc, "grants": {**doc["grants"], "cap-mid": {"network": False}}}))
    assert main(["--project", str(root), "--cache", str(tmp_path / "cache"), "--json", "why", "cap-net"]) == 0
    (net,) = json.loads(capsys.readouterr().out)
    assert net["capabilities"] == {"network:fetch": {"grant": "denied", "by": "the grants of cap-mid"}}
    assert main(["--project", str(root), "--cache", str(tmp_path / "cache"), "--json", "install", "--frozen"]) == 10
    assert json.loads(capsys.readouterr().out)["error"] == "capability_denied"
