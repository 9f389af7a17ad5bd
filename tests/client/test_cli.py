"""``eghact`` as a user runs it (a child process, not a terminal): plain lines or ``--json``,
``--verbose`` decisions on stderr, and the documented exit codes."""

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


def eghact(root: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eghact_client.cli", "--project", str(root), "--cache", str(cache),
                           *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": PYTHONPATH})


async def test_install_ls_ci_remove_and_their_exit_codes(origin: Origin, tmp_path: Path) -> None:
    root = project(tmp_path / "app", origin.url, dependencies={}, edges=[])
    cache = tmp_path / "cache"
    run = await asyncio.to_thread(eghact, root, cache, "--json", "-v", "install", "cl-plugin-0", "--all")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["packages"] == 3
    assert "sources in order: primary" in run.stderr and "resolved 3 packages" in run.stderr
    assert json.loads((root / "eghact.json").read_text())["dependencies"] == {"cl-plugin-0": "^1.0.0"}

    listed = await asyncio.to_thread(eghact, root, cache, "--json", "ls")
    assert {(e["name"], e["direct"]) for e in json.loads(listed.stdout)} == {
        ("cl-plugin-0", True), ("cl-fmt", False), ("cl-util", False)}
    plain = await asyncio.to_thread(eghact, root, cache, "install")
    assert plain.returncode == 0 and plain.stdout.startswith("up to date: 3 packages")

    # the project asks for more than the lockfile holds: ci refuses (5), naming the reason
    (root / "eghact.json").write_text(json.dumps({"dependencies": {"cl-plugin-0": "^1.0.0", "cl-extra": "1"},
                                                  "registry": {"primary": origin.url, "edges": []}}))
    stale = await asyncio.to_thread(eghact, root, cache, "--json", "ci")
    assert stale.returncode == 5
    assert json.loads(stale.stdout)["error"] == "lockfile_out_of_date"

    missing = await asyncio.to_thread(eghact, root, cache, "remove", "cl-nothing")
    assert missing.returncode == 7 and "not one of the project's dependencies" in missing.stderr
    unknown = await asyncio.to_thread(eghact, root, cache, "--json", "install", "cl-no-such-package")
    assert unknown.returncode == 3, unknown.stdout + unknown.stderr
    removed = await asyncio.to_thread(eghact, root, cache, "remove", "cl-extra")
    assert removed.returncode == 0, removed.stderr
    assert not (root / "eghact_modules" / "cl-extra").exists()
    assert (root / "eghact_modules" / "cl-plugin-0" / "package.json").exists()


async def test_bad_project_and_unreachable_registry_exit_codes(tmp_path: Path) -> None:
    root = tmp_path / "app"
    root.mkdir()
    (root / "eghact.json").write_text('{"dependencies": {"../evil": "^1"}}')
    bad = await asyncio.to_thread(eghact, root, tmp_path / "cache", "--json", "install")
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"] == "invalid_project"
    # a port nothing listens on (this test's own, closed): every source fails
    (root / "eghact.json").write_text(json.dumps({"dependencies": {"a": "^1"},
                                                  "registry": {"primary": "http://127.0.0.1:9", "edges": []}}))
    down = await asyncio.to_thread(eghact, root, tmp_path / "cache", "--json", "install")
    assert down.returncode == 4 and json.loads(down.stdout)["error"] == "no_source_reachable"


async def test_activate_deactivate_ls_and_the_refused_transition_exit_code(origin: Origin, tmp_path: Path) -> None:
    root = project(tmp_path / "app", origin.url, dependencies={"cl-plugin-7": "^1.0.0"}, edges=[])
    cache = tmp_path / "cache"
    installed = await asyncio.to_thread(eghact, root, cache, "install")
    assert installed.returncode == 0, installed.stderr
    listed = await asyncio.to_thread(eghact, root, cache, "ls")
    assert "cl-plugin-7@1.0.0  installed  (not placed: lazy)" in listed.stdout.splitlines()
    activated = await asyncio.to_thread(eghact, root, cache, "--json", "activate", "cl-plugin-7")
    assert activated.returncode == 0, activated.stderr
    assert json.loads(activated.stdout)["downloaded"] == 3
    again = await asyncio.to_thread(eghact, root, cache, "--json", "activate", "cl-plugin-7")
    assert again.returncode == 9 and json.loads(again.stdout)["error"] == "invalid_transition"
    off = await asyncio.to_thread(eghact, root, cache, "deactivate", "cl-plugin-7", "--reason", "maintenance")
    assert off.returncode == 0 and off.stdout.startswith("cl-plugin-7 suspended (3 packages changed state")
    states = {e["name"]: (e["state"], e.get("reason")) for e in
              json.loads((await asyncio.to_thread(eghact, root, cache, "--json", "ls")).stdout)}
    assert states == {"cl-plugin-7": ("suspended", "maintenance"), "cl-fmt": ("suspended", "maintenance"),
                      "cl-util": ("suspended", "maintenance")}
    missing = await asyncio.to_thread(eghact, root, cache, "activate", "cl-nothing")
    assert missing.returncode == 7 and "not installed" in missing.stderr
