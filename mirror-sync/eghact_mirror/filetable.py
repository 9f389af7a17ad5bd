"""A bundle index's file list, held compactly: what an import keeps in memory for every file.

An import holds the verified index's list through both reads of the bundle, and checks each
member against it. As :class:`~.index.FileEntry` objects in a dict (each with its path and hex
digest as strings), beside the members seen, that was ~1.2 KB a file: the importer's peak
memory grew by ~95 MB from a quarter bundle to a full one (20,000 to 79,000 files). Here a
file costs ~250 bytes: its position in a dict keyed by the raw sha512 for a tarball (whose
path is its digest) or by the path for the rest, its size in an ``array``, its raw digest in
one ``bytearray``. Entries are given out as ``FileEntry`` values built on demand, in the
index's order.

``FileEntry`` comes from here (``index`` re-exports it): the table is made of them.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_TARBALL = re.compile(r"tarballs/([0-9a-f]{64})/([0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    size: int
    sha512: str


def _key(path: str) -> bytes | str:
    """A tarball's raw digest (its path names it: ``tarballs/<hex 1-64>/<hex 65-128>``), else the path."""
    # Lower-case hex only: another spelling of a listed digest is another (unlisted) name.
    match = _TARBALL.fullmatch(path) if path.startswith("tarballs/") else None
    return bytes.fromhex(match[1] + match[2]) if match else path


def _path(key: bytes | str) -> str:
    if isinstance(key, bytes):
        hexed = key.hex()
        return f"tarballs/{hexed[:64]}/{hexed[64:]}"
    return key


class FileTable:
    """The (path, size, sha512) of each file, in order; each path once (:meth:`add` says so).
    A ``Collection`` of ``FileEntry``; :meth:`position` and :meth:`entry` look one up."""

    __slots__ = ("_digests", "_keys", "_positions", "_sizes")

    def __init__(self, entries: Iterable[FileEntry] = ()):
        self._positions: dict[bytes | str, int] = {}
        self._keys: list[bytes | str] = []
        self._sizes = array("q")
        self._digests = bytearray()  # 64 bytes a file
        for entry in entries:
            self.add(entry.path, entry.size, entry.sha512)

    def add(self, path: str, size: int, sha512_hex: str) -> bool:
        """Append a file; False (and nothing added) when its path is listed already."""
        key = _key(path)
        if key in self._positions:
            return False
        self._positions[key] = len(self._keys)
        self._keys.append(key)
        self._sizes.append(size)
        self._digests += bytes.fromhex(sha512_hex)
        return True

    def position(self, path: str) -> int | None:
        return self._positions.get(_key(path))

    def size(self, i: int) -> int:
        return self._sizes[i]

    def sha512(self, i: int) -> str:
        return self._digests[64 * i:64 * i + 64].hex()

    def entry(self, i: int) -> FileEntry:
        return FileEntry(_path(self._keys[i]), self._sizes[i], self.sha512(i))

    def get(self, path: str) -> FileEntry | None:
        i = self.position(path)
        return None if i is None else self.entry(i)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[FileEntry]:
        return (self.entry(i) for i in range(len(self._keys)))

    def __contains__(self, entry: object) -> bool:
        if not isinstance(entry, FileEntry):
            return False
        i = self.position(entry.path)
        return i is not None and self.entry(i) == entry

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FileTable | tuple | list):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=False))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable while built

    @property
    def content_bytes(self) -> int:
        return sum(self._sizes)

    @property
    def tarball_count(self) -> int:
        return sum(isinstance(key, bytes) for key in self._keys)
