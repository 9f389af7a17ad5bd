"""Fixtures of the client tests: one real origin process per module with a small universe
published over HTTP, real edge processes that register with it (so clients discover them at
``/-/v1/edges``), and projects in temporary folders with a cache of their own."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eghact_client.reporter import Reporter

# the edge tests' fixture of edge processes, each stopped (or its pipes closed, if killed) after the test
from ..edge.conftest import Origin, edges, make_origin  # noqa: F401
from ..edge.support import EdgeProcess
from ..support import escaped, manifest, publish_body, tarball_for

PLUGIN = {"eghact": {"version": "^2.0.0", "type": "component"}}
# Ten plugins over two libraries, one of which needs another: enough tarballs that an edge can
# die with some fetched and some not.
UNIVERSE: list[tuple[str, str, dict[str, Any]]] = [
    ("cl-util", "1.0.0", {}),
    ("cl-util", "1.1.0", {}),
    ("cl-fmt", "1.0.0", {"dependencies": {"cl-util": "^1.0.0"}}),
    *((f"cl-plugin-{i}", "1.0.0", {**PLUGIN, "dependencies": {"cl-fmt": "^1.0.0"}}) for i in range(10)),
    ("cl-extra", "1.0.0", PLUGIN),
]
ROOTS = {f"cl-plugin-{i}": "^1.0.0" for i in range(10)}


def publish_sync(origin: Origin, name: str, version: str, **extra: Any) -> None:
    doc = manifest(name, version, **extra)
    # a file of its own in each package, so two packages' folders never look alike
    body = publish_body(doc, tarball_for(doc, {"lib/own.js": f"// {name}@{version}\n".encode()}))
    request = urllib.request.Request(f"{origin.url}/{escaped(name)}", data=json.dumps(body).encode(), method="PUT",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {origin.admin}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origin]:
    made = make_origin(tmp_path_factory.mktemp("client-origin"))
    try:
        for name, version, extra in UNIVERSE:
            publish_sync(made, name, version, **extra)
        yield made
    finally:
        if made.process.proc and made.process.proc.poll() is None:
            made.process.stop()


async def start_edges(origin: Origin, root: Path, started: list[EdgeProcess], count: int = 2) -> list[EdgeProcess]:
    """``count`` edges in front of ``origin``, registered with it (listed alive at /-/v1/edges)."""
    fresh = []
    for i in range(count):
        edge = await EdgeProcess(origin.url, root / f"edge-{i}", region=f"region-{i}",
                                 args=("--token", origin.edge_token, "--no-warm")).astart()
        started.append(edge)
        fresh.append(edge)
    deadline = time.monotonic() + 20
    wanted = {edge.url for edge in fresh}
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{origin.url}/-/v1/edges", timeout=5) as response:
            listed = {e["url"] for e in json.loads(response.read())["edges"] if e["alive"]}
        if wanted <= listed:
            return fresh
        time.sleep(0.2)
    raise AssertionError(f"the edges did not register: {wanted - listed}")


def project(root: Path, primary: str, *, dependencies: dict[str, str] | None = None, **registry: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "eghact.json").write_text(json.dumps({"dependencies": dependencies if dependencies is not None
                                                  else ROOTS, "registry": {"primary": primary, **registry}}))
    return root


class Recorder(Reporter):
    """Records where each package came from and every failover; ``on_fetched`` runs on each."""

    def __init__(self) -> None:
        self.order: list[Any] = []
        self.fetched_from: dict[str, str | None] = {}
        self.failovers: list[tuple[str, str]] = []
        self.on_fetched: Any = None

    def sources(self, order: list[Any]) -> None:
        self.order = list(order)

    def failover(self, url: str, reason: str) -> None:
        self.failovers.append((url, reason))

    def fetched(self, key: str, source: str | None) -> None:
        self.fetched_from[key] = source
        if self.on_fetched is not None:
            self.on_fetched(key, source)
