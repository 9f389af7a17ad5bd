"""Content-addressed blob files: ``blobs/sha512/ab/cd/<hex digest>``.

A blob is written to a temp file in ``blobs/tmp`` (same file system as its final place),
fsynced, then renamed into place, so a crash leaves either no blob or a whole one, and the
directory entry is fsynced too so the rename itself survives power loss. Because the name
is the digest, writing the same bytes twice is a no-op and readers never see a partial file.

Bulk arrivals (a mirror bundle: tens of thousands of blobs) come as a whole tree laid out
like ``sha512/`` and are moved in by renames (:meth:`FileBlobStore.adopt`): a directory the
store lacks is taken whole, one rename for thousands of blobs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
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
        self._sha512 = str(root / "sha512")
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

    def adopt(self, tree: Path) -> int:
        """Move the blobs of ``tree`` — laid out ``ab/cd/<sha512 hex>`` like the store — into
        the store; returns how many directories and files were renamed. The caller vouches that
        every name is the sha512 of its bytes (nothing is re-read) and makes them durable (no
        fsync here: a bulk caller syncs once). Each rename is atomic, so a crash leaves every
        blob either still in ``tree`` or whole in the store, where it is invisible until
        metadata names it. Across file systems the blobs are copied instead."""
        moved = 0
        for depth_one in sorted(os.listdir(tree)) if tree.is_dir() else []:
            moved += self._adopt(tree / depth_one, self.root / "sha512" / depth_one, 2)
        return moved

    def _adopt(self, source: Path, target: Path, levels: int) -> int:
        if levels and not target.exists():
            try:
                os.rename(source, target)
                return 1
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                return self._copy_tree(source, target)
        if not levels:  # a blob already in the store: the same bytes, by its name
            try:
                os.rename(source, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self._copy_tree(source, target)
            return 1
        return sum(self._adopt(source / child, target / child, levels - 1) for child in sorted(os.listdir(source)))

    def _copy_tree(self, source: Path, target: Path) -> int:
        """What a rename does, across file systems: each blob through a temp file of the store."""
        if source.is_dir():
            target.mkdir(exist_ok=True)
            return sum(self._copy_tree(source / child, target / child) for child in sorted(os.listdir(source)))
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="blob-")
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return 1

    def get(self, sha512_hex: str, size: int | None = None) -> bytes:
        # A string path and raw descriptors: the batch read calls this tens of thousands of
        # times, and pathlib's objects cost more than the read of a 5 KB blob. With the size
        # known (the metadata has it), one read() of size + 1 bytes is the whole read: no
        # fstat(), no read() that finds the end.
        if len(sha512_hex) != 128 or not _HEX.issuperset(sha512_hex):
            raise ValueError(f"not a sha512 hex digest: {sha512_hex!r}")
        path = f"{self._sha512}/{sha512_hex[:2]}/{sha512_hex[2:4]}/{sha512_hex}"
        if size is None:
            with open(path, "rb", buffering=0) as blob:
                return blob.readall()
        fd = os.open(path, _READ_FLAGS)
        try:
            data = os.read(fd, size + 1)  # a regular file reads short only at its end
        finally:
            os.close(fd)
        if len(data) != size:
            raise OSError(errno.EIO, f"blob {sha512_hex[:16]}... does not hold the {size} bytes its metadata says")
        return data

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
