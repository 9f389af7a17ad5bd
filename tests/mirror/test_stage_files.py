"""The staged tarball files are created by a child process fed through a spool file: they land
whole under ``tarballs/ab/<sha512>``, big ones included; the child's failure is the import's,
with its reason; a refusal stops the child and leaves no spool."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from eghact_mirror import index as fmt
from eghact_mirror.errors import MirrorError
from eghact_mirror.stage import SPOOL, StageSink


def _member(data: bytes) -> tuple[str, str]:
    digest = hashlib.sha512(data).hexdigest()
    return fmt.tarball_path(digest), digest


def _stage(sink: StageSink, data: bytes, piece: int = 1 << 16) -> str:
    path, digest = _member(data)
    view = memoryview(data)
    sink(path, iter([view[i:i + piece] for i in range(0, len(data), piece)]), len(data))
    return digest


def test_tarballs_land_whole_big_and_small(tmp_path: Path) -> None:
    sink = StageSink(tmp_path)
    blobs = [os.urandom(5000) for _ in range(600)] + [os.urandom(3_000_000)]
    digests = [_stage(sink, data) for data in blobs]
    sink._files.join()
    sink.close()
    for data, digest in zip(blobs, digests, strict=True):
        assert (tmp_path / "tarballs" / digest[:2] / digest).read_bytes() == data
    assert not list(tmp_path.glob(f"{SPOOL}*"))


def test_the_childs_failure_is_raised_with_its_reason(tmp_path: Path) -> None:
    sink = StageSink(tmp_path)
    data = os.urandom(4000)
    digest = hashlib.sha512(data).hexdigest()
    (tmp_path / "tarballs").mkdir()
    (tmp_path / "tarballs" / digest[:2]).write_bytes(b"a file where a folder must go")
    _stage(sink, data)
    with pytest.raises(MirrorError) as failed:
        sink._files.join()
    assert failed.value.code == "internal_error" and "staging a tarball failed" in failed.value.message
    sink.close()
    assert not list(tmp_path.glob(f"{SPOOL}*"))


def test_a_refusal_stops_the_child_and_drops_the_spool(tmp_path: Path) -> None:
    sink = StageSink(tmp_path)
    for _ in range(300):
        _stage(sink, os.urandom(5000))
    child = sink._files._child
    assert child is not None
    sink.close()
    assert child.poll() is not None and not list(tmp_path.glob(f"{SPOOL}*"))


def test_the_spool_stays_a_few_segments_whatever_is_staged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child answers each batch; the stager waits once _AHEAD batches are unanswered, so
    the disk holds a few segments, not a second copy of every tarball."""
    from eghact_mirror import stage

    monkeypatch.setattr(stage, "_BATCH_BYTES", 64 * 1024)
    monkeypatch.setattr(stage, "_AHEAD", 2)
    sink = StageSink(tmp_path)
    most = 0
    blobs = [os.urandom(20_000) for _ in range(300)]
    for data in blobs:
        _stage(sink, data)
        most = max(most, len(list(tmp_path.glob(f"{SPOOL}.*"))))
    sink._files.join()
    assert 1 <= most <= 2 + 1  # the unanswered batches and the one being filled
    assert all((tmp_path / "tarballs" / d[:2] / d).read_bytes() == data
               for data, d in ((data, hashlib.sha512(data).hexdigest()) for data in blobs))
