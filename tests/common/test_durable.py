"""The one atomic write every node uses: mode from the first byte, nothing left behind."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from eghact_common.durable import write_atomic


def test_replaces_whole_with_the_mode_asked_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    write_atomic(target, b"new", mode=0o600, sync_dir=True)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes", fsync=False)  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.json"]


def test_pieces_are_written_in_order_and_a_failing_source_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "record.txt"
    write_atomic(target, (b"line %d\n" % i for i in range(3)), fsync=False)
    assert target.read_bytes() == b"line 0\nline 1\nline 2\n"

    def broken() -> Iterator[bytes]:
        yield b"half"
        raise OSError("the source failed")

    with pytest.raises(OSError, match="the source failed"):
        write_atomic(target, broken())
    assert target.read_bytes() == b"line 0\nline 1\nline 2\n"
    assert os.listdir(tmp_path) == ["record.txt"]
