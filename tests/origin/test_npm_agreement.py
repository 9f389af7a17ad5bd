"""The resolver's ``duplicate=isolate`` + ``version=highest`` against the real npm client.

On a seeded universe served by a real origin, for many root sets, ``npm install
--package-lock-only`` and ``POST /-/v1/resolve`` must pick the same set of
(name, version). Root sets npm itself refuses (ERESOLVE on peer conflicts) are counted
and skipped, and so are sets npm never finishes (it can loop on peer-heavy trees); at least
20 must be compared.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

import pytest

from ..support import OriginProcess, cli

pytestmark = [pytest.mark.npm, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")]

ROOT_SETS = 26
REQUIRED = 20


def root_sets(data: Path, count: int, seed: int) -> list[dict[str, str]]:
    conn = sqlite3.connect(f"file:{data / 'registry.sqlite3'}?mode=ro", uri=True)
    rows = conn.execute("SELECT name, latest FROM packages WHERE latest IS NOT NULL ORDER BY name").fetchall()
    conn.close()
    rng = random.Random(seed)
    sets = []
    for i in range(count):
        picked = rng.sample(rows, 1 + i % 4)
        # npm writes ^latest into package.json by default; do the same.
        sets.append({name: f"^{latest}" for name, latest in picked})
    return sets


def npm_pick(url: str, deps: dict[str, str], work: Path, cache: Path) -> set[tuple[str, str]] | None:
    work.mkdir(parents=True)
    (work / "package.json").write_text(json.dumps({"name": "agree", "version": "0.0.0", "private": True,
                                                   "dependencies": deps}))
    (work / ".npmrc").write_text(f"registry={url}/\naudit=false\nfund=false\nupdate-notifier=false\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update({"npm_config_userconfig": str(work / ".npmrc"), "npm_config_cache": str(cache), "CI": "true"})
    try:
        result = subprocess.run(["npm", "install", "--package-lock-only", "--ignore-scripts"], cwd=work, env=env,
                                capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None  # npm itself loops forever on some peer-heavy trees: counted as refused by npm
    if result.returncode != 0:
        if "ERESOLVE" in result.stderr:
            return None
        raise AssertionError(f"npm failed: {result.stderr[-2000:]}")
    lock = json.loads((work / "package-lock.json").read_text())
    return {(meta.get("name") or key.rsplit("node_modules/", 1)[-1], meta["version"])
            for key, meta in lock["packages"].items() if key}


def eghact_pick(url: str, deps: dict[str, str]) -> set[tuple[str, str]]:
    body = {"dependencies": deps, "strategy": {"duplicate": "isolate", "version": "highest", "security": "permissive"}}
    request = urllib.request.Request(f"{url}/-/v1/resolve", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        lock = json.loads(response.read())
    return {(entry["name"], entry["version"]) for entry in lock["packages"].values()}


def test_isolate_highest_agrees_with_npm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli("seed", "--data", str(data), "--plugins", "150", "--seed", "11", "--workers", "1")
    origin = OriginProcess(data).start()
    compared, refused, disagreements = 0, 0, []
    try:
        for i, deps in enumerate(root_sets(data, ROOT_SETS, seed=5)):
            npm = npm_pick(origin.url, deps, tmp_path / f"app{i}", tmp_path / "npm-cache")
            if npm is None:
                refused += 1
                continue
            ours = eghact_pick(origin.url, deps)
            compared += 1
            if ours != npm:
                disagreements.append({"roots": deps, "only npm": sorted(npm - ours), "only eghact": sorted(ours - npm)})
    finally:
        origin.stop()
    print(f"npm agreement: {compared} root sets compared, {len(disagreements)} disagreements, "
          f"{refused} refused by npm (ERESOLVE or no answer)")
    for item in disagreements:
        print(json.dumps(item))
    assert compared >= REQUIRED
    assert disagreements == []
