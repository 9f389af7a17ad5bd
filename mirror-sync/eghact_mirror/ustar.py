"""The tar framing of a bundle, written and read by hand: POSIX ustar, regular files only.

Why not ``tarfile``: a bundle holds tens of thousands of members of a few KB, and tarfile
spends tens of microseconds on each (a TarInfo, a header built field by field, a stream
buffer that is re-sliced on every write), which made the framing cost more than the
compression. A bundle needs one member kind with one header layout, so the header is a
template with three variable fields, and reading is slicing a decompressed buffer.

What is written (and all that is read): 512-byte ustar headers (name split into the 100-byte
name and 155-byte prefix fields, mode 0644, uid/gid 0, octal size and mtime, type ``0``,
magic ``ustar\\0`` version ``00``, checksum as POSIX defines it), each body padded to 512
bytes, two zero blocks at the end and zero padding to a 10 KiB record, as tar and ``tarfile``
write it — so ``tar --zstd -xf`` extracts a bundle. Reading also takes the extension headers
other tools write for names over 100 bytes — pax (``x``, ``g``: ``path`` and ``size``) and
GNU long names (``L``) — because a bundle re-packed by another tool is the same bundle (its
identity is its signed index). It refuses what a bundle never holds: other member types
(links, devices, directories), base-256 sizes, bad checksums (:class:`TarFormatError`, which
the bundle reader turns into its own errors) — and, because a size or a name decides how much
is read, buffered and written downstream, any size that is not plain digits or is over
:data:`MAX_MEMBER` (a pax header can say anything: 10 TiB, "-1024", "1_0"), and any name
over :data:`MAX_NAME`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

BLOCK = 512
RECORD = 20 * BLOCK
_FLUSH = 2 << 20  # bytes gathered before one write to the compressor
_COPY = 1 << 20
_ZEROS = bytes(RECORD)
_MIDDLE = b"0000644\0" + b"0000000\0" + b"0000000\0"  # mode, uid, gid
# typeflag, linkname, magic, version, uname, gname, devmajor, devminor
_TAIL = b"0" + bytes(100) + b"ustar\x0000" + bytes(64) + b"0000000\0" * 2
_CHECKSUM_BLANK = b" " * 8
_ZERO_BLOCK = bytes(BLOCK)
_MAX_EXTENSION = 1 << 20  # a pax or long-name header's body: names, not content
# The largest member a ustar size field holds (11 octal digits): all our writer can write. A
# bigger size can only come from a pax header or a 12-digit field, which no bundle needs.
MAX_MEMBER = 8 ** 11 - 1
MAX_NAME = 4096  # PATH_MAX; a bundle's paths are under 150 bytes
_OCTAL = re.compile(rb"[0-7]+")
_DECIMAL = re.compile(r"[0-9]{1,20}")  # more digits than any size: int() would refuse 4,300


class TarFormatError(ValueError):
    """A tar stream a bundle cannot be: ``corrupt`` (damaged) or ``unsupported`` (not ours)."""

    def __init__(self, message: str, *, kind: str):
        super().__init__(message)
        self.kind = kind


class _Sink(Protocol):
    def write(self, data: bytearray, /) -> int:
        """Take ``data`` (the writer gives it up and starts a new buffer)."""


def split_name(path: str) -> tuple[bytes, bytes]:
    """(name, prefix) fields for ``path``: the shortest prefix that lets both fit, as POSIX says."""
    raw = path.encode()
    if len(raw) <= 100:
        return raw, b""
    parts = raw.split(b"/")
    for i in range(1, len(parts)):
        prefix, name = b"/".join(parts[:i]), b"/".join(parts[i:])
        if len(prefix) <= 155 and len(name) <= 100:
            return name, prefix
    raise ValueError(f"{path!r} does not fit a ustar header")


class UstarWriter:
    """Members into ``out`` (a compressor's stream writer), buffered into large writes."""

    def __init__(self, out: _Sink, *, mtime: int = 0):
        self._out = out
        self._mtime = b"%011o\0" % mtime
        self._buf = bytearray()
        self._written = 0
        self._fixed = sum(_MIDDLE) + sum(self._mtime) + sum(_CHECKSUM_BLANK) + sum(_TAIL)

    def header(self, path: str, size: int) -> bytes:
        name, prefix = split_name(path)
        size_field = b"%011o\0" % size
        if len(size_field) != 12:
            raise ValueError(f"{path}: {size} bytes do not fit a ustar size field")
        checksum = self._fixed + sum(name) + sum(prefix) + sum(size_field)
        return b"".join((name, bytes(100 - len(name)), _MIDDLE, size_field, self._mtime, b"%06o\0 " % checksum,
                         _TAIL, prefix, bytes(155 - len(prefix)), bytes(12)))

    def add(self, path: str, source: bytes | bytearray | memoryview | BinaryIO, size: int) -> None:
        """One regular file of ``size`` bytes from ``source`` (a file is read from its position)."""
        # self._buf, never a local alias: a flush hands the buffer over and starts a new one.
        self._buf += self.header(path, size)
        if isinstance(source, bytes | bytearray | memoryview):
            if len(source) != size:
                raise ValueError(f"{path}: {len(source)} bytes given for a {size}-byte member")
            if size <= _COPY:
                self._buf += source
            else:  # in slices, so that a big member (the index) is not copied whole into the buffer
                view = memoryview(source)
                for start in range(0, size, _COPY):
                    self._buf += view[start:start + _COPY]
                    if len(self._buf) >= _FLUSH:
                        self._flush()
        else:
            remaining = size
            while remaining:
                chunk = source.read(min(remaining, _COPY))
                if not chunk:
                    raise ValueError(f"{path}: the source ended {remaining} bytes short")
                self._buf += chunk
                remaining -= len(chunk)
                if len(self._buf) >= _FLUSH:
                    self._flush()
        self._buf += _ZEROS[:-size % BLOCK]
        if len(self._buf) >= _FLUSH:
            self._flush()

    def close(self) -> None:
        """The end-of-archive blocks and the record padding; ``out`` stays open."""
        self._buf += _ZEROS[:2 * BLOCK]
        self._buf += _ZEROS[:-(self._written + len(self._buf)) % RECORD]
        self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._written += len(self._buf)
            self._out.write(self._buf)
            self._buf = bytearray()


class UstarReader:
    """Members from ``read(n)`` (a decompressor), each header then its body as views into the
    decompressed chunks — nothing is copied unless a header straddles two chunks."""

    def __init__(self, read: Callable[[int], bytes], chunk: int):
        self._read = read
        self._chunk = chunk
        self._buf = memoryview(b"")
        self._pos = 0

    def _fill(self) -> bool:
        data = self._read(self._chunk)
        self._buf, self._pos = memoryview(data), 0
        return bool(data)

    def _block(self) -> bytes:
        if len(self._buf) - self._pos >= BLOCK:
            block = self._buf[self._pos:self._pos + BLOCK].tobytes()
            self._pos += BLOCK
            return block
        block = self._buf[self._pos:].tobytes()
        while len(block) < BLOCK:
            if not self._fill():
                raise TarFormatError("the tar stream ends inside a header", kind="corrupt")
            take = min(BLOCK - len(block), len(self._buf))
            block += self._buf[:take].tobytes()
            self._pos = take
        return block

    def next(self) -> tuple[str, int] | None:
        """The next member's (name, size); None at the end-of-archive block."""
        extended: dict[str, str] = {}
        while True:
            block = self._block()
            if block == _ZERO_BLOCK:
                return None
            name, kind, size = _parse_header(block)
            shown = extended.get("path", name)
            if kind in (b"x", b"g", b"L"):
                if size > _MAX_EXTENSION:
                    raise TarFormatError(f"an extension header of {size} bytes before {shown!r}", kind="unsupported")
                data = b"".join(self.body(size))
                if kind == b"L":
                    extended["path"] = _text(data.rstrip(b"\0"))
                elif kind == b"x":  # a global header ("g") sets defaults no bundle member needs
                    extended.update(_pax_records(data))
                continue
            if len(shown.encode()) > MAX_NAME:
                raise TarFormatError(f"a member name is {len(shown.encode())} bytes, over {MAX_NAME}: "
                                     f"{shown[:60]!r}...", kind="unsupported")
            if kind not in (b"0", b"\0"):
                raise TarFormatError(f"member {shown!r} is not a regular file (links and devices are refused)",
                                     kind="unsupported")
            if "size" in extended:
                # Plain digits only: int() would also take "-1024" (a body that steps back
                # into its own header), "+1", "1_0" and non-ASCII digits.
                if not _DECIMAL.fullmatch(extended["size"]):
                    raise TarFormatError(f"member {shown!r} has an unreadable pax size", kind="corrupt")
                size = int(extended["size"])
            if size > MAX_MEMBER:
                raise TarFormatError(f"member {shown!r} declares {size} bytes, over the {MAX_MEMBER} a bundle "
                                     "member can hold", kind="unsupported")
            return shown, size

    def body(self, size: int) -> Iterator[memoryview]:
        """The current member's ``size`` bytes as views (valid until the next call), then its padding."""
        remaining = size + (-size % BLOCK)
        while remaining:
            if self._pos >= len(self._buf) and not self._fill():
                raise TarFormatError("the tar stream ends inside a member", kind="corrupt")
            take = min(remaining, len(self._buf) - self._pos)
            data_left = max(0, min(take, remaining - (-size % BLOCK)))
            if data_left:
                yield self._buf[self._pos:self._pos + data_left]
            self._pos += take
            remaining -= take

    def skip(self, size: int) -> None:
        for _ in self.body(size):
            pass


def _parse_header(block: bytes) -> tuple[str, bytes, int]:
    """(name, type flag, size) of a header block, its checksum checked."""
    try:
        stored = int(block[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        stored = -1
    if stored != sum(block) - sum(block[148:156]) + sum(_CHECKSUM_BLANK):
        raise TarFormatError("a tar header fails its checksum", kind="corrupt")
    name = block[:100].split(b"\0", 1)[0]
    if block[257:263] == b"ustar\0":
        prefix = block[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    shown = _text(name)
    if block[124] & 0x80:
        raise TarFormatError(f"member {shown!r} has a base-256 size", kind="unsupported")
    field = block[124:136].split(b"\0", 1)[0].strip() or b"0"
    if not _OCTAL.fullmatch(field):  # int(..., 8) would also take a sign, "0o", "_"
        raise TarFormatError(f"member {shown!r} has an unreadable size", kind="corrupt")
    return shown, block[156:157], int(field, 8)


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise TarFormatError(f"a member name is not UTF-8: {raw[:60]!r}", kind="unsupported") from exc


def _pax_records(data: bytes) -> dict[str, str]:
    """The records of a pax extended header: ``"<length> <key>=<value>\\n"`` each."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos:pos + 1] != b"\0":
        try:
            space = data.index(b" ", pos)
            length = int(data[pos:space])
            key, sep, value = data[space + 1:pos + length - 1].partition(b"=")
        except ValueError as exc:
            raise TarFormatError("a pax header is unreadable", kind="corrupt") from exc
        if not sep or length <= 0 or data[pos + length - 1:pos + length] != b"\n":
            raise TarFormatError("a pax header is unreadable", kind="corrupt")
        records[_text(key)] = _text(value)
        pos += length
    return records
