"""A full bundle and three incrementals, imported in order into a fresh data dir, make a
mirror that serves what the origin served, byte for byte (tarball URLs aside), and that npm
installs from with no origin running."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import OriginProcess, escaped
from .conftest import Scenario
from .helpers import CORGI, get, get_or_none, mirror, served


@pytest.fixture(scope="module")
def full_mirror(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    into = tmp_path_factory.mktemp("full") / "mirror"
    for name in ("b0", "b1", "b2", "b3"):
        done = scenario.import_(name, into)
        assert "APPLIED" in done.stdout, done.stdout
    return into


@pytest.fixture(scope="module")
def served_mirror(full_mirror: Path) -> Iterator[OriginProcess]:
    server = OriginProcess(full_mirror, ("--read-only",)).start()
    yield server
    assert server.stop() == 0


def test_the_mirror_serves_what_the_origin_served(scenario: Scenario, served_mirror: OriginProcess) -> None:
    docs, tarballs = served(served_mirror.url, scenario.names)
    rebase = (scenario.origin_url.encode(), served_mirror.url.encode())
    assert len(docs) == len(scenario.docs) > 100
    for key, body in scenario.docs.items():
        expected = None if body is None else body.replace(*rebase)
        assert docs[key] == expected, key
    assert tarballs == scenario.tarballs
    assert len(tarballs) > 250


def test_tombstones_deprecations_tags_and_advisories_arrive(scenario: Scenario, served_mirror: OriginProcess) -> None:
    url = served_mirror.url
    assert get_or_none(f"{url}/{escaped(scenario.gone)}") is None  # unpublished whole
    leaf = json.loads(get(f"{url}/{escaped(scenario.leaf)}"))
    assert "99.0.0" not in leaf["versions"]  # one version unpublished
    assert get_or_none(f"{url}/{escaped(scenario.leaf)}/-/{scenario.leaf}-99.0.0.tgz") is None
    lib = json.loads(get(f"{url}/mirror-lib", CORGI))
    assert lib["versions"]["1.0.0"]["deprecated"] == "use 1.1.0"
    assert lib["dist-tags"] == {"latest": "1.1.0", "beta": "1.0.0"}
    audit = json.loads(get_post(f"{url}/-/npm/v1/security/advisories/bulk", {"mirror-lib": ["1.0.0"]}))
    assert audit["mirror-lib"][0]["title"] == "mirror-lib before 1.1.0 is bad"
    health = json.loads(get(f"{url}/-/health"))
    assert health["read_only"] is True


def get_post(url: str, body: object) -> bytes:
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def test_the_chain_and_the_verification_records_are_kept(scenario: Scenario, full_mirror: Path) -> None:
    state = json.loads((full_mirror / "mirror.json").read_text())
    records = sorted((full_mirror / "verification").glob("*.txt"))
    assert len(state["bundle_chain"]) == 4 == len(records)
    for digest in state["bundle_chain"]:
        text = (full_mirror / "verification" / f"{digest}.txt").read_text()
        assert "APPLIED" in text and "signature        good" in text
        record = json.loads((full_mirror / "verification" / f"{digest}.json").read_text())
        assert record["bundle_digest"] == digest
        assert record["counts"]["files_checked"] == len(record["files"]) > 0
        assert all(line.startswith("OK  ") for line in text.split("\n\n", 1)[1].splitlines())
    first = json.loads((full_mirror / "verification" / f"{state['bundle_chain'][0]}.json").read_text())
    assert first["split"] is True and len(first["bundle_files"]) > 1


def test_reimporting_the_last_bundle_is_a_noop(scenario: Scenario, full_mirror: Path) -> None:
    from ..support import tree_digest

    before = tree_digest(full_mirror)
    done = scenario.import_("b3", full_mirror)
    assert "already applied" in done.stdout
    assert tree_digest(full_mirror) == before


@pytest.mark.npm
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
def test_npm_installs_from_the_mirror_with_no_origin(served_mirror: OriginProcess, scenario: Scenario,
                                                     tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "offline", "version": "0.0.0", "private": True}))
    rc = tmp_path / "npmrc"
    rc.write_text(f"registry={served_mirror.url}/\naudit=false\nfund=false\nupdate-notifier=false\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update({"npm_config_userconfig": str(rc), "npm_config_cache": str(tmp_path / "cache"),
                "NO_UPDATE_NOTIFIER": "1", "CI": "true"})
    done = subprocess.run(["npm", "install", "mirror-app"], cwd=app, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    modules = app / "node_modules"
    assert json.loads((modules / "mirror-app" / "package.json").read_text())["version"] == "1.0.0"
    assert json.loads((modules / "mirror-lib" / "package.json").read_text())["version"] == "1.1.0"
    assert (modules / scenario.leaf / "package.json").is_file()
    lock = json.loads((app / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/mirror-lib"]["resolved"].startswith(served_mirror.url)


def test_a_bundle_verifies_on_its_own(scenario: Scenario) -> None:
    done = mirror("verify", str(scenario.bundles["b2"]), "--trust", str(scenario.trust), "--json")
    record = json.loads(done.stdout)
    assert record["result"] == "verified" and record["signed_by"] == record["trusted_key"]
    assert record["counts"]["tarballs"] == 1 and record["counts"]["packages"] == 1
