"""The real npm client against a real origin process on 127.0.0.1.

One origin for the module (npm runs are slow); each test builds on the packages the
first one publishes, so they run in file order, as pytest does by default.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import OriginProcess, cli

pytestmark = [pytest.mark.npm, pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")]


class Npm:
    def __init__(self, origin: OriginProcess, root: Path, admin: str, reader: str):
        self.origin, self.root, self.admin, self.reader = origin, root, admin, reader
        self.cache = root / "npm-cache"

    def rc(self, token: str | None) -> Path:
        path = self.root / f"npmrc-{token[-8:] if token else 'anon'}"
        host = self.origin.url.removeprefix("http:")
        lines = [f"registry={self.origin.url}/", "audit=false", "fund=false", "update-notifier=false"]
        if token:
            lines.append(f"{host}/:_authToken={token}")
        path.write_text("\n".join(lines) + "\n")
        return path

    def run(self, *args: str, cwd: Path, token: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        env.update({"npm_config_userconfig": str(self.rc(token)), "npm_config_cache": str(self.cache),
                    "NO_UPDATE_NOTIFIER": "1", "CI": "true"})
        result = subprocess.run(["npm", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(f"npm {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def publish(self, name: str, version: str, deps: dict[str, str] | None = None) -> None:
        folder = self.root / "src" / f"{name.replace('/', '__')}-{version}"
        folder.mkdir(parents=True)
        manifest = {"name": name, "version": version, "description": f"{name} for the npm test", "license": "MIT",
                    "main": "index.js", "dependencies": deps or {},
                    "eghact": {"version": "^2.0.0", "type": "component", "capabilities": {"required": ["dom:read"]}}}
        (folder / "package.json").write_text(json.dumps(manifest, indent=2))
        requires = "".join(f"require({dep!r});\n" for dep in deps or {})
        (folder / "index.js").write_text(f"{requires}module.exports = {{ name: {name!r}, version: {version!r} }};\n")
        self.run("publish", cwd=folder, token=self.admin)


@pytest.fixture(scope="module")
def npm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Npm]:
    root = tmp_path_factory.mktemp("npm")
    data = root / "data"
    admin = cli("token", "create", "--data", str(data), "--name", "admin", "--scope", "admin").stdout.splitlines()[-1]
    reader = cli("token", "create", "--data", str(data), "--name", "reader",
                 "--scope", "read:@acme/*").stdout.splitlines()[-1]
    origin = OriginProcess(data, ("--private-scope", "@acme")).start()
    try:
        yield Npm(origin, root, admin, reader)
    finally:
        assert origin.stop() == 0


def test_publish_scoped_and_unscoped(npm: Npm) -> None:
    npm.publish("leaf-util", "1.0.0")
    npm.publish("leaf-util", "1.0.1")
    npm.publish("@acme/base", "1.0.0", {"leaf-util": "~1.0.0"})
    npm.publish("mid-layer", "1.0.0", {"@acme/base": "^1.0.0"})
    npm.publish("@eghact/app-kit", "1.0.0", {"mid-layer": "^1.0.0"})
    again = npm.run("publish", cwd=npm.root / "src" / "leaf-util-1.0.0", token=npm.admin, check=False)
    assert again.returncode != 0
    # npm reads our packument first and refuses client-side; the server's 409 is tested over HTTP.
    assert "cannot publish over the previously published versions" in again.stderr or "409" in again.stderr


def test_view(npm: Npm) -> None:
    shown = npm.run("view", "@eghact/app-kit", "--json", cwd=npm.root)
    doc = json.loads(shown.stdout)
    assert doc["name"] == "@eghact/app-kit" and doc["version"] == "1.0.0"
    assert doc["dependencies"] == {"mid-layer": "^1.0.0"}
    versions = json.loads(npm.run("view", "leaf-util", "versions", "--json", cwd=npm.root).stdout)
    assert versions == ["1.0.0", "1.0.1"]
    denied = npm.run("view", "@acme/base", cwd=npm.root, check=False)
    assert denied.returncode != 0 and "E401" in denied.stderr
    private = json.loads(npm.run("view", "@acme/base", "--json", cwd=npm.root, token=npm.reader).stdout)
    assert private["version"] == "1.0.0"


def test_dist_tag(npm: Npm) -> None:
    npm.run("dist-tag", "add", "leaf-util@1.0.0", "stable", cwd=npm.root, token=npm.admin)
    listed = npm.run("dist-tag", "ls", "leaf-util", cwd=npm.root).stdout
    assert "stable: 1.0.0" in listed and "latest: 1.0.1" in listed
    npm.run("dist-tag", "rm", "leaf-util", "stable", cwd=npm.root, token=npm.admin)
    assert "stable" not in npm.run("dist-tag", "ls", "leaf-util", cwd=npm.root).stdout


def test_deprecate(npm: Npm) -> None:
    npm.run("deprecate", "leaf-util@1.0.0", "use 1.0.1 or later", cwd=npm.root, token=npm.admin)
    shown = npm.run("view", "leaf-util@1.0.0", "deprecated", cwd=npm.root).stdout.strip()
    assert shown == "use 1.0.1 or later"
    assert npm.run("view", "leaf-util@1.0.1", "deprecated", cwd=npm.root).stdout.strip() == ""
    refused = npm.run("deprecate", "leaf-util@1.0.1", "nope", cwd=npm.root, token=npm.reader, check=False)
    assert refused.returncode != 0


def test_install_three_levels_with_a_private_package(npm: Npm) -> None:
    app = npm.root / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "consumer", "version": "0.0.0", "private": True}))
    anonymous = npm.run("install", "@eghact/app-kit", cwd=app, check=False)
    assert anonymous.returncode != 0 and "E401" in anonymous.stderr
    npm.run("install", "@eghact/app-kit", cwd=app, token=npm.reader)
    modules = app / "node_modules"
    for name, version in [("@eghact/app-kit", "1.0.0"), ("mid-layer", "1.0.0"), ("@acme/base", "1.0.0"),
                          ("leaf-util", "1.0.1")]:
        installed = json.loads((modules / name / "package.json").read_text())
        assert installed["version"] == version, name
    loaded = subprocess.run(["node", "-e", "console.log(JSON.stringify(require('@eghact/app-kit')))"], cwd=app,
                            capture_output=True, text=True, check=True)
    assert json.loads(loaded.stdout) == {"name": "@eghact/app-kit", "version": "1.0.0"}
    lock = json.loads((app / "package-lock.json").read_text())
    resolved = lock["packages"]["node_modules/@acme/base"]["resolved"]
    assert resolved.startswith(npm.origin.url)


def test_audit_reports_a_seeded_advisory(npm: Npm) -> None:
    cli("advisory", "add", "--data", str(npm.origin.data_dir), "--name", "leaf-util", "--range", "<1.0.1",
        "--severity", "high", "--title", "Prototype pollution in leaf-util", "--cwe", "CWE-1321")
    app = npm.root / "audited"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "audited", "version": "0.0.0", "private": True,
                                                  "dependencies": {"leaf-util": "1.0.0"}}))
    npm.run("install", cwd=app)
    report = npm.run("audit", "--json", "--audit=true", cwd=app, check=False)
    assert report.returncode != 0  # npm audit exits 1 when it finds something
    found = json.loads(report.stdout)
    assert found["vulnerabilities"]["leaf-util"]["severity"] == "high"
    assert found["metadata"]["vulnerabilities"]["high"] == 1


def test_unpublish_one_version(npm: Npm) -> None:
    npm.publish("gone-soon", "1.0.0")
    npm.publish("gone-soon", "1.1.0")
    npm.run("unpublish", "gone-soon@1.1.0", "--force", cwd=npm.root, token=npm.admin)
    versions = json.loads(npm.run("view", "gone-soon", "versions", "--json", cwd=npm.root).stdout)
    assert versions in (["1.0.0"], "1.0.0")
    latest = npm.run("view", "gone-soon", "dist-tags.latest", cwd=npm.root).stdout.strip()
    assert latest == "1.0.0"
