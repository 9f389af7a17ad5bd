"""Fixtures of the edge tests: one real origin process per module (with tokens), and a
factory of real edge processes that are all stopped at the end of each test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from ..support import OriginProcess, cli, manifest, publish_body
from .support import EdgeProcess


@dataclass
class Origin:
    process: OriginProcess
    admin: str
    edge_token: str
    reader: str

    @property
    def url(self) -> str:
        return self.process.url


def make_origin(root: Path) -> Origin:
    data = root / "origin"
    tokens = {}
    for name, scope in (("admin", "admin"), ("edge", "edge"), ("reader", "read:@acme/*")):
        tokens[name] = cli("token", "create", "--data", str(data), "--name", name, "--scope",
                           scope).stdout.splitlines()[-1]
    process = OriginProcess(data, ("--private-scope", "@acme")).start()
    return Origin(process, tokens["admin"], tokens["edge"], tokens["reader"])


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origin]:
    made = make_origin(tmp_path_factory.mktemp("edge-origin"))
    try:
        yield made
    finally:
        if made.process.proc and made.process.proc.poll() is None:
            made.process.stop()


@pytest.fixture
async def edges(tmp_path: Path) -> AsyncIterator[list[EdgeProcess]]:
    started: list[EdgeProcess] = []
    yield started
    for edge in reversed(started):  # children before their parents
        if edge.proc is not None:   # one a test killed, too: its pipes are closed here
            await edge.astop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def publish(session: aiohttp.ClientSession, base: str, token: str, name: str, version: str,
                  **extra: Any) -> int:
    body = publish_body(manifest(name, version, **extra))
    async with session.put(f"{base}/{name.replace('/', '%2f')}", data=json.dumps(body),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as r:
        await r.read()
        return r.status


async def get(session: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, CIMultiDict[str], bytes]:
    async with session.get(url, headers=headers) as r:
        return r.status, CIMultiDict(r.headers), await r.read()
