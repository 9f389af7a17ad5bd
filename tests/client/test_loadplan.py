"""The load plan executed against a real origin and edges: an install places the eager chunk and
makes it active while lazy plugins are recorded but not placed; ``activate`` fetches, verifies
and merges a lazy plugin's chunks atomically (a tampered tarball leaves the folder as it was and
the plugin ``failed``); ``deactivate`` suspends what only that plugin needs; transitions that
make no sense are refused; and prefetch hints make the first ``activate`` an edge hit, where
without them it is a miss."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest

from eghact_client.errors import IntegrityMismatch, InvalidTransition
from eghact_client.manager import PluginManager

from ..edge.conftest import Origin
from ..edge.support import EdgeProcess
from ..support import tree_digest
from .conftest import project, start_edges
from .test_install import TamperingEdge


def placed(root: Path) -> set[str]:
    return {p.parent.name for p in (root / "eghact_modules").rglob("package.json")}


def states(root: Path) -> dict[str, str]:
    doc = json.loads((root / ".eghact" / "state.json").read_text())
    return {key.removeprefix("node_modules/"): entry["state"] for key, entry in doc["plugins"].items()}


def with_eager(root: Path, primary: str, dependencies: dict[str, str], eager: list[str], **registry: object) -> Path:
    project(root, primary, dependencies=dependencies, **registry)
    doc = json.loads((root / "eghact.json").read_text())
    (root / "eghact.json").write_text(json.dumps({**doc, "eager": eager}))
    return root


async def test_install_places_the_eager_chunk_and_activate_places_a_lazy_plugin(origin: Origin,
                                                                               tmp_path: Path) -> None:
    root = with_eager(tmp_path / "app", origin.url, {"cl-plugin-0": "^1.0.0", "cl-plugin-1": "^1.0.0",
                                                     "cl-extra": "^1.0.0"}, ["cl-plugin-0"], edges=[])
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as manager:
        result = await manager.install()
        assert (result.packages, result.downloaded) == (5, 3)
        assert placed(root) == {"cl-plugin-0", "cl-fmt", "cl-util"}
        assert states(root) == {"cl-plugin-0": "active", "cl-fmt": "active", "cl-util": "active",
                                "cl-plugin-1": "installed", "cl-extra": "installed"}

        activated = await manager.activate("cl-plugin-1")
        assert (activated.state, activated.downloaded, activated.changed) == ("active", 1, ["node_modules/cl-plugin-1"])
        assert placed(root) == {"cl-plugin-0", "cl-fmt", "cl-util", "cl-plugin-1"}
        assert states(root)["cl-plugin-1"] == "active" and states(root)["cl-extra"] == "installed"

        # an unchanged project: nothing to do, and the activation is kept
        again = await manager.install()
        assert not again.changed and states(root)["cl-plugin-1"] == "active"

        with pytest.raises(InvalidTransition) as twice:
            await manager.activate("cl-plugin-1")
        assert twice.value.detail == {"name": "cl-plugin-1", "state": "active", "operation": "activate",
                                      "allowed_from": ["installed", "suspended", "failed"]}
        with pytest.raises(InvalidTransition) as never_active:
            await manager.deactivate("cl-extra")
        assert never_active.value.code == "invalid_transition" and never_active.value.status == 409

        suspended = await manager.deactivate("cl-plugin-1", reason="too slow")
        assert suspended.changed == ["node_modules/cl-plugin-1"], "the eager chunk it needs stays active"
        listed = {e["name"]: e for e in await manager.list()}
        assert listed["cl-plugin-1"]["state"] == "suspended" and listed["cl-plugin-1"]["reason"] == "too slow"
        assert listed["cl-extra"]["placed"] is False and listed["cl-fmt"]["state"] == "active"
        back = await manager.activate("cl-plugin-1")
        assert back.downloaded == back.cached == 0, "still placed: nothing to fetch"

        # --all places every lazy chunk, leaving it installed until activated
        everything = await manager.install(all_chunks=True)
        assert everything.changed and "cl-extra" in placed(root) and states(root)["cl-extra"] == "installed"
        assert states(root)["cl-plugin-1"] == "active"


async def test_deactivate_suspends_only_what_no_other_active_plugin_needs(origin: Origin, tmp_path: Path) -> None:
    root = project(tmp_path / "app", origin.url, dependencies={"cl-plugin-1": "^1.0.0", "cl-plugin-2": "^1.0.0"},
                   edges=[])
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as manager:
        assert (await manager.install()).downloaded == 0 and placed(root) == set()
        first = await manager.activate("cl-plugin-1")
        assert first.changed == ["node_modules/cl-util", "node_modules/cl-fmt", "node_modules/cl-plugin-1"], \
            "the shared chunk first, then its own"
        assert (await manager.activate("cl-plugin-2")).downloaded == 1
        assert (await manager.deactivate("cl-plugin-1")).changed == ["node_modules/cl-plugin-1"]
        last = await manager.deactivate("cl-plugin-2")
        assert sorted(last.changed) == ["node_modules/cl-fmt", "node_modules/cl-plugin-2", "node_modules/cl-util"]
    assert set(states(root).values()) == {"suspended"}
    assert placed(root) == {"cl-plugin-1", "cl-plugin-2", "cl-fmt", "cl-util"}, "suspending removes nothing"


async def test_a_tampered_tarball_at_activate_leaves_the_folder_and_records_the_failure(
        origin: Origin, tmp_path: Path) -> None:
    root = with_eager(tmp_path / "app", origin.url, {"cl-plugin-0": "^1.0.0", "cl-extra": "^1.0.0"},
                      ["cl-plugin-0"], edges=[])
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as manager:
        await manager.install()
    folder = tree_digest(root / "eghact_modules")
    lock = (root / "eghact-lock.json").read_bytes()
    fake = await TamperingEdge(origin.url).start()
    try:
        doc = json.loads((root / "eghact.json").read_text())
        (root / "eghact.json").write_text(json.dumps({**doc, "registry": {"primary": origin.url,
                                                                          "edges": [fake.url]}}))
        async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as manager:
            with pytest.raises(IntegrityMismatch):
                await manager.activate("cl-extra")
            failed = {e["name"]: e for e in await manager.list()}["cl-extra"]
    finally:
        await fake.stop()
    assert fake.tampered == 1
    assert tree_digest(root / "eghact_modules") == folder and (root / "eghact-lock.json").read_bytes() == lock
    assert (failed["state"], failed["placed"], failed["error"]["error"]) == ("failed", False, "integrity_mismatch")
    assert not list((root / ".eghact").glob("stage-*")) and not (root / ".eghact" / "journal.json").exists()
    # failed is not final: through the origin itself, the activation goes through
    (root / "eghact.json").write_text(json.dumps({**doc, "registry": {"primary": origin.url, "edges": []}}))
    async with PluginManager(root, cache_dir=tmp_path / "cache", hints=False) as manager:
        assert (await manager.activate("cl-extra")).downloaded == 1
    assert states(root)["cl-extra"] == "active" and "cl-extra" in placed(root)


def warmed_by_hints(edge: EdgeProcess) -> float:
    with urllib.request.urlopen(f"{edge.url}/-/metrics", timeout=5) as response:
        text = response.read().decode()
    found = re.search(r'^eghact_edge_warmed_total\{source="hint"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_after_the_hints_a_lazy_activate_is_an_edge_hit_and_without_them_a_miss(
        origin: Origin, edges: list[EdgeProcess], tmp_path: Path) -> None:
    hinted_edge, plain_edge = await start_edges(origin, tmp_path, edges)
    dependencies = {"cl-plugin-5": "^1.0.0", "cl-plugin-6": "^1.0.0", "cl-extra": "^1.0.0"}
    outcomes = {}
    for name, edge, hints in (("hinted", hinted_edge, True), ("plain", plain_edge, False)):
        root = with_eager(tmp_path / name, origin.url, dependencies, ["cl-plugin-5"], edges=[edge.url])
        async with PluginManager(root, cache_dir=tmp_path / f"cache-{name}", hints=hints) as manager:
            result = await manager.install()
            assert result.downloaded == 3 and placed(root) == {"cl-plugin-5", "cl-fmt", "cl-util"}
        if hints:
            assert manager.hinter is not None and manager.hinter.sent == [(edge.url, 2)], "cl-plugin-6, cl-extra"
            deadline = time.monotonic() + 20
            while warmed_by_hints(edge) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        async with PluginManager(root, cache_dir=tmp_path / f"cache-{name}", hints=hints) as manager:
            outcomes[name] = (await manager.activate("cl-extra")).x_cache
    assert warmed_by_hints(plain_edge) == 0
    assert outcomes["hinted"]["node_modules/cl-extra"].startswith("HIT"), outcomes
    assert outcomes["plain"] == {"node_modules/cl-extra": "MISS"}, outcomes
