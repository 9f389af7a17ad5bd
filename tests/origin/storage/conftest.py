"""The backends the storage contract suite runs against: one fixture each.

Adding a backend (PostgreSQL, issue 17) is one entry in ``BACKENDS``: a function that opens a
fresh, empty store (metadata and blobs) for one test and closes it after. Every test in this
package then runs against it too, through the protocols only (``MetadataStore``,
``BlobStore``, ``MirrorWriter``, ``PackageSnapshot``), never through SQL.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from eghact_origin import packument
from eghact_origin.storage import BlobStore, FileBlobStore, MetadataStore, NewVersion, SqliteMetadataStore


class Clock:
    """An injected clock: time moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Backend:
    name: str
    metadata: MetadataStore
    blobs: BlobStore
    clock: Clock


Opener = Callable[[Path, Clock], AbstractContextManager[tuple[MetadataStore, BlobStore]]]


@contextmanager
def _sqlite(root: Path, clock: Clock) -> Iterator[tuple[MetadataStore, BlobStore]]:
    root.mkdir(parents=True, exist_ok=True)
    store = SqliteMetadataStore(root, clock=clock)
    try:
        yield store, FileBlobStore(root / "blobs")
    finally:
        store.close()


BACKENDS: dict[str, Opener] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    clock = Clock()
    with BACKENDS[request.param](tmp_path, clock) as (metadata, blobs):
        yield Backend(request.param, metadata, blobs, clock)


def new_version(name: str, version: str, *, tags: tuple[str, ...] = ("latest",), description: str = "",
                keywords: tuple[str, ...] = (), deprecated: str | None = None,
                doc: dict[str, Any] | None = None) -> NewVersion:
    tarball = f"{name}@{version}".encode()
    digest = hashlib.sha512(tarball).hexdigest()
    base = {"name": name, "version": version, "description": description, "keywords": list(keywords)}
    return NewVersion(
        name=name, version=version, doc={**base, **(doc or {})},
        filename=f"{name.rsplit('/', 1)[-1]}-{version}.tgz", blob_digest=digest,
        integrity="sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode(),
        shasum=hashlib.sha1(tarball).hexdigest(),
        size=len(tarball), unpacked_size=len(tarball) * 2, file_count=1, summary={}, tags=tags,
        deprecated=deprecated,
    )


def parse(body: bytes) -> Any:
    """A stored document as a client reads it (the base mark filled in)."""
    return json.loads(packument.materialize(body, "http://127.0.0.1:1"))


@pytest.fixture
def second(backend: Backend, tmp_path: Path) -> Iterator[Backend]:
    """Another, empty store of the same backend (a mirror of the first, say)."""
    clock = Clock()
    with BACKENDS[backend.name](tmp_path / "second", clock) as (metadata, blobs):
        yield Backend(backend.name, metadata, blobs, clock)
