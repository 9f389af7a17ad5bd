"""The network the real-uplink tests run: an origin with nothing published whose uplink is the
registry npm is configured with (read at run time, never written here), and an edge in front.
A registry that cannot be reached fails the test, loudly, rather than skipping it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..edge.support import EdgeProcess
from ..support import OriginProcess, cli
from .corpus import CorpusUnavailable, check_registry, registry_shown

__all__ = ["Network", "reaching", "real_registry", "uplinked_network"]


@dataclass(frozen=True)
class Network:
    origin: OriginProcess
    edge: EdgeProcess
    admin: str  # an admin token of the origin (its metrics may need one)


def real_registry(what: str) -> str:
    """npm's registry, after one read of it; the test fails when npm or the registry is missing."""
    if shutil.which("npm") is None:
        pytest.fail(f"{what}: npm is not on PATH; this test needs node and npm", pytrace=False)
    registry = registry_shown()
    with reaching(what, registry):
        check_registry()
    return registry


@contextmanager
def reaching(what: str, registry: str) -> Iterator[None]:
    """npm's failures to reach ``registry`` inside the block fail the test with a loud message."""
    try:
        yield
    except (CorpusUnavailable, AssertionError) as exc:
        pytest.fail(f"{what}: npm could not reach its registry {registry!r}. This test fails rather than skips "
                    f"so that a broken network is seen.\n{exc}", pytrace=False)


@contextmanager
def uplinked_network(tmp_path: Path, registry: str) -> Iterator[Network]:
    """A fresh origin with ``--uplink registry`` and an edge in front; both stopped cleanly after."""
    data = tmp_path / "origin"
    admin = cli("token", "create", "--data", str(data), "--name", "admin", "--scope", "admin").stdout.split()[-1]
    origin = OriginProcess(data, ("--uplink", registry)).start(timeout=30)
    try:
        edge = EdgeProcess(origin.url, tmp_path / "edge").start()
        try:
            yield Network(origin, edge, admin)
        finally:
            assert edge.stop() == 0
    finally:
        assert origin.stop() == 0
