"""The plugin manifest: package.json and eghact.yaml in, one validated immutable value out."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from eghact_common.capabilities import Capability
from eghact_common.errors import InvalidManifest
from eghact_common.manifest import Manifest, NpmWarning, check_dependency_spec
from eghact_common.spdx import License, Or

CHART: dict[str, Any] = {
    "name": "@acme/chart",
    "version": "1.2.3",
    "description": "Charts for Eghact",
    "author": "Jane Doe <jane@acme.io> (https://acme.io)",
    "license": "mit OR Apache-2.0",
    "keywords": ["chart", "svg"],
    "dependencies": {"d3-scale": "^4.0.2", "@acme/colors": "~1.4.0", "tiny-emitter": "latest"},
    "optionalDependencies": {"canvas-backend": "npm:@acme/canvas@^2.1.0"},
    "peerDependencies": {"@eghact/core": ">=2.0.0 <3", "@eghact/theme": "^2.0.0"},
    "peerDependenciesMeta": {"@eghact/theme": {"optional": True}},
    "main": "dist/index.cjs",
    "scripts": {"build": "eghact build", "test": "vitest"},
    "eghact": {
        "version": "^2.0.0",
        "type": "component",
        "capabilities": {"required": ["dom:read", "dom:write"], "optional": ["network:fetch:*.API.com"]},
        "exports": {"main": "dist/index.js", "types": "dist/index.d.ts", "style": "dist/style.css"},
        "metadata": {
            "category": "charts",
            "keywords": ["svg", "dataviz"],
            "compatibility": {"browsers": ["chrome >= 100", "firefox >= 102"], "node": ">=18"},
        },
    },
}

CHART_YAML = """\
name: "@acme/chart"
version: 1.2.3
description: Charts for Eghact
author: {name: Jane Doe, email: jane@acme.io, url: "https://acme.io"}
license: MIT OR Apache-2.0
keywords: [chart, svg]
dependencies:
  d3-scale: ^4.0.2
  "@acme/colors": ~1.4.0
  tiny-emitter: latest
optionalDependencies:
  canvas-backend: npm:@acme/canvas@^2.1.0
peerDependencies:
  "@eghact/core": ">=2.0.0 <3"
  "@eghact/theme": ^2.0.0
peerDependenciesMeta:
  "@eghact/theme": {optional: true}
main: dist/index.cjs
eghact:
  version: ^2.0.0
  type: component
  capabilities:
    required: [dom:read, dom:write]
    optional: [network:fetch:*.api.com]
  exports:
    main: dist/index.js
    types: dist/index.d.ts
    style: dist/style.css
  metadata:
    category: charts
    keywords: [svg, dataviz]
    compatibility:
      browsers: [chrome >= 100, firefox >= 102]
      node: ">=18"
"""

# What the registry sends back for lodash@4.17.21, trimmed: plenty of npm fields we do not model.
LODASH: dict[str, Any] = {
    "name": "lodash",
    "version": "4.17.21",
    "description": "Lodash modular utilities.",
    "keywords": ["modules", "stdlib", "util"],
    "homepage": "https://lodash.com/",
    "repository": {"type": "git", "url": "git+https://github.com/lodash/lodash.git"},
    "icon": "https://lodash.com/icon.svg",
    "license": "MIT",
    "main": "lodash.js",
    "author": {"name": "John-David Dalton", "email": "john.david.dalton@gmail.com"},
    "contributors": [
        {"name": "John-David Dalton", "email": "john.david.dalton@gmail.com"},
        {"name": "Mathias Bynens", "email": "mathias@qiwi.be"},
    ],
    "scripts": {"test": 'echo "See https://travis-ci.org/lodash-archive/lodash-cli for testing details."'},
    "bin": {"lodash": "bin/lodash"},
    "engines": {"node": ">=4"},
    "files": ["*.js", "fp/"],
    "sideEffects": False,
    "browser": {"./lodash.js": "./lodash.min.js"},
    "bugs": {"url": "https://github.com/lodash/lodash/issues"},
    "gitHead": "c6e281b878b315c7a10d90f9c2af4cdb112d9625",
    "_id": "lodash@4.17.21",
    "_nodeVersion": "14.15.5",
    "_npmVersion": "6.14.11",
    "dist": {
        "integrity": "sha512-v2kDEe57lecTulaDIuNTPy3Ry4gLGJ6Z1O3vE1krgXZNrsQ+LFTGHVxVjcXPs17LhbZVGedAJv8XZ1tvj5FvSg==",
        "shasum": "679591c564c3bffaae8454cf0b3df370c3d6911c",
        "tarball": "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz",
        "fileCount": 1054,
        "unpackedSize": 1412415,
    },
    "_npmUser": {"name": "bnjmnt4n", "email": "benjamin@dev.ofcr.se"},
    "maintainers": [{"name": "mathias", "email": "mathias@qiwi.be"}],
    "directories": {},
    "_hasShrinkwrap": False,
}


def problems_of(data: Any) -> list[str]:
    with pytest.raises(InvalidManifest) as caught:
        Manifest.from_package_json(data)
    assert caught.value.detail == {"problems": caught.value.problems}
    return caught.value.problems


def with_changes(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(CHART)
    data.update(changes)
    return data


def with_block(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(CHART)
    data["eghact"].update(changes)
    return data


# ------------------------------------------------------------------- good manifests


def test_a_plugin_from_package_json() -> None:
    manifest = Manifest.from_package_json(CHART)
    assert manifest.name == "@acme/chart"
    assert manifest.version == "1.2.3"
    assert manifest.type == "component"
    assert manifest.framework_range == "^2.0.0"
    assert manifest.capabilities_required == (Capability("dom:read"), Capability("dom:write"))
    assert manifest.capabilities_optional == (Capability("network:fetch", "*.api.com"),)
    assert manifest.dependencies == {"d3-scale": "^4.0.2", "@acme/colors": "~1.4.0", "tiny-emitter": "latest"}
    assert manifest.optional_dependencies == {"canvas-backend": "npm:@acme/canvas@^2.1.0"}
    assert manifest.peer_dependencies == {"@eghact/core": ">=2.0.0 <3", "@eghact/theme": "^2.0.0"}
    assert manifest.peer_optional == {"@eghact/theme"}
    assert manifest.license == "MIT OR Apache-2.0"
    assert manifest.license_expression == Or((License("MIT"), License("Apache-2.0")))
    assert manifest.keywords == ("chart", "svg", "dataviz")
    assert manifest.category == "charts"
    assert manifest.exports == {"main": "dist/index.js", "types": "dist/index.d.ts", "style": "dist/style.css"}
    assert manifest.author is not None
    assert (manifest.author.name, manifest.author.email, manifest.author.url) == (
        "Jane Doe",
        "jane@acme.io",
        "https://acme.io",
    )
    assert manifest.eghact is not None and manifest.eghact.metadata.compatibility is not None
    assert manifest.eghact.metadata.compatibility.node == ">=18"


def test_summary() -> None:
    summary = Manifest.from_package_json(CHART).to_summary()
    assert summary == {
        "type": "component",
        "framework": "^2.0.0",
        "capabilities": {"required": ["dom:read", "dom:write"], "optional": ["network:fetch:*.api.com"]},
        "category": "charts",
        "keywords": ["chart", "svg", "dataviz"],
        "license": "MIT OR Apache-2.0",
    }
    assert json.loads(json.dumps(summary)) == summary


def test_the_same_plugin_from_yaml() -> None:
    assert Manifest.from_yaml(CHART_YAML) == Manifest.from_package_json(CHART)


def test_from_file(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps(CHART), encoding="utf-8")
    (tmp_path / "eghact.yaml").write_text(CHART_YAML, encoding="utf-8")
    (tmp_path / "eghact.yml").write_text(CHART_YAML, encoding="utf-8")
    expected = Manifest.from_package_json(CHART)
    for name in ("package.json", "eghact.yaml", "eghact.yml"):
        assert Manifest.from_file(tmp_path / name) == expected
        assert Manifest.from_file(str(tmp_path / name)) == expected


def test_a_plain_npm_package_is_a_library() -> None:
    manifest = Manifest.from_package_json(LODASH)
    assert manifest.type == "library"
    assert manifest.framework_range is None
    assert manifest.capabilities_required == manifest.capabilities_optional == ()
    assert manifest.category is None
    assert manifest.exports == {"main": "lodash.js"}
    assert manifest.dependencies == {}
    assert manifest.peer_optional == frozenset()
    assert manifest.to_summary() == {
        "type": "library",
        "framework": None,
        "capabilities": {"required": [], "optional": []},
        "category": None,
        "keywords": ["modules", "stdlib", "util"],
        "license": "MIT",
    }


def test_a_library_needs_no_licence_but_a_plugin_does() -> None:
    assert Manifest.from_package_json({"name": "left-pad", "version": "1.3.0"}).license is None
    assert problems_of(with_changes(license=None)) == [
        "license: required for Eghact plugins (an SPDX expression, or UNLICENSED)"
    ]
    data = with_changes()
    del data["license"]
    assert problems_of(data) == ["license: required for Eghact plugins (an SPDX expression, or UNLICENSED)"]


@pytest.mark.parametrize(
    ("licence", "stored"),
    [("UNLICENSED", "UNLICENSED"), ("SEE LICENSE IN EULA.md", "SEE LICENSE IN EULA.md"), ("isc", "ISC")],
)
def test_npm_licence_spellings(licence: str, stored: str) -> None:
    assert Manifest.from_package_json(with_changes(license=licence)).license == stored


def test_version_is_normalised() -> None:
    assert Manifest.from_package_json(with_changes(version="v1.2.3")).version == "1.2.3"
    assert Manifest.from_package_json(with_changes(version="1.2.3-beta.1")).version == "1.2.3-beta.1"


def test_keywords_as_a_string_and_author_as_an_object() -> None:
    manifest = Manifest.from_package_json(
        {"name": "x-y", "version": "0.1.0", "keywords": "a, b,c", "author": {"name": "Ann", "web": "https://ann.io"}}
    )
    assert manifest.keywords == ("a", "b,c")  # normalize-package-data splits on /,\s+/
    assert manifest.author is not None and (manifest.author.name, manifest.author.url) == ("Ann", "https://ann.io")
    assert manifest.warnings == ()


def test_dependencies_on_existing_legacy_names_are_fine() -> None:
    deps = {"JSONStream": "^1.3.5", "events": "^3.3.0", "buffer": "^6.0.3", "process": "^0.11.10"}
    assert Manifest.from_package_json(with_changes(dependencies=deps)).dependencies == deps


def test_the_block_may_be_minimal() -> None:
    manifest = Manifest.from_package_json(
        {"name": "dark", "version": "1.0.0", "license": "MIT", "eghact": {"version": "2.x", "type": "theme"}}
    )
    assert (manifest.type, manifest.framework_range, manifest.capabilities_required) == ("theme", "2.x", ())
    assert manifest.keywords == () and manifest.category is None and manifest.exports == {}


def test_empty_yaml_lists_and_maps() -> None:
    text = "name: t\nversion: 1.0.0\nlicense: MIT\ndependencies:\neghact:\n  version: '^2'\n  type: theme\n"
    text += "  capabilities:\n    required:\n"
    manifest = Manifest.from_yaml(text)
    assert manifest.dependencies == {} and manifest.capabilities_required == ()


def test_unknown_npm_fields_are_ignored_but_unknown_block_fields_are_refused() -> None:
    assert Manifest.from_package_json(with_changes(whatever={"x": 1}, _attachments=None)).name == "@acme/chart"
    data = with_block(capabilites={"required": ["dom:read"]})
    assert problems_of(data) == [
        "eghact.capabilites: unknown field (expected one of: version, type, capabilities, exports, metadata)"
    ]
    data = with_changes()
    data["eghact"]["metadata"]["screenshots"] = ["a.png"]  # metadata is open
    Manifest.from_package_json(data)


def test_manifests_are_immutable() -> None:
    manifest = Manifest.from_package_json(CHART)
    with pytest.raises(ValidationError):
        manifest.name = "other"  # type: ignore[misc]


def test_dump_and_load_round_trip() -> None:
    manifest = Manifest.from_package_json(CHART)
    dumped = json.loads(manifest.model_dump_json(by_alias=True, exclude_none=True))
    assert dumped["eghact"]["capabilities"]["optional"] == ["network:fetch:*.api.com"]
    assert Manifest.from_package_json(dumped) == manifest


# -------------------------------------------------------------------- bad manifests


def test_every_problem_is_listed() -> None:
    data = {
        "name": "My Plugin",  # a space: invalid even for old npm packages
        "version": "1.0",
        "license": "MIT",
        "dependencies": {"left-pad": "github:stevemao/left-pad"},
        "eghact": {
            "version": "^2.0.0",
            "type": "widget",
            "capabilities": {"required": ["dom:read", "gpu:mine"], "optional": ["dom:read"]},
        },
    }
    assert problems_of(data) == [  # the git dependency is a warning: npm publishes it
        "name: invalid package name 'My Plugin': name can only contain URL-friendly characters",
        "version: invalid version '1.0': not a semver version (MAJOR.MINOR.PATCH)",
        "eghact.type: input should be 'component', 'transformer', 'middleware' or 'theme', got 'widget'",
        "eghact.capabilities.required[1]: unknown capability 'gpu:mine'",
        "eghact.capabilities.optional[0]: 'dom:read' is both required and optional",
    ]


def test_four_problems_give_four() -> None:
    data = with_changes(version="one", license="Apache 2")  # a plugin: its licence is checked
    data["eghact"]["version"] = "next-ish!"
    data["eghact"]["exports"]["main"] = "../outside.js"
    data["peerDependenciesMeta"] = {"react": {"optional": True}}  # npm ignores it: a warning
    problems = problems_of(data)
    assert [problem.split(":")[0] for problem in problems] == [
        "version",
        "license",
        "eghact.version",
        "eghact.exports.main",
    ]


def test_a_messy_manifest() -> None:
    # Of the npm fields only the version is refused (npm refuses it too); the rest are warnings.
    data = {
        "name": "ok-name",
        "version": 1.5,
        "author": 42,
        "keywords": [1],
        "dependencies": {"Bad Name": "^1.0.0", "x": 3, "y": "file:../y"},
        "peerDependencies": "react",
        "peerDependenciesMeta": {"nope": {"optional": "yes"}},
        "eghact": {
            "type": "transformer",
            "capabilities": {"required": ["dom:read", "dom:read", 7], "optional": ["network:fetch:*.com"]},
            "exports": {"main": "/abs.js", "types": 3, "style": "C:\\x.css", "worker": "w.js"},
            "metadata": {"compatibility": {"node": "eighteen"}},
        },
    }
    assert problems_of(data) == [
        "version: input should be a valid string, got 1.5 (quote it: in YAML an unquoted 1.0 is a number)",
        "eghact.version: required",
        "eghact.capabilities.required[2]: a capability must be a string, not int",
        "eghact.capabilities.optional[0]: invalid capability 'network:fetch:*.com': "
        "a wildcard needs at least two labels after '*.' (use network:fetch for every host)",
        "eghact.exports.main: '/abs.js': an export path must be relative to the package root",
        "eghact.exports.types: input should be a valid string, got 3",
        "eghact.exports.style: 'C:\\\\x.css': an export path must be relative to the package root",
        "eghact.exports.worker: unknown field (expected one of: main, types, style)",
        "eghact.metadata.compatibility.node: invalid semver range 'eighteen'",
        "license: required for Eghact plugins (an SPDX expression, or UNLICENSED)",
        "eghact.capabilities.required[1]: 'dom:read' is listed twice",
    ]
    data["version"], data["eghact"] = "1.5.0", {"version": "^2", "type": "transformer"}
    data["license"] = "MIT"
    warned = Manifest.from_package_json(data).warnings
    assert [(w.field, w.code) for w in warned] == [
        ("author", "author_invalid"),
        ("keywords", "keyword_not_string"),
        ('dependencies["Bad Name"]', "dependency_name_invalid"),
        ("dependencies.x", "dependency_not_string"),
        ("dependencies.y", "dependency_not_registry"),
        ("peerDependencies", "dependencies_not_object"),
        ("peerDependenciesMeta.nope", "peer_meta_not_peer"),
        ("peerDependenciesMeta.nope", "peer_meta_invalid"),
    ]


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"version": "1.0.0"}, "name: required"),
        ({"name": "x"}, "version: required"),
        ({"name": "x", "version": "1.0.0", "license": "MIT", "eghact": {"type": "theme"}}, "eghact.version: required"),
        ({"name": "x", "version": "1.0.0", "license": "MIT", "eghact": "yes"}, "eghact: expected an object, got str"),
        ({"name": "node_modules", "version": "1.0.0"}, "name: invalid package name 'node_modules'"),
        ({"name": "x", "version": "1.0", "license": "MIT"}, "version: invalid version '1.0'"),
        ({"name": "x", "version": "1.0.0", "license": {"type": "MIT"}, "eghact": {"version": "2", "type": "theme"}},
         "license: input should be a valid string"),
        ({"name": "x", "version": "1.0.0", "license": "MIT/X11", "eghact": {"version": "2", "type": "theme"}},
         "license: invalid licence expression 'MIT/X11'"),
    ],
)
def test_single_problems(document: dict[str, Any], problem: str) -> None:
    problems = problems_of(document)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_the_error_is_a_400_with_every_problem_in_the_body() -> None:
    with pytest.raises(InvalidManifest) as caught:
        Manifest.from_package_json({"name": "x"})
    error = caught.value
    assert (error.status, error.code) == (400, "invalid_manifest")
    assert error.to_body() == {
        "error": "invalid_manifest",
        "message": "invalid manifest: version: required",
        "detail": {"problems": ["version: required"]},
    }


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("", "must not be empty"),
        ("../x.js", "must not contain '..'"),
        ("dist/../../x.js", "must not contain '..'"),
        ("dist\\..\\x.js", "must not contain '..'"),
        ("/etc/passwd", "relative to the package root"),
        ("\\\\server\\x.js", "relative to the package root"),
        ("https://cdn.example.com/x.js", "relative to the package root"),
    ],
)
def test_bad_export_paths(path: str, says: str) -> None:
    [problem] = problems_of(with_block(exports={"main": path}))
    assert problem.startswith("eghact.exports.main: ") and says in problem


def test_good_export_paths() -> None:
    manifest = Manifest.from_package_json(with_block(exports={"main": "./dist/index.js", "style": "a..b.css"}))
    assert manifest.exports == {"main": "./dist/index.js", "style": "a..b.css"}


# ------------------------------------------------------------------ dependency specs


@pytest.mark.parametrize(
    "spec",
    [
        "^1.2.3", "~1.2", "1.x", "*", "", "1.2.3", ">=1.0.0 <2.0.0", "1.2.3 - 2.3.4", "1.0.0 || ^2.1",
        "latest", "next", "beta-2", "canary.0",
        "npm:lodash@^4.17.0", "npm:@acme/chart@1.x", "npm:lodash", "npm:lodash@latest", "npm:JSONStream@1",
    ],
)  # fmt: skip
def test_registry_specs(spec: str) -> None:
    assert check_dependency_spec(spec) is None
    assert Manifest.from_package_json(with_changes(dependencies={"dep": spec})).dependencies == {"dep": spec}


@pytest.mark.parametrize(
    "spec",
    [
        "git+https://github.com/acme/chart.git", "git://github.com/acme/chart.git", "git+ssh://git@github.com/a/b",
        "github:acme/chart", "gitlab:acme/chart", "bitbucket:acme/chart", "gist:11081aaa281",
        "acme/chart", "acme/chart#v1.0.0", "https://example.com/chart-1.0.0.tgz", "http://example.com/x",
        "file:../chart", "../chart", "./chart", "/opt/chart", "~/chart", "link:../chart",
        "workspace:*", "workspace:^1.0.0", "chart-1.0.0.tgz", "portal:../x", "C:\\chart",
    ],
)  # fmt: skip
def test_non_registry_specs(spec: str) -> None:
    problem = check_dependency_spec(spec)
    assert problem == f"{spec!r}: registry packages only: mirrors and edges cannot serve git/file/URL dependencies"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("not a range!!", "not a semver range, a dist-tag or an npm: alias"),
        (">>1", "not a semver range"),
        ("1.2.3.4", "not a semver range"),
        ("npm:Bad Name@1", "invalid alias target 'Bad Name'"),
        ("npm:lodash@!!", "invalid dependency spec '!!'"),
        ("npm:", "invalid alias target ''"),
    ],
)
def test_bad_specs(spec: str, says: str) -> None:
    problem = check_dependency_spec(spec)
    assert problem is not None and says in problem


@pytest.mark.parametrize("field", ["dependencies", "optionalDependencies", "peerDependencies"])
def test_every_dependency_map_is_checked(field: str) -> None:
    data = with_changes(**{field: {"x": "github:a/b"}})
    data["peerDependenciesMeta"] = {}
    # npm publishes git specs; a registry cannot serve them, so the publish says so and resolve refuses them.
    assert Manifest.from_package_json(data).warnings == (NpmWarning(
        f"{field}.x", "dependency_not_registry",
        "'github:a/b': registry packages only: mirrors and edges cannot serve git/file/URL dependencies"),)


# ----------------------------------------------------------------------------- YAML


def test_yaml_problems() -> None:
    with pytest.raises(InvalidManifest, match="not valid YAML"):
        Manifest.from_yaml("name: [unclosed")
    with pytest.raises(InvalidManifest, match="must be a mapping, not list"):
        Manifest.from_yaml("- a\n- b\n")
    with pytest.raises(InvalidManifest) as caught:
        Manifest.from_yaml("name: x\nversion: 1.0\n")
    assert caught.value.problems == [
        "version: input should be a valid string, got 1.0 (quote it: in YAML an unquoted 1.0 is a number)"
    ]


def test_file_problems(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidManifest, match=r"package\.json: not valid JSON"):
        Manifest.from_file(tmp_path / "package.json")
    (tmp_path / "manifest.toml").write_text("", encoding="utf-8")
    with pytest.raises(InvalidManifest, match="not a manifest file"):
        Manifest.from_file(tmp_path / "manifest.toml")
    with pytest.raises(InvalidManifest, match="must be a JSON object"):
        Manifest.from_package_json(["not", "a", "mapping"])  # type: ignore[arg-type]


# ------------------------------------------------------------------------ properties

_names = st.from_regex(r"(@[a-z][a-z0-9-]{0,6}/)?[a-z][a-z0-9.-]{0,10}", fullmatch=True)
_versions = st.tuples(*[st.integers(0, 30)] * 3).map(lambda v: ".".join(map(str, v)))
_caps = st.sampled_from(
    ["dom:read", "dom:write", "filesystem:read", "gpu:compute", "network:fetch", "network:fetch:*.api.com",
     "network:fetch:cdn.example.org", "api:storage", "api:editor.commands", "process:spawn"]
)  # fmt: skip


@st.composite
def _plugins(draw: st.DrawFn) -> dict[str, Any]:
    caps = draw(st.lists(_caps, unique=True, max_size=6))
    split = draw(st.integers(0, len(caps)))
    return {
        "name": draw(_names),
        "version": draw(_versions),
        "license": draw(st.sampled_from(["MIT", "ISC OR Apache-2.0", "GPL-2.0+ WITH Classpath-exception-2.0"])),
        "keywords": draw(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3)),
        "dependencies": draw(st.dictionaries(_names, st.sampled_from(["^1.0.0", "latest", "npm:x@2"]), max_size=3)),
        "eghact": {
            "version": draw(st.sampled_from(["^2.0.0", ">=2.1 <4", "2.x"])),
            "type": draw(st.sampled_from(["component", "transformer", "middleware", "theme"])),
            "capabilities": {"required": caps[:split], "optional": caps[split:]},
            "metadata": {"keywords": draw(st.lists(st.sampled_from(["b", "c", "d"]), max_size=3))},
        },
    }


@given(_plugins())
def test_generated_plugins_round_trip(data: dict[str, Any]) -> None:
    try:
        manifest = Manifest.from_package_json(data)
    except InvalidManifest as exc:
        # a generated name may still break npm's rules (a core module name, say): then that is the only problem
        assert all(problem.startswith(("name:", "dependencies")) for problem in exc.problems)
        return
    assert Manifest.from_package_json(json.loads(manifest.model_dump_json(by_alias=True))) == manifest
    keywords = manifest.keywords
    assert len(set(keywords)) == len(keywords)
    assert set(keywords) == set(data["keywords"]) | set(data["eghact"]["metadata"]["keywords"])
    assert [str(cap) for cap in manifest.capabilities_required + manifest.capabilities_optional] == (
        data["eghact"]["capabilities"]["required"] + data["eghact"]["capabilities"]["optional"]
    )
