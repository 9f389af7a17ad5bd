"""The origin's OpenAPI document against its router: every route the app registers is
documented and every documented operation reaches a route (the fuzz pass, in
tests/test_openapi_fuzz.py, checks what those routes answer)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from aiohttp.test_utils import make_mocked_request

from eghact_common import openapi
from eghact_origin.app import create_app
from eghact_origin.http.appkeys import REGISTRY
from eghact_origin.settings import OriginSettings

from ..conftest import LiveOrigin

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# A value of each path parameter that the route's own pattern accepts.
SAMPLES = {"name": "left-pad", "scope": "acme", "version": "1.0.0", "file": "left-pad-1.0.0.tgz", "tag": "beta",
           "rev": "3-abc", "hash": "0" * 64}


def documented(document: dict) -> list[tuple[str, str, str]]:
    """(METHOD, path template, a concrete path) of every operation."""
    found = []
    for template, item in document["paths"].items():
        concrete = template
        for name, value in SAMPLES.items():
            concrete = concrete.replace("{" + name + "}", quote(value, safe=""))
        assert "{" not in concrete, f"no sample for a parameter of {template}"
        found += [(method.upper(), template, concrete) for method in METHODS if method in item]
    return found


async def test_every_route_is_documented_and_every_operation_is_routed(tmp_path: Path) -> None:
    app = create_app(OriginSettings(data_dir=tmp_path / "data", port=0, access_log=False))
    try:
        reached: set[tuple[str, str]] = set()
        for method, template, path in documented(openapi.origin_document()):
            match = await app.router.resolve(make_mocked_request(method, path, app=app))
            assert match.http_exception is None, f"{method} {template} reaches no route ({match.http_exception})"
            reached.add((method, match.route.resource.canonical))
            if match.route.method == "*":
                reached.add(("*", match.route.resource.canonical))

        registered = {(route.method, route.resource.canonical) for route in app.router.routes()
                      if route.resource is not None}
        # add_get registers HEAD beside GET; the document's GET describes both.
        registered -= {("HEAD", canonical) for method, canonical in registered if method == "GET"}
        assert registered - reached == set(), "routes the document does not describe"
    finally:
        app[REGISTRY].store.close()


async def test_the_origin_serves_its_document(origin: LiveOrigin) -> None:
    async with origin.session.get(f"{origin.url}{openapi.PATH}") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == openapi.origin_document()


def test_every_operation_lists_its_statuses_and_errors_are_the_error_body() -> None:
    document = openapi.origin_document()
    responses = document["components"]["responses"]
    ids = []
    for template, item in document["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            ids.append(operation["operationId"])
            # "default" would make every status conform: the fuzz pass could not see an undocumented one.
            assert "default" not in operation["responses"], (method, template)
            assert "401" in operation["responses"], (method, template)  # a bad token, on any path
            for status, response in operation["responses"].items():
                response = responses[response["$ref"].rsplit("/", 1)[-1]] if "$ref" in response else response
                if status.startswith("4"):
                    assert response["content"] == {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}, (method, template)
    assert len(ids) == len(set(ids)), "operationId must be unique"
