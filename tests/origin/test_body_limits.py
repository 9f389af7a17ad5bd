"""Every origin endpoint that takes a body reads it under its own limit (issue 11: the app-wide
limit is the publish one, ~68 MB, which any anonymous client could make the origin hold and
parse on its event loop): a declared size over the limit is answered from the headers alone,
and a chunked body is cut off past it."""

from __future__ import annotations

import asyncio
import gzip

import pytest

from ..conftest import LiveOrigin

DECLARED = 20 * 1024 * 1024  # under the app-wide limit, over every endpoint's own


async def first_line_after_headers(origin: LiveOrigin, method: str, path: str, headers: str = "") -> bytes:
    host, port = origin.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
                     f"Content-Length: {DECLARED}\r\n\r\n{{\"a\": ".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 5)  # old code waited for all 20 MB
    finally:
        writer.close()


@pytest.mark.parametrize(("method", "path", "status"), [
    ("POST", "/-/v1/resolve", 413),
    ("POST", "/-/v1/batch", 400),  # documented: 400 batch_too_large
    ("POST", "/-/npm/v1/security/advisories/bulk", 413),
    ("PUT", "/-/package/left-pad/dist-tags/beta", 413),
])
async def test_a_declared_oversized_body_is_refused_before_it_is_read(origin: LiveOrigin, method: str, path: str,
                                                                      status: int) -> None:
    token = origin.token("publish:*")
    line = await first_line_after_headers(origin, method, path, f"Authorization: Bearer {token}\r\n")
    assert line.startswith(b"HTTP/1.1 %d " % status), line


async def test_an_anonymous_dist_tag_move_is_refused_before_its_body_is_read(origin: LiveOrigin) -> None:
    line = await first_line_after_headers(origin, "PUT", "/-/package/left-pad/dist-tags/beta")
    assert line.startswith(b"HTTP/1.1 401 "), line


async def test_a_gzipped_audit_body_is_limited_by_its_inflated_size(origin: LiveOrigin) -> None:
    # 9.6 MB of JSON inflates from a few KB: the limit counts what is parsed, not what was sent.
    body = gzip.compress(b'{"left-pad": [' + b'"1.0.0",' * 1_200_000 + b'"1.0.0"]}')
    assert len(body) < 1 << 20
    async with origin.session.post(f"{origin.url}/-/npm/v1/security/advisories/bulk", data=body,
                                   headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}) as r:
        answer = await r.json()
        assert r.status == 413, answer
    assert answer["error"] == "payload_too_large" and str(8 << 20) in answer["message"]
