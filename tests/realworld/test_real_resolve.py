"""Resolve across both worlds, for real: a local plugin (published here, with an ``eghact``
block) depending on popular npm libraries, an origin whose uplink is the registry npm is
configured with (read at run time, never written here), an edge in front.

``POST /-/v1/resolve`` pulls the plugin's public closure through the uplink and answers the
tree npm itself resolves for those libraries, with the upstream's integrity; npm then installs
exactly that lockfile (``npm ci``) through the edge; and the same request again is the stored
build: no uplink request, no pull.

When that registry cannot be reached the test FAILS, loudly, as the corpus test does.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ..support import escaped, manifest, publish_body
from .corpus import npm_env, resolve_tree, tree_differences
from .metrics import metric_values, total
from .network import reaching, real_registry, uplinked_network

pytestmark = [pytest.mark.realworld, pytest.mark.npm, pytest.mark.slow]

PLUGIN = "@acme/web-plugin"
#: rimraf 5 reaches glob 10's @isaacs/cliui, whose dependencies are `npm:` aliases
#: (string-width-cjs: npm:string-width@^4.2.0 beside string-width ^5).
LIBRARIES = {"express": "^4.21.0", "axios": "^1.7.0", "debug": "^4.3.0", "rimraf": "^5.0.0"}
#: The fields of our lockfile entries that npm's package-lock.json has too.
_NPM_FIELDS = ("version", "resolved", "integrity", "dependencies")


def _send(url: str, method: str, body: dict[str, Any], token: str | None = None) -> tuple[int, Any, float]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method, headers=headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read()), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), time.monotonic() - started


def _upstream_integrity(spec: str) -> str:
    """What npm's own registry says of ``spec``'s ``dist.integrity`` (``npm view``)."""
    shown = subprocess.run(["npm", "view", spec, "dist.integrity", "--json"], capture_output=True, text=True,
                           timeout=120, env=npm_env())
    assert shown.returncode == 0, shown.stderr
    return str(json.loads(shown.stdout))


def _npm_lockfile(lock: dict[str, Any]) -> dict[str, Any]:
    """Our lockfile as npm's package-lock.json (v3) for a project depending on the plugin: the
    same paths, each with the fields npm reads."""
    root = {"name": "consumer", "version": "0.0.0", "dependencies": {PLUGIN: "^1.0.0"}}
    packages: dict[str, Any] = {"": root}
    for path, entry in lock["packages"].items():
        packages[path] = {key: entry[key] for key in _NPM_FIELDS if entry.get(key)}
        if not path.endswith(f"node_modules/{entry['name']}"):  # an npm: alias's folder
            packages[path]["name"] = entry["name"]
        if entry.get("license"):
            packages[path]["license"] = entry["license"]
    return {"name": "consumer", "version": "0.0.0", "lockfileVersion": 3, "requires": True, "packages": packages}


def test_a_local_plugin_with_real_npm_dependencies_resolves_and_installs_through_an_edge(tmp_path: Path) -> None:
    registry = real_registry("REAL RESOLVE")
    with reaching("REAL RESOLVE", registry):
        # The tree npm resolves for the plugin's libraries against its own registry.
        reference = resolve_tree(LIBRARIES, tmp_path / "reference")

    with uplinked_network(tmp_path, registry) as network:
        origin, edge, admin = network.origin, network.edge, network.admin
        plugin = manifest(PLUGIN, "1.0.0", dependencies=LIBRARIES,
                          eghact={"version": "^2.0.0", "type": "middleware"})
        status, answer, _ = _send(f"{origin.url}/{escaped(PLUGIN)}", "PUT", publish_body(plugin), admin)
        assert status == 201, answer

        request = {"dependencies": {PLUGIN: "^1.0.0"}}
        status, lock, first_seconds = _send(f"{edge.url}/-/v1/resolve", "POST", request)
        assert status == 200, lock
        fetched = metric_values(origin.url, "eghact_origin_uplink_fetches", admin)
        pulls = metric_values(origin.url, "eghact_origin_resolve_pull_seconds", admin, suffix="_count")

        # The closure is the tree npm resolves, path for path, with the upstream's integrity.
        ours = {"packages": {path: entry for path, entry in lock["packages"].items()
                             if entry["name"] != PLUGIN}}
        differences = tree_differences(ours, reference)
        assert not differences, f"{len(differences)} entries differ from npm's tree:\n" + "\n".join(differences)
        by_name = {entry["name"]: entry for entry in lock["packages"].values()}
        for name in LIBRARIES:
            assert by_name[name]["integrity"] == _upstream_integrity(f"{name}@{by_name[name]['version']}")
        assert all(entry["resolved"].startswith(edge.url) for entry in lock["packages"].values())
        assert not lock["warnings"], lock["warnings"]
        # An alias's folder is never asked of the uplink (string-width-cjs is a package of its
        # own upstream): only the alias's target was pulled.
        aliased = {path.rsplit("node_modules/", 1)[-1] for path, entry in lock["packages"].items()
                   if not path.endswith(f"node_modules/{entry['name']}")}
        assert aliased, "the tree should hold npm: aliases (rimraf 5 -> glob 10 -> @isaacs/cliui)"
        with urllib.request.urlopen(f"{origin.url}/-/v1/changes?since=0&limit=1000", timeout=30) as response:
            pulled = {event["name"] for event in json.loads(response.read())["results"]}
        assert not aliased & pulled and "string-width" in pulled

        # npm installs exactly that lockfile through the edge (npm ci: no resolution of its own;
        # each tarball fetched from its `resolved` URL and checked against its integrity).
        project = tmp_path / "consumer"
        project.mkdir()
        (project / "package.json").write_text(json.dumps(_npm_lockfile(lock)["packages"][""]))
        (project / "package-lock.json").write_text(json.dumps(_npm_lockfile(lock), indent=1))
        rc = tmp_path / "npmrc"
        rc.write_text(f"registry={edge.url}/\naudit=false\nfund=false\nupdate-notifier=false\n")
        started = time.monotonic()
        installed = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=project,
                                   env=npm_env(npm_config_userconfig=str(rc), npm_config_cache=str(tmp_path / "cache")),
                                   capture_output=True, text=True, timeout=600)
        install_seconds = time.monotonic() - started
        assert installed.returncode == 0, f"npm ci through the edge failed:\n{installed.stderr[-4000:]}"
        for path, entry in lock["packages"].items():
            found = json.loads((project / path / "package.json").read_text())
            assert (found["name"], found["version"]) == (entry["name"], entry["version"]), path

        # The same request again: the stored build, with no uplink request and no pull.
        fetched_before = metric_values(origin.url, "eghact_origin_uplink_fetches", admin)
        status, again, second_seconds = _send(f"{edge.url}/-/v1/resolve", "POST", request)
        assert status == 200 and again == lock
        assert metric_values(origin.url, "eghact_origin_uplink_fetches", admin) == fetched_before
        assert metric_values(origin.url, "eghact_origin_resolve_pull_seconds", admin, suffix="_count") == pulls
    print(f"\nreal resolve: {len(lock['packages'])} packages; first resolve {first_seconds:.2f} s (pulled "
          f"{total(fetched, what='packument'):.0f} packuments), npm ci through the edge {install_seconds:.1f} s "
          f"(pulled {total(fetched_before, what='tarball'):.0f} tarballs), second resolve {second_seconds:.3f} s")
