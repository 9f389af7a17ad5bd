"""An unchanged project's ``eghact install`` answers from the stamp the full check left
(``eghact_client.uptodate``): without importing the manager, asyncio or aiohttp, with the full
path's answer; and any change of its inputs takes the full path again."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from ..edge.conftest import Origin
from ..support import PYTHONPATH
from .conftest import project


def eghact(root: Path, cache: Path, *args: str, importtime: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "eghact_client.cli",
                           "--project", str(root), "--cache", str(cache), *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": PYTHONPATH})


def imported(run: subprocess.CompletedProcess[str]) -> set[str]:
    """The modules a ``-X importtime`` run imported."""
    return {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}


async def test_unchanged_reinstall_answers_without_the_manager_or_the_network(origin: Origin, tmp_path: Path) -> None:
    root = project(tmp_path / "app", origin.url, dependencies={"cl-plugin-1": "^1.0.0", "cl-plugin-2": "^1.0.0"},
                   edges=[])
    cache = tmp_path / "cache"
    first = await asyncio.to_thread(eghact, root, cache, "install")
    assert first.returncode == 0 and first.stdout.startswith("installed 4 packages"), first.stdout + first.stderr
    proven = await asyncio.to_thread(eghact, root, cache, "--json", "install")   # the full check, which stamps
    assert proven.returncode == 0, proven.stderr
    full = json.loads(proven.stdout)
    assert (root / ".eghact" / "uptodate.json").is_file()

    # no aiohttp imported (below): the answer is local, no source is asked
    again = await asyncio.to_thread(eghact, root, cache, "--json", "install", importtime=True)
    assert again.returncode == 0, again.stderr
    fast = json.loads(again.stdout)
    assert {k: v for k, v in fast.items() if k != "seconds"} == {k: v for k, v in full.items() if k != "seconds"}
    assert fast == {**fast, "changed": False, "packages": 4, "resolution": "lockfile"}
    modules = imported(again)
    assert "eghact_client.uptodate" in modules
    assert not modules & {"eghact_client.manager", "asyncio", "aiohttp", "rich", "eghact_common.semver"}
    ci = await asyncio.to_thread(eghact, root, cache, "ci", importtime=True)
    assert ci.returncode == 0 and ci.stdout.startswith("up to date: 4 packages")
    assert "eghact_client.manager" not in imported(ci)


async def test_any_change_of_the_stamped_inputs_takes_the_full_path(origin: Origin, tmp_path: Path) -> None:
    root = project(tmp_path / "app", origin.url, dependencies={"cl-plugin-3": "^1.0.0"}, edges=[])
    cache = tmp_path / "cache"
    for _ in range(2):   # install, then the full check that stamps
        assert (await asyncio.to_thread(eghact, root, cache, "install")).returncode == 0
    assert (root / ".eghact" / "uptodate.json").is_file()

    # a requirement added by hand: installed, not answered "up to date" from the old stamp
    doc = json.loads((root / "eghact.json").read_text())
    doc["dependencies"]["cl-plugin-4"] = "^1.0.0"
    (root / "eghact.json").write_text(json.dumps(doc))
    added = await asyncio.to_thread(eghact, root, cache, "--json", "install")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["changed"] is True
    assert "node_modules/cl-plugin-4" in json.loads((root / "eghact-lock.json").read_text())["packages"]

    # the plugins folder deleted: the stamp's bytes still match, the folder check does not
    assert (await asyncio.to_thread(eghact, root, cache, "install")).returncode == 0   # stamps again
    for path in sorted((root / "eghact_modules").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "eghact_modules").rmdir()
    rebuilt = await asyncio.to_thread(eghact, root, cache, "--json", "install", importtime=True)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "eghact_client.manager" in imported(rebuilt)
    assert (root / "eghact_modules").is_dir()
