"""npm's leniency for npm fields: each rule of npm_leniency, as npm's sources state it, and
the line that stays (what npm refuses, we refuse; the eghact block stays strict)."""

from __future__ import annotations

from typing import Any

import pytest

from eghact_common.errors import InvalidManifest
from eghact_common.manifest import Manifest
from eghact_common.names import name_warnings
from eghact_common.npm_leniency import js_truthy, lenient_view

PLUGIN_BLOCK = {"version": "^2.0.0", "type": "theme"}


def codes(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(w.field, w.code) for w in Manifest.from_package_json(doc).warnings]


def lib(**fields: Any) -> dict[str, Any]:
    return {"name": "some-lib", "version": "1.0.0", **fields}


# ----------------------------------------------------- what the real corpus refused before


def test_main_false_is_read_as_no_main() -> None:
    # dunder-proto and math-intrinsics publish "main": false
    manifest = Manifest.from_package_json(lib(main=False))
    assert manifest.main is None and manifest.exports == {}
    assert codes(lib(main=False)) == [("main", "main_not_string")]


def test_peer_meta_without_the_peer_declares_nothing() -> None:
    # debug, follow-redirects and webpack mark packages they load when present; arborist only
    # reads peerDependenciesMeta for names in peerDependencies
    doc = lib(peerDependenciesMeta={"supports-color": {"optional": True}})
    manifest = Manifest.from_package_json(doc)
    assert manifest.peer_optional == frozenset() and manifest.peer_dependencies == {}
    assert codes(doc) == [("peerDependenciesMeta.supports-color", "peer_meta_not_peer")]


@pytest.mark.parametrize("name", ["events", "punycode", "string_decoder", "JSONStream", "a" * 215, "it's"])
def test_names_valid_for_old_packages_are_accepted_with_a_warning(name: str) -> None:
    manifest = Manifest.from_package_json({"name": name, "version": "1.0.0"})
    assert manifest.name == name
    assert manifest.warnings and {w.code for w in manifest.warnings} == {"name_legacy"}
    assert [w.message.split(":")[0] for w in manifest.warnings] == name_warnings(name)


def test_a_licence_object_is_a_warning_for_a_library() -> None:
    # ansi-wrap 0.1.0: {"type": "MIT", "url": ...}, as licences were written before SPDX
    doc = lib(license={"type": "MIT", "url": "https://opensource.org/licenses/MIT"})
    manifest = Manifest.from_package_json(doc)
    assert manifest.license is None and manifest.to_summary()["license"] is None
    assert codes(doc) == [("license", "license_invalid")]
    assert codes(lib(license="Apache 2")) == [("license", "license_invalid")]


# ------------------------------------------------------------------ normalize-package-data


def test_npm_fixes_are_applied_to_the_view_with_warnings() -> None:
    doc = lib(description=["not", "a", "string"], keywords={"a": 1}, author=["Ann"])
    manifest = Manifest.from_package_json(doc)
    assert (manifest.description, manifest.npm_keywords, manifest.author) == (None, (), None)
    assert codes(doc) == [("description", "description_not_string"), ("author", "author_invalid"),
                          ("keywords", "keywords_not_array")]


def test_array_dependencies_are_objectified_as_npm_does() -> None:
    doc = lib(dependencies=["left-pad@1.3.0", "lodash >=4", "bare"], optionalDependencies="fsevents@2")
    manifest = Manifest.from_package_json(doc)
    assert manifest.dependencies == {"left-pad": "1.3.0", "lodash": ">=4", "bare": ""}
    assert manifest.optional_dependencies == {"fsevents": "2"}
    assert codes(doc) == [("dependencies", "dependencies_array"), ("optionalDependencies", "dependencies_array")]


def test_dependency_specs_a_registry_cannot_serve_are_warnings() -> None:
    doc = lib(dependencies={"a": "git+https://example.com/a.git", "b": "file:../b", "c": "^1", "d": "!!"},
              peerDependencies={"e": 2})
    assert Manifest.from_package_json(doc).dependencies == doc["dependencies"]
    assert codes(doc) == [("dependencies.a", "dependency_not_registry"),
                          ("dependencies.b", "dependency_not_registry"),
                          ("dependencies.d", "dependency_spec_invalid"),
                          ("peerDependencies.e", "dependency_not_string")]


def test_peer_meta_optional_is_read_truthy_as_arborist_does() -> None:
    doc = lib(peerDependencies={"a": "1", "b": "1", "c": "1"},
              peerDependenciesMeta={"a": {"optional": "yes"}, "b": {"optional": 0}, "c": "optional"})
    assert Manifest.from_package_json(doc).peer_optional == frozenset({"a"})
    assert codes(doc) == [("peerDependenciesMeta.a", "peer_meta_invalid"),
                          ("peerDependenciesMeta.b", "peer_meta_invalid"),
                          ("peerDependenciesMeta.c", "peer_meta_invalid")]
    assert [js_truthy(v) for v in ([], {}, "", 0, "0", None)] == [True, True, False, False, True, False]


def test_versions_are_cleaned_as_libnpmpublish_cleans_them() -> None:
    assert Manifest.from_package_json(lib(version=" =v1.2.3 ")).version == "1.2.3"
    assert Manifest.from_package_json(lib(version="1.2.3+build.7")).version == "1.2.3"


def test_the_stored_document_is_not_changed() -> None:
    doc = lib(main=False, dependencies=["x@1"])
    view, warnings = lenient_view(doc)
    assert doc == lib(main=False, dependencies=["x@1"]) and "main" not in view and len(warnings) == 2


def test_a_clean_manifest_has_no_warnings() -> None:
    assert Manifest.from_package_json(lib(description="d", license="MIT", keywords=["k"], main="index.js",
                                          author="Ann <ann@example.com>",
                                          peerDependencies={"p": "^1"},
                                          peerDependenciesMeta={"p": {"optional": True}})).warnings == ()


# ----------------------------------------------------------------- what stays refused


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        (lib(name="has space"), "name: invalid package name 'has space': name can only contain URL-friendly"),
        (lib(name=".hidden"), "name: invalid package name '.hidden': name cannot start with a period"),
        (lib(name="node_modules"), "name: invalid package name 'node_modules'"),
        (lib(version="1.0"), "version: invalid version '1.0'"),
        (lib(version="latest"), "version: invalid version 'latest'"),
    ],
)
def test_what_npm_refuses_stays_refused(doc: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidManifest) as caught:
        Manifest.from_package_json(doc)
    assert caught.value.problems[0].startswith(problem)


def test_the_eghact_block_and_a_plugins_licence_stay_strict() -> None:
    doc = {"name": "x-theme", "version": "1.0.0", "license": {"type": "MIT"}, "main": False,
           "eghact": {**PLUGIN_BLOCK, "capabilites": {}}}
    with pytest.raises(InvalidManifest) as caught:
        Manifest.from_package_json(doc)
    assert [p.split(":")[0] for p in caught.value.problems] == ["license", "eghact.capabilites"]
