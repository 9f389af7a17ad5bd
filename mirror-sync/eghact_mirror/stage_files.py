"""Creating the staged tarball files in a child process, fed through spool segments.

Why a process: creating tens of thousands of small files is a few seconds of kernel time, and
it should overlap with decompressing, parsing and hashing the bundle. On a thread of the same
process it did, but each of its three system calls per file had to win the GIL back from the
busy reader thread, and the two threads took turns instead of running side by side (verify
alone 2.7 s, verify and stage 4.4 s, creating the files alone 2.3 s).

The protocol, a batch at a time. The parent writes a batch's tarball bytes to a segment file
in the staging dir, then sends the child, on its stdin::

    <segment file name>\\n
    <offset> <length> <name>\\n      (one line per file; name is ``ab/<sha512 hex>``)
    \\n

The child creates each file from the segment (read back from the page cache, making each
``ab`` folder once), deletes the segment, and answers one byte on its stdout. The parent keeps
at most a few batches unanswered, so the spool on disk is a few segments whatever the bundle
weighs, never a second copy of its tarballs. The child exits 0 at the end of its stdin, or
non-zero with the reason on stderr; the parent checks both.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterable

NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
DONE = b"."  # the child's answer to each batch
_PIECE = 1 << 20
_NAME = re.compile(rb"[0-9a-f]{2}/[0-9a-f]{128}")
_SEGMENT = re.compile(rb"tarballs\.spool\.[0-9]+")


def write_file(target: str, views: Iterable[memoryview | bytes]) -> None:
    fd = os.open(target, NEW_FILE, 0o644)
    try:
        write_all(fd, views)
    finally:
        os.close(fd)


def write_all(fd: int, views: Iterable[memoryview | bytes]) -> int:
    """Every byte of ``views`` to ``fd`` (os.write may take less than it is given); the count."""
    written = 0
    for piece in views:
        view = memoryview(piece)
        while view:
            step = os.write(fd, view)
            view = view[step:]
            written += step
    return written


def _spooled(spool: int, offset: int, length: int) -> Iterable[bytes]:
    """The bytes at ``offset``, a piece at a time (a big tarball is never whole in memory)."""
    end = offset + length
    while offset < end:
        piece = os.pread(spool, min(_PIECE, end - offset), offset)
        if not piece:
            raise OSError(f"the spool ends at {offset}, before {end}")
        offset += len(piece)
        yield piece


def main(argv: list[str]) -> int:
    stage = argv[0]
    tarballs = f"{stage}/tarballs"
    made: set[bytes] = set()
    lines = sys.stdin.buffer
    while segment := lines.readline().rstrip(b"\n"):
        if not _SEGMENT.fullmatch(segment):
            raise ValueError(f"not a spool segment: {segment[:80]!r}")
        path = f"{stage}/{segment.decode()}"
        spool = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            while record := lines.readline().rstrip(b"\n"):
                offset, length, name = record.split(b" ")
                if not _NAME.fullmatch(name):
                    raise ValueError(f"not a staged tarball name: {name[:80]!r}")
                folder = name[:2]
                if folder not in made:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(f"{tarballs}/{folder.decode()}")
                    made.add(folder)
                write_file(f"{tarballs}/{name.decode()}", _spooled(spool, int(offset), int(length)))
        finally:
            os.close(spool)
        os.unlink(path)
        sys.stdout.buffer.write(DONE)
        sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as exc:  # the parent shows this line: say what failed, not a traceback
        print(f"staging a tarball failed: {exc!r}", file=sys.stderr)
        sys.exit(1)
