"""Content-addressed blob files: ``blobs/sha512/ab/cd/<hex digest>``.

A blob is written to a temp file in ``blobs/tmp`` (same file system as its final place),
fsynced, then renamed into place, so a crash leaves either no blob or a whole one, and the
directory entry is fsynced too so the rename itself survives power loss. Because the name
is the digest, writing the same bytes twice is a no-op and readers never see a partial file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

_HEX = frozenset("0123456789abcdef")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBlobStore:
    """The embedded :class:`~eghact_origin.storage.BlobStore`: one file per digest."""

    def __init__(self, root: Path):
        self.root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        (root / "sha512").mkdir(parents=True, exist_ok=True)

    def path_for(self, sha512_hex: str) -> Path:
        if len(sha512_hex) != 128 or not _HEX.issuperset(sha512_hex):
            raise ValueError(f"not a sha512 hex digest: {sha512_hex!r}")
        return self.root / "sha512" / sha512_hex[:2] / sha512_hex[2:4] / sha512_hex

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data``; ``durable=False`` skips the fsyncs (bulk seeding syncs once at the end)."""
        digest = hashlib.sha512(data).hexdigest()
        final = self.path_for(digest)
        if final.exists():
            return digest
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                if durable:
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp_name, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        if durable:
            _fsync_dir(final.parent)
        return digest

    def get(self, sha512_hex: str) -> bytes:
        return self.path_for(sha512_hex).read_bytes()

    def exists(self, sha512_hex: str) -> bool:
        return self.path_for(sha512_hex).exists()

    def delete(self, sha512_hex: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_for(sha512_hex).unlink()

    def clean_temp(self) -> int:
        """Remove temp files a crash left behind; called at start-up. Returns how many."""
        removed = 0
        for leftover in self._tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed += 1
        return removed
