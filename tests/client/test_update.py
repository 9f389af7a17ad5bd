"""``update`` and ``audit`` against a real origin (and an edge): a plain update moves to the newest
versions, one root's update moves only it; a security update moves only what an advisory
affects, to the lowest fixing version; no fix within the requirements is refused with the
project unchanged; audit lists each advisory with its fix, and its exit code follows ``--level``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from eghact_client.hooks import HookEvent
from eghact_client.manager import PluginManager
from eghact_client.update import NoFixAvailable

from ..edge.conftest import Origin
from ..edge.support import EdgeProcess
from ..support import cli, tree_digest
from .conftest import PLUGIN, project, publish_sync, start_edges
from .test_cli import eghact
from .test_install import locked_versions


def publish_all(origin: Origin, packages: list[tuple[str, str, dict[str, Any]]]) -> None:
    for name, version, extra in packages:
        publish_sync(origin, name, version, **extra)


def advise(origin: Origin, name: str, vulnerable: str, severity: str = "high") -> str:
    added = cli("advisory", "add", "--data", str(origin.process.data_dir), "--name", name, "--range", vulnerable,
                "--severity", severity, "--title", f"Prototype pollution in {name}")
    return str(json.loads(added.stdout.splitlines()[-1])["id"])


def first_install(origin: Origin, prefix: str, root: Path) -> None:
    """An app of two plugins, each with a library, locked at the 1.0/1.1 versions; then newer
    versions of everything are published."""
    publish_all(origin, [
        (f"{prefix}-lib", "1.0.0", {}), (f"{prefix}-lib", "1.1.0", {}),
        (f"{prefix}-dep", "1.0.0", {}),
        (f"{prefix}-app", "1.0.0", {**PLUGIN, "dependencies": {f"{prefix}-lib": "^1.0.0"}}),
        (f"{prefix}-other", "1.0.0", {**PLUGIN, "dependencies": {f"{prefix}-dep": "^1.0.0"}}),
    ])
    project(root, origin.url, dependencies={f"{prefix}-app": "^1.0.0", f"{prefix}-other": "^1.0.0"}, edges=[])


def publish_newer(origin: Origin, prefix: str) -> None:
    publish_all(origin, [
        (f"{prefix}-lib", "1.1.1", {}), (f"{prefix}-lib", "1.2.0", {}), (f"{prefix}-lib", "2.0.0", {}),
        (f"{prefix}-dep", "1.1.0", {}),
        (f"{prefix}-other", "1.1.0", {**PLUGIN, "dependencies": {f"{prefix}-dep": "^1.0.0"}}),
    ])


async def test_update_moves_to_the_newest_versions_and_one_root_moves_alone(origin: Origin, tmp_path: Path) -> None:
    root = tmp_path / "app"
    first_install(origin, "upa", root)
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as pm:
        await pm.install()
        assert locked_versions(root) == {"upa-app": "1.0.0", "upa-lib": "1.1.0", "upa-other": "1.0.0",
                                         "upa-dep": "1.0.0"}
        publish_newer(origin, "upa")
        # a plain install keeps the lockfile: it still answers the requirements
        assert not (await pm.install()).changed

        # one root: it and what only it pulls in move; upa-lib (upa-app's) stays as locked
        named = await pm.update("upa-other")
        assert locked_versions(root) == {"upa-app": "1.0.0", "upa-lib": "1.1.0", "upa-other": "1.1.0",
                                         "upa-dep": "1.1.0"}
        assert {(c["name"], c["from"], c["to"]) for c in named.changes} == {
            ("upa-other", "1.0.0", "1.1.0"), ("upa-dep", "1.0.0", "1.1.0")}
        # the state follows (a plugin of a lazy chunk is recorded, placed on activate)
        assert {e["name"]: e["version"] for e in await pm.list()}["upa-other"] == "1.1.0"
        # that lockfile still answers the requirements: an install leaves it
        assert not (await pm.install()).changed

        everything = await pm.update()
        assert locked_versions(root) == {"upa-app": "1.0.0", "upa-lib": "1.2.0", "upa-other": "1.1.0",
                                         "upa-dep": "1.1.0"}
        assert [(c["name"], c["to"]) for c in everything.changes] == [("upa-lib", "1.2.0")]
        assert (await pm.update()).changes == []
        with pytest.raises(Exception) as raised:
            await pm.update("not-a-root")
        assert getattr(raised.value, "code", None) == "not_a_dependency"


async def test_security_update_moves_only_the_vulnerable_package_to_its_lowest_fix(
        origin: Origin, edges: list[EdgeProcess], tmp_path: Path) -> None:
    (edge,) = await start_edges(origin, tmp_path, edges, count=1)
    root = tmp_path / "app"
    first_install(origin, "ups", root)
    project(root, origin.url, dependencies={"ups-app": "^1.0.0", "ups-other": "^1.0.0"}, edges=[edge.url])
    document = json.loads((root / "eghact.json").read_text())
    (root / "eghact.json").write_text(json.dumps({**document, "eager": ["ups-app"]}))   # ups-lib is placed
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as pm:
        events: list[tuple[str, str, list[tuple[str, str, str | None]]]] = []

        async def record(event: HookEvent) -> None:
            events.append((event.hook, event.operation, [(p["name"], p["version"], p.get("previous"))
                                                         for p in event.plugins]))

        for hook in ("preUpdate", "postUpdate"):
            pm.on(hook, record)
        await pm.install()
        assert (await pm.update(security=True)).changes == []   # nothing is known against it yet
        before = json.loads((root / "eghact-lock.json").read_text())
        advisory = advise(origin, "ups-lib", ">=1.1.0 <1.1.1")
        publish_newer(origin, "ups")   # newer versions of everything: a plain update would take them

        found = await pm.audit()
        assert [(f.name, f.version, f.id, f.severity, f.vulnerable_versions, f.fixed_in) for f in found] == [
            ("ups-lib", "1.1.0", advisory, "high", ">=1.1.0 <1.1.1", "1.1.1")]

        updated = await pm.update(security=True)
        assert [(c["name"], c["from"], c["to"]) for c in updated.changes] == [("ups-lib", "1.1.0", "1.1.1")]
        assert [a["id"] for a in updated.advisories] == [advisory]
        after = json.loads((root / "eghact-lock.json").read_text())
        # the lockfile diff: only ups-lib's entry changed; every other package is as locked
        differ = {key for key in before["packages"].keys() | after["packages"].keys()
                  if before["packages"].get(key) != after["packages"].get(key)}
        assert differ == {"node_modules/ups-lib"}
        lib = json.loads((root / "eghact_modules" / "ups-lib" / "package.json").read_text())
        assert lib["version"] == "1.1.1"
        assert events == [(hook, "update", [("ups-lib", "1.1.1", "1.1.0")]) for hook in ("preUpdate", "postUpdate")]
        assert await pm.audit() == []
        # the strict lockfile still answers the project: a plain install keeps it
        assert not (await pm.install()).changed


async def test_security_update_without_a_fix_in_range_is_refused_and_changes_nothing(
        origin: Origin, tmp_path: Path) -> None:
    publish_all(origin, [("upn-lib", "1.0.0", {}),
                         ("upn-app", "1.0.0", {**PLUGIN, "dependencies": {"upn-lib": "~1.0.0"}})])
    root = project(tmp_path / "app", origin.url, dependencies={"upn-app": "^1.0.0"}, edges=[])
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as pm:
        await pm.install()
        advisory = advise(origin, "upn-lib", "<1.1.0", severity="critical")
        publish_all(origin, [("upn-lib", "1.1.0", {})])   # the fix, outside upn-app's ~1.0.0
        digest = tree_digest(root)
        with pytest.raises(NoFixAvailable) as raised:
            await pm.update(security=True)
        error = raised.value
        assert error.code == "no_fix_available" and error.status == 422
        assert "upn-lib" in error.message and advisory in error.message and "'~1.0.0'" in error.message
        assert error.detail["required"] == [{"by": "upn-app@1.0.0", "range": "~1.0.0"}]
        assert error.detail["fixed_in"] == "1.1.0"
        assert tree_digest(root) == digest


async def test_audit_and_update_on_the_command_line(origin: Origin, tmp_path: Path) -> None:
    publish_all(origin, [("upc-lib", "1.0.0", {}),
                         ("upc-app", "1.0.0", {**PLUGIN, "dependencies": {"upc-lib": "^1.0.0"}})])
    root = project(tmp_path / "app", origin.url, dependencies={"upc-app": "^1.0.0"}, edges=[])
    cache = tmp_path / "cache"
    assert (await asyncio.to_thread(eghact, root, cache, "install")).returncode == 0
    clean = await asyncio.to_thread(eghact, root, cache, "audit")
    assert clean.returncode == 0 and "no known advisories" in clean.stdout
    advisory = advise(origin, "upc-lib", "<1.0.1", severity="moderate")
    publish_all(origin, [("upc-lib", "1.0.1", {}), ("upc-lib", "1.0.2", {})])

    found = await asyncio.to_thread(eghact, root, cache, "--json", "audit")
    assert found.returncode == 12, found.stderr
    (finding,) = json.loads(found.stdout)
    assert (finding["name"], finding["id"], finding["severity"], finding["fixed_in"]) == (
        "upc-lib", advisory, "moderate", "1.0.1")
    # below the threshold: reported, exit 0
    high = await asyncio.to_thread(eghact, root, cache, "audit", "--level", "high")
    assert high.returncode == 0 and f"upc-lib@1.0.0  {advisory}" in high.stdout

    fixed = await asyncio.to_thread(eghact, root, cache, "update", "--security")
    assert fixed.returncode == 0, fixed.stderr
    assert "upc-lib: 1.0.0 -> 1.0.1" in fixed.stdout
    assert (await asyncio.to_thread(eghact, root, cache, "audit")).returncode == 0
    named = await asyncio.to_thread(eghact, root, cache, "update", "upc-app", "--security")
    assert named.returncode == 2 and "takes no name" in named.stderr
