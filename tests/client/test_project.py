"""The project file and the lockfile as the client reads them: every problem reported at once,
package keys that would leave the plugins folder refused, and the frozen check (``mismatches``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eghact_client.errors import InvalidLockfile, InvalidProject
from eghact_client.lockfile import Lock, mismatches
from eghact_client.project import Project
from eghact_common.integrity import sri_sha512

INTEGRITY = sri_sha512(b"x")


def lockfile(**packages: str) -> dict[str, Any]:
    """A lockfile in the resolver's shape for root ``name -> version`` (requested as ``^version``)."""
    return {"lockfileVersion": 1, "hash": "h" * 64, "registry": "http://127.0.0.1:1",
            "request": {"dependencies": {n: f">={v} <2.0.0-0" for n, v in packages.items()}, "eager": [],
                        "framework": None, "strategy": {"version": "highest", "duplicate": "plugins",
                                                        "security": "audit"},
                        "policy": {"capabilities": {"allow": None, "deny": []}, "licenses": None, "peer": "warn"}},
            "packages": {f"node_modules/{n}": {"name": n, "version": v, "integrity": INTEGRITY,
                                               "resolved": f"http://127.0.0.1:1/{n}/-/{n}-{v}.tgz"}
                         for n, v in packages.items()},
            "cycles": [], "warnings": [], "loadPlan": {"chunks": [], "prefetch": {}}}


def test_a_project_file_with_problems_lists_them_all(tmp_path: Path) -> None:
    (tmp_path / "eghact.json").write_text(json.dumps({
        "dependencies": {"../up": "^1", "ok": "git+ssh://x"}, "eager": ["missing"],
        "registry": {"primary": "ftp://x", "timeout": 0}, "pluginsDir": "../outside"}))
    with pytest.raises(InvalidProject) as refused:
        Project.load(tmp_path)
    problems = " | ".join(refused.value.problems)
    for expected in ("dependencies['../up']", "'git+ssh://x' is not a semver range", "eager: 'missing'",
                     "registry.primary", "registry.timeout", "pluginsDir"):
        assert expected in problems


def test_package_json_eghact_section_is_read_and_written_back_alone(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"name": "app", "scripts": {"t": "x"},
                                                       "eghact": {"dependencies": {"a": "^1.0.0"}}}))
    project = Project.load(tmp_path).with_dependency("b", "~2.1.0")
    project.save()
    written = json.loads((tmp_path / "package.json").read_text())
    assert written == {"name": "app", "scripts": {"t": "x"},
                       "eghact": {"dependencies": {"a": "^1.0.0", "b": "~2.1.0"}}}


def test_a_lockfile_key_that_would_leave_the_plugins_folder_is_refused() -> None:
    doc = lockfile(a="1.0.0")
    doc["packages"]["node_modules/../../etc"] = doc["packages"]["node_modules/a"]
    doc["packages"]["node_modules/b"] = {"name": "b", "version": "1.0.0", "integrity": "md5-nope",
                                         "resolved": "file:///etc/passwd"}
    with pytest.raises(InvalidLockfile) as refused:
        Lock.parse(json.dumps(doc).encode())
    problems = " | ".join(refused.value.problems)
    assert "node_modules/../../etc" in problems and "resolved: not an http(s) URL" in problems
    assert "integrity" in problems


def test_an_npm_alias_folder_holds_its_target_and_no_other_folder_holds_another_name() -> None:
    # The resolver lays out npm: aliases as npm does: the folder is the alias, the entry names
    # the package in it. Only a folder some entry declares as an alias of that package may.
    doc = lockfile(cliui="8.0.0")
    doc["packages"]["node_modules/cliui"]["dependencies"] = {"sw-cjs": "npm:sw@^4.0.0"}
    doc["packages"]["node_modules/sw-cjs"] = {"name": "sw", "version": "4.2.0", "integrity": INTEGRITY,
                                              "resolved": "http://127.0.0.1:1/sw/-/sw-4.2.0.tgz"}
    lock = Lock.parse(json.dumps(doc).encode())
    assert {(p.folder, p.name) for p in lock.packages} == {("cliui", "cliui"), ("sw-cjs", "sw")}
    doc["packages"]["node_modules/other"] = {**doc["packages"]["node_modules/sw-cjs"]}
    with pytest.raises(InvalidLockfile) as refused:
        Lock.parse(json.dumps(doc).encode())
    assert refused.value.problems == ["packages['node_modules/other']: the key does not end with its name 'sw' "
                                      "(nor with an npm: alias of it)"]


def test_the_frozen_check_names_each_way_the_requirements_moved(tmp_path: Path) -> None:
    lock = Lock.parse(json.dumps(lockfile(a="1.2.0", b="1.0.0")).encode())
    same = Project(tmp_path, dependencies={"a": "^1.0.0", "b": "1.x"})
    assert mismatches(lock, same) == []
    moved = Project(tmp_path, dependencies={"a": "^1.3.0", "c": "^1"}, strategy={"version": "lowest"},
                    policy={"capabilities": {"deny": ["network"]}})
    assert mismatches(lock, moved) == [
        "c is required but not in the lockfile", "b is in the lockfile but no longer required",
        "a: the locked 1.2.0 does not satisfy '^1.3.0'", "the strategy differs from the lockfile's",
        "the policy differs from the lockfile's"]
