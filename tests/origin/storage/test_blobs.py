"""BlobStore contract: content-addressed, idempotent, whole or absent, safe under concurrency."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from .conftest import Backend


def test_put_get_exists_delete(backend: Backend) -> None:
    blobs = backend.blobs
    data = b"tarball bytes" * 100
    digest = blobs.put(data)
    assert digest == hashlib.sha512(data).hexdigest()
    assert blobs.put(data) == digest and blobs.exists(digest)
    assert blobs.get(digest) == data and blobs.get(digest, size=len(data)) == data
    assert blobs.path_for(digest).read_bytes() == data
    with pytest.raises(OSError):
        blobs.get(digest, size=len(data) - 1)  # what the metadata says must be what is stored
    blobs.delete(digest)
    blobs.delete(digest)  # idempotent
    assert not blobs.exists(digest)
    with pytest.raises(FileNotFoundError):
        blobs.get(digest)
    with pytest.raises(ValueError):
        blobs.get("../../etc/passwd")


def test_concurrent_puts_leave_whole_blobs_and_no_temp_files(backend: Backend) -> None:
    blobs = backend.blobs
    payloads = [bytes([i]) * (64 * 1024 + i) for i in range(8)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def writer(seed: int) -> None:
        try:
            barrier.wait(timeout=10)
            for round_ in range(10):  # every thread writes every payload, in another order
                blobs.put(payloads[(seed + round_) % len(payloads)], durable=round_ % 2 == 0)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads)
    for data in payloads:
        assert blobs.get(hashlib.sha512(data).hexdigest(), size=len(data)) == data
    assert blobs.clean_temp() == 0  # nothing half-written was left behind


def test_adopt_takes_in_a_staged_tree(backend: Backend, tmp_path: Path) -> None:
    tree = tmp_path / "staged"
    digests = []
    for i in range(3):
        data = f"staged {i}".encode()
        digest = hashlib.sha512(data).hexdigest()
        (tree / digest[:2]).mkdir(parents=True, exist_ok=True)
        (tree / digest[:2] / digest).write_bytes(data)
        digests.append((digest, data))
    assert backend.blobs.adopt(tree) >= 1
    for digest, data in digests:
        assert backend.blobs.get(digest) == data
