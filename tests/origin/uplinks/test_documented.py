"""The uplinks' answers are the ones origin.yaml documents: the fuzz pass runs an origin without
uplinks, so the statuses and codes only an uplinked origin gives are checked here, on real
answers of a real one (a second origin of ours as the upstream, through the counting proxy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eghact_common import openapi

from ...support import manifest, publish_body
from .support import admin_token, doc, put, uplinked

DOCUMENT = openapi.origin_document()


def documented(path: str, method: str, status: int, code: str | None = None) -> dict[str, Any]:
    """The documented response of ``method path`` for ``status`` (its description names ``code``)."""
    responses = DOCUMENT["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
    response = responses[str(status)]
    if "$ref" in response:
        response = DOCUMENT["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    if code is not None:
        assert code in response["description"], f"{method.upper()} {path} {status} does not name {code}"
    return response


def conforms(body: dict[str, Any], schema: dict[str, Any]) -> None:
    """The document's object schema as far as this test needs: required keys, enums, nested objects."""
    if "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for key in schema.get("required", []):
        assert key in body, f"{key} is required"
    for key, value in body.items():
        sub = schema.get("properties", {}).get(key)
        if sub is None:
            continue
        if "enum" in sub:
            assert value in sub["enum"], f"{key}: {value!r} not in {sub['enum']}"
        if "const" in sub:
            assert value == sub["const"], key
        if isinstance(value, dict) and ("properties" in sub or "$ref" in sub):
            conforms(value, sub)


async def test_the_uplink_answers_are_documented(tmp_path: Path) -> None:
    (tmp_path / "subject").mkdir()
    admin = admin_token(tmp_path / "subject")
    async with uplinked(tmp_path, "--uplink-min-age", "1h", "--uplink-min-age-exempt", "old-*") as (
            upstream, proxy, subject):
        await upstream.publish("old-lib", "1.0.0")
        await upstream.publish("young", "1.0.0")
        health_schema = documented("/-/health", "get", 200)["content"]["application/json"]["schema"]

        status, body = await doc(f"{subject.url}/old-lib")
        assert status == 200
        status, health = await doc(f"{subject.url}/-/health")
        conforms(health, health_schema)
        assert set(health["uplinks"]["refresh"]) == {"cycles", "behind_seconds", "last_cycle_at"}

        status, body = await doc(f"{subject.url}/young")
        assert (status, body["error"]) == (404, "versions_held_back")
        documented("/{name}", "get", 404, "versions_held_back")
        status, body = await doc(f"{subject.url}/young/-/young-1.0.0.tgz")
        assert (status, body["error"]) == (404, "versions_held_back")
        documented("/{name}/-/{file}", "get", 404, "versions_held_back")

        status, body = await put(subject.url, "old-lib", publish_body(manifest("old-lib", "2.0.0")), admin)
        assert (status, body["error"]) == (409, "uplinked_package")
        documented("/{name}", "put", 409, "uplinked_package")
        takeover = [p for p in DOCUMENT["paths"]["/{name}"]["put"]["parameters"] if p.get("name") == "takeover"]
        assert takeover and takeover[0]["in"] == "query"
        status, _ = await put(subject.url, "old-lib", publish_body(manifest("old-lib", "2.0.0")), admin,
                              "?takeover=1")
        assert status == 201

        proxy.mode = "503"
        status, body = await doc(f"{subject.url}/never-pulled")
        assert (status, body["error"]) == (502, "uplink_unavailable")
        documented("/{name}", "get", 502, "uplink_unavailable")
        for code in ("uplink_integrity_mismatch", "uplink_bad_document"):
            documented("/{name}/-/{file}", "get", 502, code)
        status, health = await doc(f"{subject.url}/-/health")
        assert health["status"] == "degraded"
        conforms(health, health_schema)
