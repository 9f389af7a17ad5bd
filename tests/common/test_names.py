"""npm package names, checked against the rules of validate-npm-package-name for new packages."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from eghact_common.errors import InvalidName
from eghact_common.names import check_name, escape_name, split_scope, tarball_filename, validate_name


@pytest.mark.parametrize(
    "name",
    [
        "some-package",
        "example.com",
        "under_score",
        "period.js",
        "123numeric",
        "@npm/thingy",
        "@npm~zors/money.js",  # npm checks ~'!()* only after the last slash
        "@acme/chart",
        "a" * 214,
        "@a/" + "b" * 211,
        "http-server",  # a core module name is fine as a prefix
        "node-modules",
    ],
)
def test_valid_names(name: str) -> None:
    assert check_name(name) == []
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "problems"),
    [
        ("", ["name length must be greater than zero"]),
        (".start-with-period", ["name cannot start with a period"]),
        ("-start-with-hyphen", ["name cannot start with a hyphen"]),
        ("_start-with-underscore", ["name cannot start with an underscore"]),
        (
            " leading-space",
            ["name cannot contain leading or trailing spaces", "name can only contain URL-friendly characters"],
        ),
        ("contain:colons", ["name can only contain URL-friendly characters"]),
        ("s/l/a/s/h/e/s", ["name can only contain URL-friendly characters"]),
        ("has space", ["name can only contain URL-friendly characters"]),
        ("ünicode", ["name can only contain URL-friendly characters"]),
        ("node_modules", ["node_modules is not a valid package name"]),
        ("favicon.ico", ["favicon.ico is not a valid package name"]),
        ("http", ["http is a core module name"]),
        ("fs", ["fs is a core module name"]),
        ("Events", ["Events is a core module name", "name cannot contain capital letters"]),
        ("CAPITAL-LETTERS", ["name cannot contain capital letters"]),
        ("a" * 215, ["name cannot contain more than 214 characters"]),
        ("ifyouwanttogetthesumoftwonumbers~", ['name cannot contain special characters ("~\'!()*")']),
        ("crazy!", ['name cannot contain special characters ("~\'!()*")']),
        ("@npm-zors/money!time.js", ['name cannot contain special characters ("~\'!()*")']),
        ("@npm/.hidden", ["name cannot start with a period"]),
        ("@npm/a b", ["name can only contain URL-friendly characters"]),
        ("@npm/a/b", ["name can only contain URL-friendly characters"]),
        ("@/nothing", ["name can only contain URL-friendly characters"]),
        ("@Acme/chart", ["name cannot contain capital letters"]),
        (
            "\ufeffbom",  # JavaScript's trim() strips U+FEFF; Python's strip() would not
            ["name cannot contain leading or trailing spaces", "name can only contain URL-friendly characters"],
        ),
    ],
)
def test_invalid_names(name: str, problems: list[str]) -> None:
    assert check_name(name) == problems
    with pytest.raises(InvalidName) as caught:
        validate_name(name)
    assert caught.value.detail["problems"] == problems
    assert caught.value.status == 400
    assert caught.value.code == "invalid_name"


@pytest.mark.parametrize("name", ["JSONStream", "events", "buffer", "Base64", "a" * 300, "crazy!", "@Acme/Chart"])
def test_legacy_names_are_fine_for_packages_that_exist(name: str) -> None:
    assert check_name(name) != []
    assert check_name(name, legacy=True) == []
    assert validate_name(name, legacy=True) == name


@pytest.mark.parametrize("name", ["", ".x", "-x", "_x", " x", "node_modules", "Favicon.ico", "a b", "@a/.b"])
def test_legacy_names_still_refuse_npm_errors(name: str) -> None:
    assert check_name(name, legacy=True) != []


def test_every_problem_is_listed() -> None:
    assert check_name(".Has Space") == [
        "name cannot start with a period",
        "name cannot contain capital letters",
        "name can only contain URL-friendly characters",
    ]


def test_length_counts_utf16_units_as_javascript_does() -> None:
    # 107 emoji are 214 UTF-16 units; 108 are 216 (npm counts `name.length`).
    assert "name cannot contain more than 214 characters" not in check_name("\N{GRINNING FACE}" * 107)
    assert "name cannot contain more than 214 characters" in check_name("\N{GRINNING FACE}" * 108)


@pytest.mark.parametrize("value", [None, 42, ["x"], b"bytes"])
def test_non_strings(value: object) -> None:
    assert check_name(value) == ["name must be a string"]
    with pytest.raises(InvalidName):
        validate_name(value)


def test_split_scope() -> None:
    assert split_scope("@acme/chart") == ("@acme", "chart")
    assert split_scope("lodash") == (None, "lodash")
    for bad in ("@acme", "@/x", "@acme/", "@a/b/c"):
        with pytest.raises(InvalidName):
            split_scope(bad)


def test_escape_and_tarball() -> None:
    assert escape_name("@acme/chart") == "@acme%2fchart"
    assert escape_name("lodash") == "lodash"
    assert tarball_filename("@acme/chart", "1.2.3") == "chart-1.2.3.tgz"
    assert tarball_filename("lodash", "4.17.21") == "lodash-4.17.21.tgz"
    assert tarball_filename("x", "1.0.0-beta.1+build") == "x-1.0.0-beta.1+build.tgz"


# Differential check against the library npm itself ships, when node and npm are present.


def _npm_validator() -> Path | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return None
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=False).stdout.strip()
    candidate = Path(root) / "npm" / "node_modules" / "validate-npm-package-name"
    return candidate if candidate.is_dir() else None


_ALPHABET = "abcXZ09-_.~'!()*@/ %:\u00e9\u00a0\ufeff\x1c\t"


@pytest.mark.npm
def test_agrees_with_npm() -> None:
    validator = _npm_validator()
    if validator is None:
        pytest.skip("node/npm with validate-npm-package-name not found")
    rng = random.Random(20240611)
    names = ["".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 8))) for _ in range(3000)]
    names += ["@a/b", "@a/.b", "http", "Http", "fs/promises", "node:test", "a" * 215, "@a~/b~", ". x"]
    script = (
        f"const v = require({json.dumps(str(validator))});"
        "const names = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(names.map(n => { const r = v(n); return [r.validForNewPackages, "
        "r.validForOldPackages]; })));"
    )
    out = subprocess.run(["node", "-e", script], input=json.dumps(names), capture_output=True, text=True, check=True)
    for name, (new_ok, old_ok) in zip(names, json.loads(out.stdout), strict=True):
        assert (check_name(name) == []) == new_ok, name
        assert (check_name(name, legacy=True) == []) == old_ok, name
