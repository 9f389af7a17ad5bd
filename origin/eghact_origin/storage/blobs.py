"""Content-addressed blob files: ``blobs/sha512/ab/<hex digest>``.

Layout: one level of 256 directories, named by the digest's first two hex digits. Stores made
before that (no ``blobs/layout`` file) keep the two levels they were made with
(``sha512/ab/cd/<hex>``), and are read and written that way: nothing is moved. Why one level:
a blob store is written in bulk (a mirror's first bundle brings tens of thousands of blobs),
and with two levels nearly every blob came with a directory of its own to create (60,000
blobs, 39,000 directories), which doubled the file system's work (measured: 60,000 5 KB files
in 2.3-2.8 s with 256 directories, 4.3-7.7 s with 39,000). A few thousand entries a directory,
for a registry of millions of tarballs, is well within what ext4 and XFS index.

A blob is written to a temp file in ``blobs/tmp`` (same file system as its final place),
fsynced, then renamed into place, so a crash leaves either no blob or a whole one, and the
directory entry is fsynced too so the rename itself survives power loss. Because the name
is the digest, writing the same bytes twice is a no-op and readers never see a partial file.

Bulk arrivals (a mirror bundle: tens of thousands of blobs) come as a whole tree laid out
``ab/<hex>`` and are moved in by renames (:meth:`FileBlobStore.adopt`): a directory the store
lacks is taken whole, one rename for hundreds of blobs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from eghact_common.durable import fsync_dir

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_HEX = frozenset("0123456789abcdef")
LAYOUT_FILE = "layout"
_ONE_LEVEL = "sha512/ab/<hex>\n"  # what a store made with one level says in its layout file



class FileBlobStore:
    """The embedded :class:`~eghact_origin.storage.BlobStore`: one file per digest."""

    def __init__(self, root: Path):
        self.root = root
        self._tmp = root / "tmp"
        self._sha512 = str(root / "sha512")
        self._tmp.mkdir(parents=True, exist_ok=True)
        self.levels = self._layout()
        (root / "sha512").mkdir(parents=True, exist_ok=True)

    def _layout(self) -> int:
        """Directory levels under ``sha512/``: what the layout file says; two for a store made
        before there was one; one for a new store, whose layout file is written first (before
        ``sha512/``, so that a crash in between cannot leave a new store looking like an old one)."""
        marker = self.root / LAYOUT_FILE
        try:
            said = marker.read_text()
        except FileNotFoundError:
            if (self.root / "sha512").exists():
                return 2
            # Durably: a store whose layout file were lost would be read with two levels.
            tmp = self._tmp / f"{LAYOUT_FILE}.{os.getpid()}"
            with open(tmp, "w") as out:
                out.write(_ONE_LEVEL)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, marker)
            fsync_dir(self.root)
            return 1
        if said != _ONE_LEVEL:
            raise ValueError(f"{marker} names a blob layout this version does not know: {said[:80]!r}")
        return 1

    def _relative(self, sha512_hex: str) -> str:
        if len(sha512_hex) != 128 or not _HEX.issuperset(sha512_hex):
            raise ValueError(f"not a sha512 hex digest: {sha512_hex!r}")
        if self.levels == 1:
            return f"{sha512_hex[:2]}/{sha512_hex}"
        return f"{sha512_hex[:2]}/{sha512_hex[2:4]}/{sha512_hex}"

    def path_for(self, sha512_hex: str) -> Path:
        return Path(f"{self._sha512}/{self._relative(sha512_hex)}")

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
            fsync_dir(final.parent)
        return digest

    def adopt(self, tree: Path) -> int:
        """Move the blobs of ``tree`` — laid out ``ab/<sha512 hex>`` — into the store; returns
        how many directories and files were renamed. The caller vouches that every name is the
        sha512 of its bytes (nothing is re-read) and makes them durable (no fsync here: a bulk
        caller syncs once). Each rename is atomic, so a crash leaves every blob either still in
        ``tree`` or whole in the store, where it is invisible until metadata names it. Across
        file systems the blobs are copied instead. Into a two-level store, blob by blob."""
        moved = 0
        for bucket in sorted(os.listdir(tree)) if tree.is_dir() else []:
            if self.levels == 1:
                moved += self._adopt(tree / bucket, self.root / "sha512" / bucket, 1)
                continue
            for name in sorted(os.listdir(tree / bucket)):
                target = self.path_for(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                moved += self._adopt(tree / bucket / name, target, 0)
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
        if not levels:  # a blob (over the same bytes, by its name, if the store has it already)
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
        path = f"{self._sha512}/{self._relative(sha512_hex)}"
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
