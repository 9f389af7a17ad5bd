"""Issue 11 at the origin: a body is read to its end however it arrives (an 800 KB
``/-/v1/stats`` body split across packets used to be cut at the first), and client JSON
nested a thousand deep is a 400 at every endpoint that parses JSON, never a 500."""

from __future__ import annotations

import asyncio
import json

from eghact_origin.tarball import build_tarball

from ..conftest import LiveOrigin
from ..support import escaped, manifest, publish_body


async def raw_post(url: str, head: str, body: bytes, *, pieces: int = 1, pause: float = 0.0) -> tuple[int, bytes]:
    """One request over a raw socket, its body in ``pieces`` writes ``pause`` seconds apart."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"{head}\r\nHost: origin\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        size = -(-len(body) // pieces)
        for start in range(0, len(body), size):
            writer.write(body[start:start + size])
            await writer.drain()
            await asyncio.sleep(pause)
        raw = await asyncio.wait_for(reader.read(-1), 20)
    finally:
        writer.close()
    head_bytes, _, payload = raw.partition(b"\r\n\r\n")
    return int(head_bytes.split(b" ")[1]), payload


async def test_a_stats_body_split_across_writes_is_read_whole(origin: LiveOrigin) -> None:
    edge = origin.token("edge", name="edge")
    # Hit counts are taken only for an edge id the same token registered (issue 11, item 4).
    registration = json.dumps({"id": "eu-1", "region": "eu", "url": "http://127.0.0.1:1"}).encode()
    status, answer = await raw_post(origin.url, f"POST /-/v1/edges HTTP/1.1\r\nAuthorization: Bearer {edge}",
                                    registration)
    assert status == 200, answer[:300]
    hits = {f"/package-number-{i:06d}#a": 1 + i % 7 for i in range(27_000)}
    body = json.dumps({"edge": "eu-1", "hits": hits}).encode()
    assert len(body) > 800_000
    status, answer = await raw_post(origin.url, f"POST /-/v1/stats HTTP/1.1\r\nAuthorization: Bearer {edge}",
                                    body, pieces=50, pause=0.005)
    assert status == 202, answer[:300]
    counted = json.loads(answer)
    # Every key was read: none names a package the origin holds, so each is counted as ignored.
    assert counted["keys"] + counted["ignored"] == 27_000, counted


async def test_deep_json_is_a_400_everywhere(origin: LiveOrigin) -> None:
    admin = origin.token("admin", name="admin")
    edge = origin.token("edge", name="edge")
    deep = b"[" * 1000 + b"]" * 1000
    just_too_deep = b"[" * 65 + b"]" * 65
    cases = [  # each body under its endpoint's size limit (a resolve request's is 256 KiB)
        ("POST /-/v1/resolve", "", deep),
        ("POST /-/v1/batch", "", deep),
        ("POST /-/npm/v1/security/advisories/bulk", "", b'{"a": ' + deep + b"}"),
        (f"PUT /{escaped('@acme/deep')}", admin, b'{"name": {"x": ' + deep + b"}}"),
        ("PUT /-/package/deep/dist-tags/next", admin, deep),
        ("POST /-/v1/stats", edge, deep),
        ("POST /-/v1/edges", edge, b'{"id": ' + just_too_deep + b"}"),
        ("POST /-/v1/resolve", "", b'{"roots": ' + b"{\"a\": " * 30_000 + b"1" + b"}" * 30_000 + b"}"),
    ]
    for request, token, body in cases:
        head = f"{request} HTTP/1.1\r\nContent-Type: application/json" + \
            (f"\r\nAuthorization: Bearer {token}" if token else "")
        status, answer = await raw_post(origin.url, head, body)
        error = json.loads(answer)
        assert (status, error["error"]) == (400, "json_too_deep"), (request, status, answer[:200])
        assert error["detail"]["max_depth"] == 64


async def test_a_deep_package_json_in_a_tarball_is_refused(origin: LiveOrigin) -> None:
    admin = origin.token("admin", name="admin")
    doc = manifest("deep-inside", "1.0.0")
    inner = json.dumps(doc)[:-1] + ', "x": ' + "[" * 1000 + "]" * 1000 + "}"
    body = publish_body(doc, build_tarball({"package.json": inner.encode(), "index.js": b"1;\n"}))
    async with origin.session.put(f"{origin.url}/deep-inside", json=body,
                                  headers=LiveOrigin.auth(admin)) as response:
        error = await response.json()
        assert response.status == 400 and error["error"] == "tarball_bad_manifest", error
        assert "deeper than 64" in error["message"]
