"""Writing a bundle in one streaming pass: ustar framing (``ustar``) into a zstd stream
writer into a file, or into numbered parts of at most ``max_part_size`` bytes each.

Nothing is held beyond one member's source (a bytes object or a spooled file the caller
owns) and a few framed buffers on their way to the compressor, so memory does not depend on
the bundle's size.

Compression runs on its own thread (:class:`_CompressorThread`), fed a few MB at a time: the
caller frames and hashes members while the previous buffers are compressed, written and
hashed there. Big buffers matter — a thread that gives up the GIL for a short C call waits up
to the interpreter's switch interval to get it back, so handing over each 5 KB member made
both threads crawl. The output goes to temp names beside
the target and is renamed into place only when complete: a crashed or failed export never
leaves something that looks like a bundle.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import zstandard

from eghact_common.durable import write_atomic

from . import index as fmt
from .index import FileEntry, PartManifest
from .ustar import UstarWriter

_AHEAD = 8  # framed buffers (a few MB each) waiting for the compressor


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


class _CompressorThread:
    """A zstd compression driven by one thread: ``write`` queues a buffer (the caller gives it
    up) and blocks only when the thread is _AHEAD buffers behind; an error there is raised by
    the next ``write`` or by ``close``.

    Each buffer is compressed by one ``compressobj.compress`` call and its output written and
    hashed in one piece: three calls that release the GIL per few MB. A stream writer instead
    hands its output to a Python ``write`` every 128 KB, and each of those must win the GIL
    back from the busy event loop — up to a switch interval (5 ms) each time."""

    def __init__(self, compressor: zstandard.ZstdCompressor, sink: _PartSink):
        self._zstd = compressor.compressobj()
        self._sink = sink
        self._queue: queue.Queue[bytearray | None] = queue.Queue(_AHEAD)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bundle-compressor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:  # after an error, only drain: the writer must never block
                try:
                    self._sink.write(self._zstd.compress(data))
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: bytearray) -> int:
        self._raise()
        if not self._thread.is_alive():
            raise RuntimeError("the bundle compressor was stopped")  # nobody would take it off the queue
        self._queue.put(data)
        return len(data)

    def close(self) -> None:
        """Compress what is queued and end the frame."""
        self.stop()
        self._raise()
        self._sink.write(self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


@dataclass(frozen=True)
class WrittenBundle:
    paths: tuple[Path, ...]  # the bundle file, or the parts then the manifest and its signature
    digest: str
    size: int  # compressed bytes written
    parts: tuple[FileEntry, ...]  # one entry (the whole file) when not split


class BundleWriter:
    """``add`` members, then ``finish`` with the signed index; or ``abort``."""

    def __init__(self, target: Path, *, level: int = 1, threads: int = 0, max_part_size: int | None = None,
                 mtime: int = 0):
        if max_part_size is not None and max_part_size < 1024:
            raise ValueError("a part must hold at least 1 KiB")
        self.target = target
        self._sink = _PartSink(target, max_part_size)
        self._split = max_part_size is not None
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=threads)
        self._zstd = _CompressorThread(compressor, self._sink)
        self._tar = UstarWriter(self._zstd, mtime=mtime)
        self._closed = False

    def add(self, path: str, source: bytes | memoryview | BinaryIO, size: int) -> None:
        """One member; ``source`` is read for exactly ``size`` bytes (a file is read from its position)."""
        self._tar.add(path, source, size)

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
                # No fsync, as for the parts above: a bundle cut short by a crash is exported again.
                write_atomic(path, data, fsync=False)
                paths.append(path)
        return WrittenBundle(tuple(paths), digest, sum(e.size for e in entries), entries)

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Closing the tar or zstd writer would try to finish the stream; we only want it gone.
        self._zstd.stop()
        self._sink.discard()
