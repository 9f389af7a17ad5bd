"""Writing a small file so that a crash leaves the old bytes or the new, never a mix: a temp file
in the same directory (a rename is atomic only within one filesystem), its bytes fsynced, then
``os.replace``. Making the new *name* survive power loss takes one more step: the directory that
holds it is fsynced too (a file's own fsync covers its bytes, not the entry that names it).

Every node writes its state files through here; what a caller may skip is a parameter, and each
caller that skips something says why.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (a rename, a new file) durable; raises ``OSError``."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes | Iterable[bytes], *, mode: int = 0o666, fsync: bool = True,
                 sync_dir: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically; ``data`` may be pieces, written as they come
    (a big file need not be whole in memory).

    ``mode`` applies from the first byte (O_EXCL on a fresh name, so a private file is never
    readable by others, not even between create and chmod); like ``open``, it is masked by the
    umask. ``fsync=False`` only for a file whose loss costs nothing but a redo (a rename can then
    land before the bytes: after a power cut the file may be empty). ``sync_dir`` also fsyncs the
    directory, so that the new name itself survives power loss; a filesystem that cannot fsync a
    directory is tolerated there (the bytes are synced already). The temp file is removed if
    anything fails.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(data, bytes | bytearray | memoryview):
                out.write(data)
            else:
                out.writelines(data)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        with contextlib.suppress(OSError):
            fsync_dir(path.parent)
