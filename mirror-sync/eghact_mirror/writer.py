"""Writing a bundle in one streaming pass: tarfile (``w|``) into a zstd stream writer into
a file, or into numbered parts of at most ``max_part_size`` bytes each.

Nothing is held beyond one member's source (a bytes object or a spooled file the caller
owns), so memory does not depend on the bundle's size. The output goes to temp names beside
the target and is renamed into place only when complete: a crashed or failed export never
leaves something that looks like a bundle.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard

from . import index as fmt
from .index import FileEntry, PartManifest

# Big enough that the Python-level write calls are few (a tar member is often 5 KB).
_TAR_BUFSIZE = 1 << 20


class _PartSink:
    """The compressed byte stream's destination: hashes what it writes, cuts it into parts."""

    def __init__(self, target: Path, max_part_size: int | None):
        self._target = target
        self._max = max_part_size
        self._temp_prefix = f".{target.name}.{os.getpid()}"
        self.parts: list[tuple[Path, FileEntry]] = []  # (temp path, final entry)
        self._file: BinaryIO | None = None
        self._current = target
        self._hash = hashlib.sha512()
        self._written = 0

    def _open_next(self) -> None:
        suffix = f".part{len(self.parts) + 1:03d}" if self._max else ""
        self._current = self._target.with_name(f"{self._temp_prefix}{suffix}.partial")
        self._file = open(self._current, "wb")  # noqa: SIM115 - closed in _close_current
        self._hash = hashlib.sha512()
        self._written = 0

    def _close_current(self) -> None:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        name = fmt.part_path(self._target, len(self.parts) + 1).name if self._max else self._target.name
        self.parts.append((self._current, FileEntry(name, self._written, self._hash.hexdigest())))

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        while view.nbytes:
            if self._file is None:
                self._open_next()
            assert self._file is not None  # for the type checker: _open_next sets it
            room = view.nbytes if not self._max else min(view.nbytes, self._max - self._written)
            chunk = view[:room]
            self._file.write(chunk)
            self._hash.update(chunk)
            self._written += room
            view = view[room:]
            if self._max and self._written >= self._max:
                self._close_current()
        return len(data)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def finish(self) -> None:
        if self._file is None and not self.parts:
            self._open_next()  # an empty stream still makes one (empty) part
        self._close_current()

    def discard(self) -> None:
        temps = [temp for temp, _ in self.parts]
        if self._file is not None:
            self._file.close()
            self._file = None
            temps.append(self._current)
        for temp in temps:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


@dataclass(frozen=True)
class WrittenBundle:
    paths: tuple[Path, ...]  # the bundle file, or the parts then the manifest and its signature
    digest: str
    size: int  # compressed bytes written
    parts: tuple[FileEntry, ...]  # one entry (the whole file) when not split


class BundleWriter:
    """``add`` members, then ``finish`` with the signed index; or ``abort``."""

    def __init__(self, target: Path, *, level: int = 3, threads: int = 0, max_part_size: int | None = None,
                 mtime: int = 0):
        if max_part_size is not None and max_part_size < 1024:
            raise ValueError("a part must hold at least 1 KiB")
        self.target = target
        self._sink = _PartSink(target, max_part_size)
        self._split = max_part_size is not None
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=threads)
        self._zstd = compressor.stream_writer(cast(IO[bytes], self._sink), closefd=False)
        # ustar, not pax: our names fit its fields, and a pax header per member would double
        # the tar work of every reader. copybufsize is a TarFile argument typeshed leaves out.
        self._tar = tarfile.open(fileobj=self._zstd, mode="w|", format=tarfile.USTAR_FORMAT,  # type: ignore[call-overload]  # noqa: SIM115
                                 bufsize=_TAR_BUFSIZE, copybufsize=_TAR_BUFSIZE)
        self._mtime = mtime
        self._closed = False

    def add(self, path: str, source: bytes | BinaryIO, size: int) -> None:
        """One member; ``source`` is read for exactly ``size`` bytes (a file is read from its position)."""
        info = tarfile.TarInfo(path)
        info.size = size
        info.mtime = self._mtime
        info.mode = 0o644
        self._tar.addfile(info, io.BytesIO(source) if isinstance(source, bytes | bytearray) else source)
        # TarFile remembers every member it wrote (for reading back): 30 MB of TarInfo for a
        # universe of 80,000 files, which a stream being written never needs.
        self._tar.members.clear()

    def finish(self, index_bytes: bytes, signature: bytes, sign: Callable[[bytes], bytes],
               fingerprint: str) -> WrittenBundle:
        self.add(fmt.INDEX_PATH, index_bytes, len(index_bytes))
        self.add(fmt.SIGNATURE_PATH, signature, len(signature))
        self._tar.close()
        self._zstd.close()
        self._sink.finish()
        self._closed = True
        digest = fmt.digest(index_bytes)
        entries = tuple(entry for _, entry in self._sink.parts)
        finals = [self.target.with_name(entry.path) for entry in entries]
        for (temp, _), final in zip(self._sink.parts, finals, strict=True):
            os.replace(temp, final)
        paths = list(finals)
        if self._split:
            # The manifest goes last: its presence is what says "all parts are in place".
            manifest = PartManifest(digest, fingerprint, entries).encode()
            for path, data in ((fmt.parts_signature_path(self.target), sign(manifest)),
                               (fmt.parts_manifest_path(self.target), manifest)):
                tmp = path.with_name(f".{path.name}.partial")
                tmp.write_bytes(data)
                os.replace(tmp, path)
                paths.append(path)
        return WrittenBundle(tuple(paths), digest, sum(e.size for e in entries), entries)

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Closing the tar or zstd writer would try to finish the stream; we only want it gone.
        self._sink.discard()
