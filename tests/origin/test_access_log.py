"""The origin's JSON access log counts the bytes each response really sent."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import aiohttp
import pytest

from eghact_origin.auth import hash_token, new_token
from eghact_origin.http.appkeys import REGISTRY

from ..conftest import start_origin
from ..support import manifest, publish_body


def _wire_size(response: aiohttp.ClientResponse, body: bytes) -> int:
    """Status line, header lines and body, as they crossed the wire."""
    head = len(f"HTTP/{response.version.major}.{response.version.minor} {response.status} {response.reason}\r\n")
    head += sum(len(name) + 2 + len(value) + 2 for name, value in response.raw_headers) + 2
    return head + len(body)


async def test_the_access_log_counts_what_each_response_sent(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    runner, url = await start_origin(tmp_path / "data", access_log=True)
    try:
        token = new_token()
        runner.app[REGISTRY].store.create_token_sync("t", hash_token(token), ["publish:*"], actor="test")
        caplog.set_level(logging.INFO, logger="eghact.access")
        sizes = {}
        async with aiohttp.ClientSession() as session:
            async with session.put(f"{url}/logged", json=publish_body(manifest("logged", "1.0.0")),
                                   headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status == 201
            for method, path in (("GET", "/logged"), ("GET", "/logged/-/logged-1.0.0.tgz"),
                                 ("HEAD", "/logged/-/logged-1.0.0.tgz"), ("GET", "/no-such-package")):
                async with session.request(method, url + path) as response:
                    body = await response.read()
                    sizes[method, path] = (_wire_size(response, body), len(body))

        def logged() -> dict[tuple[str, str], int]:
            lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "eghact.access"]
            return {(line["method"], line["path"]): line["bytes"] for line in lines}

        for _ in range(100):   # the line is written once the response is out: at most a moment later
            if set(sizes) <= set(logged()):
                break
            await asyncio.sleep(0.02)
        assert sizes[("GET", "/logged/-/logged-1.0.0.tgz")][1] > 100    # a real tarball, a real packument
        assert sizes[("GET", "/logged")][1] > 100
        assert sizes[("HEAD", "/logged/-/logged-1.0.0.tgz")][1] == 0   # headers only
        for key, (wire, _) in sizes.items():
            assert logged()[key] == wire, key
    finally:
        await runner.cleanup()
