"""Reading a bundle's byte stream: one file or the parts of a split bundle, the zstd frame,
and the tar members inside it — in one pass, each member handed to a sink as it goes by.

This module checks only what the bytes themselves can tell: that parts match their signed
manifest, that the zstd frame is whole (python-zstandard's stream reader returns a clean EOF
on a cut-off frame, so :class:`_FrameChecker` walks the frame's block headers itself), that
every member is a regular file with a name a bundle may hold (``ustar``). It hashes every
member on the way (sha512), so that a sink only stores bytes. Deciding whether the content
is what the signer signed is ``verify``'s job, once the index has gone by.

Three ways to read (``verify`` chooses): hashing every member into a sink that stores nothing
(``eghact-mirror verify``); scanning — headers only, bodies skipped unhashed — to reach the
index and signature at the end (an import's first pass); and reading against a verified
index (:class:`Signed`, an import's second pass), where a member the index does not list, or
of another size than it says, is refused at its header, before the sink sees a byte of it —
so what a sink stores is bounded by sizes the signer vouched for.

Memory: one decompressed chunk at a time; the decompressor's output is bounded per read, so
a decompression bomb cannot make us buffer more than a chunk either. Time: a bomb is refused
once the stream would decompress to more than :data:`MAX_EXPANSION` times its compressed size
— at the header that claims it, before it is inflated.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, cast

import zstandard

from . import index as fmt
from .errors import MirrorError
from .ustar import TarFormatError, UstarReader

CHUNK = 1 << 20
_MAGIC = b"\x28\xb5\x2f\xfd"
# Decompression-bomb bounds. A bundle's tar is its tarballs (gzip already), packuments and
# headers: measured, 62 MB of content in a 48 MB bundle (2,000 plugins); JSON alone compresses
# 5-20x at zstd level 1. zstd turns runs of zeros into 4 bytes per 128 KiB block (32,000x), so
# a 133 KB bundle can hold a "4 GiB" member. Nothing real comes near 1024x; the slack covers
# small bundles, whose tar padding and headers weigh more than their content.
MAX_EXPANSION = 1024
EXPANSION_SLACK = 64 << 20
MAX_LISTED = 100  # names of unlisted members kept for the message: their number is the attacker's


class Sink(Protocol):
    def __call__(self, path: str, chunks: Iterator[memoryview], size: int) -> None:
        """Store a content member: ``chunks`` yields its ``size`` bytes as views that stay valid
        after the call (the reader hashes them as they go; what the sink leaves unread is
        skipped). Cost: what storing costs; the reader does the rest."""


class _PartsReader(io.RawIOBase):
    """The concatenation of parts, each hashed as it is read and checked at its end (a file
    with nothing to check against is hashed only when ``hash_all``: for the record)."""

    def __init__(self, parts: list[tuple[Path, fmt.FileEntry | None]], on_bytes: Callable[[int], None],
                 hash_all: bool = True):
        self._parts = parts
        self._on_bytes = on_bytes
        self._hash_all = hash_all
        self._hashing = True
        self._i = -1
        self._file: io.BufferedReader | None = None
        self._hash = hashlib.sha512()
        self._size = 0
        self.eof = False
        self.file_sha512: list[str] = []
        self._next()

    def _next(self) -> None:
        if self._file is not None:
            self._file.close()
            path, expected = self._parts[self._i]
            got = self._hash.hexdigest()
            if self._hashing:
                self.file_sha512.append(got)
            if expected is not None and (got != expected.sha512 or self._size != expected.size):
                raise MirrorError("bad_part", f"part {path.name} does not match the signed part manifest "
                                  f"(sha512 {got[:16]}..., {self._size} bytes; expected {expected.sha512[:16]}..., "
                                  f"{expected.size} bytes)")
        self._i += 1
        if self._i >= len(self._parts):
            self._file, self.eof = None, True
            return
        self._file = open(self._parts[self._i][0], "rb")  # noqa: SIM115 - closed when exhausted
        self._hash, self._size = hashlib.sha512(), 0
        self._hashing = self._hash_all or self._parts[self._i][1] is not None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._file is not None:
            n = self._file.readinto(buffer)
            if n:
                if self._hashing:
                    self._hash.update(memoryview(buffer)[:n])
                self._size += n
                self._on_bytes(n)
                return n
            self._next()
        return 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


class _FrameChecker:
    """Passes compressed bytes through while walking the zstd frame's structure (RFC 8878 §3.1):
    raises ``truncated`` at an EOF inside the frame, ``corrupt`` on bytes after it."""

    def __init__(self, raw: _PartsReader):
        self._raw = raw
        self._head = bytearray()  # frame header bytes until the header is complete
        self._need_header: int | None = None
        self._skip = 0  # body bytes of the current block still to pass
        self._block = bytearray()  # partial 3-byte block header
        self._last = False
        self._checksum = 0  # checksum bytes still expected after the last block
        self.done = False

    def read(self, n: int) -> bytes:
        data = self._raw.read(n)
        if not data:
            if not self.done:
                raise MirrorError("truncated", "the bundle ends inside its compressed stream: it is a partial "
                                  "copy (compare its size and sha512 with the exporter's)")
            return b""
        self._walk(memoryview(data))
        return data

    def _walk(self, view: memoryview) -> None:
        pos = 0
        while pos < len(view):
            if self.done:
                raise MirrorError("corrupt", "bytes follow the end of the bundle's compressed stream")
            if self._need_header is None or len(self._head) < self._need_header:
                self._head.append(view[pos])
                pos += 1
                self._header_progress()
            elif self._skip:
                step = min(self._skip, len(view) - pos)
                self._skip -= step
                pos += step
                if not self._skip and self._last:
                    self._finish_blocks()
            elif self._last:  # the checksum after the last block
                step = min(self._checksum, len(view) - pos)
                self._checksum -= step
                pos += step
                self.done = self._checksum == 0
            else:
                self._block.append(view[pos])
                pos += 1
                if len(self._block) == 3:
                    self._start_block(int.from_bytes(self._block, "little"))
                    self._block.clear()

    def _header_progress(self) -> None:
        head = self._head
        if len(head) == 4 and bytes(head) != _MAGIC:
            raise MirrorError("corrupt", "not a zstd stream (bad magic number): not a bundle, or damaged")
        if len(head) == 5:
            fhd = head[4]
            single = bool(fhd & 0x20)
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            self._checksum_flag = bool(fhd & 0x04)
            self._need_header = 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 0x03] + fcs

    def _start_block(self, header: int) -> None:
        self._last = bool(header & 1)
        kind, size = (header >> 1) & 3, header >> 3
        if kind == 3:
            raise MirrorError("corrupt", "the compressed stream has a reserved block type: it is damaged")
        self._skip = 1 if kind == 1 else size
        if self._last and not self._skip:
            self._finish_blocks()

    def _finish_blocks(self) -> None:
        self._checksum = 4 if self._checksum_flag else 0
        self.done = self._checksum == 0


@dataclass(frozen=True)
class Signed:
    """What a verified index says a bundle holds: the second pass of an import reads against it."""

    files: fmt.FileTable
    index_digest: str  # sha512 of index.json's bytes
    signature: bytes
    # One byte per listed file, set when the member goes by: a second copy is refused at its
    # header, so what a sink stores stays within what the signer listed, once.
    stored: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self.stored[:] = bytes(len(self.files))


class SeenLog:
    """The (path, size, sha512 hex or "") of every content member, in order, spooled to a temp
    file: the index that says what they should be comes last, and holding ~80,000 entries as
    objects until then cost an import ~40 MB more for a full bundle than for a quarter one."""

    def __init__(self) -> None:
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.count = 0

    def add(self, path: str, size: int, sha512: str) -> None:
        # Member names are checked content paths (``fmt.is_content_path``): no tab, no newline.
        self._spool.write(b"%s\t%d\t%s\n" % (path.encode(), size, sha512.encode()))
        self.count += 1

    def __iter__(self) -> Iterator[tuple[str, int, str]]:
        self._spool.seek(0)
        for line in self._spool:
            path, size, sha = line[:-1].split(b"\t")
            yield path.decode(), int(size), sha.decode()
        self._spool.seek(0, 2)

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        self._spool.close()


@dataclass
class StreamResult:
    index_bytes: bytes | None = None  # not kept when reading against a Signed index
    index_seen: bool = False
    signature: bytes | None = None
    seen: SeenLog = field(default_factory=SeenLog)  # content members, duplicates included (verify checks)
    extras: list[str] = field(default_factory=list)  # the first MAX_LISTED of them
    extra_count: int = 0
    file_sha512: list[str] = field(default_factory=list)  # of the file, or of each part
    compressed_bytes: int = 0  # read so far
    compressed_size: int = 0  # of the whole bundle
    budget: int = 0  # decompressed bytes the stream may still yield


def read_stream(parts: list[tuple[Path, fmt.FileEntry | None]], sink: Sink | None,
                on_bytes: Callable[[int], None] = lambda n: None, *, signed: Signed | None = None) -> StreamResult:
    """Read every member of the bundle stored in ``parts`` (one file, or parts in order):
    hashed into ``sink``, or only scanned when ``sink`` is None; against ``signed`` when given."""
    compressed = sum(path.stat().st_size for path, _ in parts)
    result = StreamResult(compressed_size=compressed, budget=compressed * MAX_EXPANSION + EXPANSION_SLACK)

    def count(n: int) -> None:
        result.compressed_bytes += n
        on_bytes(n)

    raw = _PartsReader(parts, count, hash_all=sink is not None)  # a scan's file digest would go unused
    try:
        _read_members(raw, result, sink, signed)
    except BaseException as error:
        result.seen.close()  # the caller gets no result to check, so nothing reads the log
        if isinstance(error, MirrorError) and error.code in ("corrupt", "truncated"):
            # A damaged part usually breaks decoding before its end, where its digest would be
            # checked: name the part (that is what the person holding the media can act on).
            _find_bad_part(parts)
        raise
    finally:
        raw.close()
    result.file_sha512 = raw.file_sha512
    return result


def _read_members(raw: _PartsReader, result: StreamResult, sink: Sink | None, signed: Signed | None) -> None:
    checker = _FrameChecker(raw)
    reader = zstandard.ZstdDecompressor().stream_reader(cast(IO[bytes], checker), read_size=CHUNK)

    def bounded(n: int) -> bytes:
        # Every decompressed byte counts, headers and padding too: a bomb may hide in either.
        data = reader.read(n)
        result.budget -= len(data)
        if result.budget < 0:
            raise _bomb(f"its {result.compressed_size} compressed bytes decompress to more than "
                        f"{MAX_EXPANSION} times that")
        return data

    try:
        tar = UstarReader(bounded, CHUNK)
        while (header := tar.next()) is not None:
            name, size = header
            if size > result.budget:  # refused at its header, before it is inflated
                raise _bomb(f"member {name!r} declares {size} bytes in a bundle of {result.compressed_size} "
                            "compressed bytes")
            _member(tar, name, size, result, sink, signed)
        while bounded(CHUNK):  # the tar's end padding: the frame checker must see the frame's end
            pass
        if not checker.done:
            checker.read(CHUNK)  # raises truncated, or walks the last bytes
        if raw.read(1):
            raise MirrorError("corrupt", "bytes follow the end of the bundle's compressed stream")
    except zstandard.ZstdError as exc:
        raise MirrorError("corrupt", f"the compressed stream is damaged ({exc}): a flipped or lost byte") from exc
    except TarFormatError as exc:
        if exc.kind == "unsupported":
            raise MirrorError("not_a_bundle", str(exc)) from exc
        raise MirrorError("corrupt", f"the tar stream inside the bundle is damaged: {exc}") from exc


def _find_bad_part(parts: list[tuple[Path, fmt.FileEntry | None]]) -> None:
    """Raise ``bad_part`` for the first part that differs from its signed manifest entry."""
    for path, expected in parts:
        if expected is None:
            continue
        digest = hashlib.sha512()
        with open(path, "rb") as part:
            while chunk := part.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != expected.sha512:
            raise MirrorError("bad_part", f"part {path.name} does not match the signed part manifest: a damaged "
                              "or altered copy (the others are intact)")


def _bomb(what: str) -> MirrorError:
    return MirrorError("not_a_bundle", f"refused as a decompression bomb: {what} (a bundle expands at most "
                       f"{MAX_EXPANSION}x, plus {EXPANSION_SLACK >> 20} MiB)")


def _member(tar: UstarReader, name: str, size: int, result: StreamResult, sink: Sink | None,
            signed: Signed | None) -> None:
    # A content member seen twice is found by verify against the index (the log keeps both).
    if name in result.extras or (name == fmt.INDEX_PATH and result.index_seen):
        raise MirrorError("not_a_bundle", f"member {name!r} appears twice")
    if result.signature is not None:
        _extra(tar, name, size, result, signed)  # nothing may follow the signature: the index describes all
    elif name == fmt.INDEX_PATH:
        if size > fmt.MAX_INDEX_BYTES:
            raise MirrorError("not_a_bundle", f"the index is {size} bytes, over the {fmt.MAX_INDEX_BYTES} cap")
        result.index_seen = True
        if signed is None:
            result.index_bytes = b"".join(tar.body(size))
        elif _sha512(tar.body(size)) != signed.index_digest:
            raise _changed(name)
    elif name == fmt.SIGNATURE_PATH:
        if not result.index_seen:
            raise MirrorError("not_a_bundle", "the signature comes before the index")
        kept = bytearray()
        for view in tar.body(size):
            kept += view[:1024 - len(kept)]
        result.signature = bytes(kept)
        if signed is not None and result.signature != signed.signature:
            raise _changed(name)
    elif fmt.is_content_path(name):
        listed = signed.files.position(name) if signed is not None else None
        if signed is not None:
            # Before the sink sees a byte: it stores only what the signer listed, at the size listed, once.
            if listed is None:
                raise MirrorError("extra_file", f"the bundle holds {name}, which its signed index does not list",
                                  detail={"extra": [name]})
            if signed.stored[listed]:
                raise MirrorError("not_a_bundle", f"member {name!r} appears twice")
            if size != signed.files.size(listed):
                raise MirrorError("digest_mismatch", f"{name} is {size} bytes in the bundle, its signed index says "
                                  f"{signed.files.size(listed)}: refused before any of it was stored",
                                  detail={"files": [name]})
            signed.stored[listed] = 1
        if sink is None:
            tar.skip(size)
            result.seen.add(name, size, "")
            return
        digest = hashlib.sha512()
        chunks = _hashed(tar.body(size), digest)
        sink(name, chunks, size)
        for _ in chunks:  # whatever the sink did not read still counts, and must be passed
            pass
        got = digest.hexdigest()
        result.seen.add(name, size, got)
        if listed is not None and signed is not None and got != signed.files.sha512(listed):
            raise MirrorError("digest_mismatch", f"{name} differs from its signed digest", detail={"files": [name]})
    elif name.startswith("/") or ".." in name.split("/") or "\\" in name or "\0" in name:
        raise MirrorError("not_a_bundle", f"member {name!r} has an unsafe path")
    else:
        _extra(tar, name, size, result, signed)


def _extra(tar: UstarReader, name: str, size: int, result: StreamResult, signed: Signed | None) -> None:
    """A member no index can list (another name, or after the signature)."""
    if signed is not None:
        raise MirrorError("extra_file", f"the bundle holds {name!r}, which its signed index does not list",
                          detail={"extra": [name]})
    result.extra_count += 1
    if len(result.extras) < MAX_LISTED:
        result.extras.append(name)
    tar.skip(size)


def _changed(name: str) -> MirrorError:
    # The first pass verified this member; reading it again found other bytes.
    return MirrorError("digest_mismatch", f"{name} changed between the two reads of the bundle (is it being "
                       "written to?)", detail={"files": [name]})


def _sha512(views: Iterator[memoryview]) -> str:
    digest = hashlib.sha512()
    for view in views:
        digest.update(view)
    return digest.hexdigest()


def _hashed(views: Iterator[memoryview], digest: hashlib._Hash) -> Iterator[memoryview]:
    for view in views:
        digest.update(view)
        yield view


def hash_only(path: str, chunks: Iterator[memoryview], size: int) -> None:
    """The sink of a verification that extracts nothing (the reader hashes)."""
