"""Publishing what npm publishes: the shapes the real corpus met (tests/realworld) over HTTP,
each accepted with its warnings in the response and served back as it was published."""

from __future__ import annotations

import json

from ..conftest import LiveOrigin
from ..support import escaped, manifest, publish_body, tarball_for


async def publish(origin: LiveOrigin, doc: dict[str, object], tarball: bytes | None = None) -> tuple[int, dict]:
    token = origin.token("publish:*")
    async with origin.session.put(f"{origin.url}/{escaped(str(doc['name']))}", json=publish_body(doc, tarball),
                                  headers=origin.auth(token)) as response:
        return response.status, await response.json()


async def test_what_npm_accepts_is_published_with_warnings(origin: LiveOrigin) -> None:
    doc = manifest("events", "3.3.0", main=False, license={"type": "MIT"},
                   peerDependenciesMeta={"supports-color": {"optional": True}},
                   dependencies={"left-pad": "github:stevemao/left-pad"})
    status, answer = await publish(origin, doc)
    assert status == 201 and answer["ok"] is True
    assert [(w["field"], w["code"]) for w in answer["warnings"]] == [
        ("name", "name_legacy"), ("license", "license_invalid"), ("dependencies.left-pad", "dependency_not_registry"),
        ("peerDependenciesMeta.supports-color", "peer_meta_not_peer"), ("main", "main_not_string")]
    async with origin.session.get(f"{origin.url}/events/3.3.0") as response:
        served = json.loads(await response.read())
    # Stored as published, as the npm registry stores it: the warnings change nothing.
    assert served["main"] is False and served["license"] == {"type": "MIT"}
    assert served["peerDependenciesMeta"] == {"supports-color": {"optional": True}}


async def test_a_legacy_uppercase_name_is_accepted(origin: LiveOrigin) -> None:
    status, answer = await publish(origin, manifest("JSONStream", "1.3.5"))
    assert status == 201 and [w["code"] for w in answer["warnings"]] == ["name_legacy"]
    async with origin.session.get(f"{origin.url}/JSONStream") as response:
        assert response.status == 200 and (await response.json())["dist-tags"] == {"latest": "1.3.5"}


async def test_a_clean_publish_has_no_warnings_field(origin: LiveOrigin) -> None:
    status, answer = await publish(origin, manifest("tidy-lib", "1.0.0"))
    assert status == 201 and "warnings" not in answer


async def test_an_uncleaned_version_in_the_tarball_is_the_cleaned_one(origin: LiveOrigin) -> None:
    # libnpmpublish sends semver.clean(version); the tarball's package.json keeps what the author wrote.
    doc = manifest("v-prefixed", "1.0.0")
    status, _ = await publish(origin, doc, tarball_for({**doc, "version": "v1.0.0"}))
    assert status == 201
    status, answer = await publish(origin, manifest("v-other", "1.0.0"), tarball_for(manifest("v-other", "1.0.1")))
    assert status == 400 and answer["error"] == "tarball_manifest_mismatch"


async def test_what_npm_refuses_is_still_refused(origin: LiveOrigin) -> None:
    status, answer = await publish(origin, manifest("node_modules", "1.0.0"))
    assert (status, answer["error"]) == (400, "invalid_name")
    status, answer = await publish(origin, {**manifest("plugin-x", "1.0.0", license="not spdx"),
                                            "eghact": {"version": "^2", "type": "theme"}})
    assert (status, answer["error"]) == (400, "invalid_manifest")
    assert answer["detail"]["problems"][0].startswith("license: ")
