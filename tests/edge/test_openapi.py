"""The edge's OpenAPI document against the edge: the paths it answers itself are exactly
the document's own (edge.yaml), each is answered by the edge and not passed upstream, and the
rest of the document is the origin's (read through or passed on). The fuzz pass is in
tests/test_openapi_fuzz.py."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from eghact_common import openapi
from eghact_edge.node import EdgeNode
from eghact_edge.server import EdgeHandler
from eghact_edge.settings import EdgeSettings

from .conftest import Origin, get
from .support import EdgeProcess


async def test_the_edge_answers_exactly_its_documented_paths_itself(tmp_path: Path) -> None:
    node = EdgeNode(EdgeSettings(upstream="http://127.0.0.1:9", data_dir=tmp_path / "edge", region="t",
                                 disk_bytes=0))
    try:
        assert set(EdgeHandler(node).local) == openapi.edge_paths()
    finally:
        await node.upstream.close()


def test_the_edge_document_is_the_origin_document_with_the_edge_paths() -> None:
    origin, edge = openapi.origin_document(), openapi.edge_document()
    assert set(edge["paths"]) == set(origin["paths"]) | openapi.edge_paths()
    # An operation taken from the origin keeps every status the origin documents.
    for path in set(origin["paths"]) - openapi.edge_paths():
        for method, operation in origin["paths"][path].items():
            if isinstance(operation, dict) and "responses" in operation:
                assert set(operation["responses"]) <= set(edge["paths"][path][method]["responses"]), (method, path)


async def test_the_edge_serves_its_own_endpoints_without_asking_upstream(
        origin: Origin, edges: list[EdgeProcess], tmp_path: Path, http: aiohttp.ClientSession) -> None:
    edge = await EdgeProcess(origin.url, tmp_path / "edge", args=("--no-warm",)).astart()
    edges.append(edge)
    status, headers, body = await get(http, f"{edge.url}{openapi.PATH}")
    assert status == 200 and "X-Cache" not in headers
    assert json.loads(body) == openapi.edge_document()
    status, headers, body = await get(http, f"{edge.url}/-/health")
    assert status == 200 and "X-Cache" not in headers and json.loads(body)["role"] == "edge"
    status, headers, body = await get(http, f"{edge.url}/-/metrics")
    assert status == 200 and "X-Cache" not in headers and b"eghact_edge_" in body
    async with http.post(f"{edge.url}/-/v1/prefetch", json=["left-pad"]) as response:
        assert response.status == 202 and "X-Cache" not in response.headers
        assert set(await response.json()) == {"queued", "ignored"}
    # What is not the edge's own goes to the origin, marked as passed.
    status, headers, _ = await get(http, f"{edge.url}/-/v1/feed")
    assert status == 200 and headers["X-Cache"] == "PASS"
