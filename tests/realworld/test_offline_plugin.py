"""A local plugin with real public dependencies, carried across an air gap.

An origin with nothing published but ``@acme/plugin`` and ``--uplink`` the registry npm is
configured with (read at run time with ``npm config get registry``); the plugin depends on
real npm libraries that have dependencies of their own (``debug`` with ``ms``, ``semver``,
``picocolors``, the scoped ``@types/debug`` with ``@types/ms``). ``eghact-mirror export
--filter '@acme/*' --closure`` pulls the closure through the origin and carries only the
versions it needs; the bundle is imported into a mirror, the origin is stopped, and npm installs
the plugin from the mirror alone — a fresh cache, ``--prefer-online`` so that npm asks the
mirror for everything, and a mirror with no uplink configured, so nothing can leave it. npm gets
the tree npm resolves for the same dependencies against its own registry.

When that registry cannot be reached this test FAILS, loudly (``corpus.check_registry``): a
real-world check that quietly skips would let a regression through when nobody is looking.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest

from ..mirror.helpers import mirror, read_members
from ..origin.uplinks.support import admin_token
from ..support import OriginProcess, escaped, get, manifest, publish_body
from .corpus import CorpusUnavailable, check_registry, npm_env, resolve_tree

pytestmark = [pytest.mark.realworld, pytest.mark.npm, pytest.mark.slow]

DEPENDENCIES = {"debug": "^4.3.0", "semver": "^7.5.0", "picocolors": "^1.0.0", "@types/debug": "^4.1.0"}


def npm_registry() -> str:
    try:
        check_registry("debug")
    except CorpusUnavailable as exc:
        pytest.fail(f"THE REGISTRY NPM IS CONFIGURED WITH CANNOT BE REACHED: this real-world test cannot run, "
                    f"and does not pass.\n{exc}")
    registry = subprocess.run(["npm", "config", "get", "registry"], capture_output=True, text=True, check=True,
                              env=npm_env(), timeout=60).stdout.strip()
    assert registry.startswith(("http://", "https://")), registry
    return registry


def installed(lock: dict[str, Any]) -> dict[str, str]:
    """{folder: version} of a package-lock's tree, the root project and our plugin left out."""
    return {path: entry["version"] for path, entry in lock["packages"].items()
            if path and "@acme/" not in path}


def publish(url: str, token: str, doc: dict[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(f"{url}/{escaped(doc['name'])}", data=json.dumps(publish_body(doc)).encode(),
                                     method="PUT", headers={"Content-Type": "application/json",
                                                            "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


def test_a_plugin_with_public_dependencies_installs_offline_from_a_mirror(tmp_path: Path) -> None:
    registry = npm_registry()
    direct = installed(resolve_tree(DEPENDENCIES, tmp_path / "direct"))  # what npm gets from its registry
    key, bundle, mirror_dir = tmp_path / "key", tmp_path / "plugin.bundle", tmp_path / "mirror"
    mirror("keygen", "-o", str(key))
    origin = OriginProcess(tmp_path / "origin", ("--uplink", registry))
    (tmp_path / "origin").mkdir()
    token = admin_token(tmp_path / "origin")
    origin.start()
    try:
        publish(origin.url, token, manifest("@acme/plugin", "1.0.0", dependencies=DEPENDENCIES))
        started = time.perf_counter()
        mirror("export", "--origin", origin.url, "--key", str(key), "-o", str(bundle), "--filter", "@acme/*",
               "--closure", timeout=600)
        export_seconds = time.perf_counter() - started
        origin_url = origin.url
    finally:
        assert origin.stop() == 0
    index = json.loads(dict(read_members(bundle))["index.json"])
    entries = {entry["name"]: entry.get("versions") for entry in index["packages"]}
    assert entries["@acme/plugin"] is None  # local: whole
    assert {"debug", "ms", "semver", "picocolors", "@types/debug", "@types/ms"} <= set(entries)
    assert all(versions for name, versions in entries.items() if name != "@acme/plugin")
    started = time.perf_counter()
    mirror("import", str(bundle), "--into", str(mirror_dir), "--trust", f"{key}.pub", timeout=600)
    import_seconds = time.perf_counter() - started

    served = OriginProcess(mirror_dir, ("--read-only",))  # no --uplink: it can ask no one
    served.start()
    try:
        with pytest.raises(urllib.error.URLError):
            get(f"{origin_url}/-/ping")  # the origin is gone
        health = json.loads(get(f"{served.url}/-/health"))
        assert "uplinks" not in health
        app = tmp_path / "app"
        app.mkdir()
        (app / "package.json").write_text(json.dumps(
            {"name": "app", "version": "1.0.0", "private": True, "dependencies": {"@acme/plugin": "1.0.0"}}))
        started = time.perf_counter()
        result = subprocess.run(
            ["npm", "install", "--registry", f"{served.url}/", "--cache", str(tmp_path / "fresh-cache"),
             "--prefer-online", "--ignore-scripts", "--no-audit", "--no-fund", "--fetch-retries=0"],
            cwd=app, env=npm_env(), capture_output=True, text=True, timeout=300)
        install_seconds = time.perf_counter() - started
        assert result.returncode == 0, result.stderr[-3000:]
        lock = json.loads((app / "package-lock.json").read_text())
        assert lock["packages"]["node_modules/@acme/plugin"]["version"] == "1.0.0"
        # npm leaves "resolved" out for its configured registry: here the mirror. Any other
        # registry (a scope's) would be written out.
        assert not [e["resolved"] for p, e in lock["packages"].items() if p and "resolved" in e]
        assert installed(lock) == direct  # the tree npm gets from its own registry
        # Every tarball came from the mirror (a fresh npm cache, the origin stopped).
        metrics = get(f"{served.url}/-/metrics").decode()
        fetched = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                      if line.startswith("eghact_origin_requests_total{") and 'route="tarball"' in line
                      and 'status="200"' in line)
        assert fetched == len(lock["packages"]) - 1, metrics
        assert (app / "node_modules" / "debug" / "package.json").exists()
        assert (app / "node_modules" / "ms" / "package.json").exists()
    finally:
        assert served.stop() == 0
    print(f"\noffline plugin: {len(entries)} packages ({len(direct)} installed), "
          f"{sum(f['path'].startswith('tarballs/') for f in index['files'])} tarballs, "
          f"{sum(len(v or ()) for v in entries.values())} pulled versions carried; bundle {bundle.stat().st_size} "
          f"bytes; export {export_seconds:.1f} s, import {import_seconds:.1f} s, npm install {install_seconds:.1f} s")
