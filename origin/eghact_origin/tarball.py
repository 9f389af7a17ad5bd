"""Checks of a published npm tarball before the origin stores it.

A tarball arrives in memory (its compressed size is bounded first) and is read once, as a
stream: gzip is inflated in small pieces by :class:`_Inflater`, which counts every byte and
stops the moment a decompression-bomb bound is crossed, and ``tarfile`` reads headers from it
in stream mode (``r|``), so no member is ever extracted or inflated whole; only
``package.json`` is read, and only up to a size bound. Every rejection is an
:class:`~eghact_common.errors.InvalidTarball` with a stable ``code`` and a message that names
the member at fault.

The rules follow what npm's own extraction (pacote, ``strip: 1``) does with a tarball, while
refusing what it would silently drop or what could differ between clients: npm skips links,
we reject them; npm lets a later ``package.json`` overwrite an earlier one, we call that
ambiguous. This is CPU-bound work: call it through the project's thread helper, not on the loop.
"""

from __future__ import annotations

import io
import re
import tarfile
import zlib
from dataclasses import dataclass
from typing import IO, Any, cast

from eghact_common import semver
from eghact_common.bodies import parse_json
from eghact_common.errors import InvalidJson, InvalidTarball, PayloadTooLarge
from eghact_common.integrity import Hasher

__all__ = ["TarballFacts", "TarballLimits", "build_tarball", "inspect_tarball"]

_MiB = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
# Compressed input fed to zlib per step, and the most inflated output handed out per read.
_CHUNK = 64 * 1024
# tarfile's read size from the inflater; bigger than its 10 KiB default to cut per-call overhead.
_TAR_BUFSIZE = 64 * 1024
# PAX and GNU long-name headers are read whole by tarfile; real ones are a few hundred bytes.
_MAX_META_HEADER = 1 * _MiB
_META_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)
_DRIVE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = re.compile(r"[/\\]")


@dataclass(frozen=True)
class TarballLimits:
    max_bytes: int = 50 * _MiB  # compressed size; above -> PayloadTooLarge(code="tarball_too_large")
    max_unpacked_bytes: int = 512 * _MiB  # absolute decompression-bomb guard
    max_ratio: int = 200  # unpacked/compressed above this (and unpacked > ratio_grace_bytes) -> bomb
    max_entries: int = 20_000
    # Small tarballs compress text well past 200:1 without being hostile; the ratio only counts above this.
    ratio_grace_bytes: int = 10 * _MiB
    max_manifest_bytes: int = 1 * _MiB

    def unpacked_bound(self, compressed_size: int) -> int:
        """The most inflated bytes a tarball of ``compressed_size`` may produce."""
        return min(self.max_unpacked_bytes, max(self.ratio_grace_bytes, self.max_ratio * compressed_size))


@dataclass(frozen=True)
class TarballFacts:
    integrity: str  # sha512 SRI, npm dist.integrity
    shasum: str  # sha1 hex, npm dist.shasum
    sha512_hex: str  # blob name
    size: int  # compressed bytes
    unpacked_size: int  # sum of the sizes of the files npm installs (npm dist.unpackedSize)
    file_count: int  # files npm installs (npm dist.fileCount)
    package_json: dict[str, Any]


def inspect_tarball(data: bytes, *, name: str, version: str, limits: TarballLimits = TarballLimits()) -> TarballFacts:
    """Check a published tarball and return its facts, or raise ``InvalidTarball``/``PayloadTooLarge``."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(
            f"tarball is {len(data)} bytes; the limit is {limits.max_bytes}",
            code="tarball_too_large",
            detail={"size": len(data), "limit": limits.max_bytes},
        )
    if data[:2] != _GZIP_MAGIC:
        raise _invalid("tarball_not_gzip", "tarball is not gzip-compressed", None)

    inflater = _Inflater(data, limits.unpacked_bound(len(data)))
    scan = _Scan(limits, inflater.bound)
    try:
        # Stream mode ("r|") only ever calls read() on the file object, so _Inflater needs no more.
        stream = cast(IO[bytes], inflater)
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_GuardedTarInfo, bufsize=_TAR_BUFSIZE) as tar:
            for member in tar:
                inflater.member = member.name
                scan.add(tar, member)
    except (tarfile.TarError, ValueError, OverflowError) as exc:
        # ValueError/OverflowError: tarfile lets a few of them escape on hostile numeric fields.
        where = f" at member {inflater.member!r}" if inflater.member else ""
        raise _invalid("tarball_not_tar", f"not a valid tar archive{where}: {exc}", inflater.member) from exc
    # tarfile stops at the end-of-archive blocks; read on to the gzip trailer so that its CRC
    # is checked and nothing (a bomb included) hides behind the archive.
    inflater.drain()

    manifest = scan.manifest(name, version)
    hasher = Hasher()
    hasher.update(data)
    return TarballFacts(
        integrity=hasher.sri,
        shasum=hasher.sha1_hex,
        sha512_hex=hasher.sha512_hex,
        size=len(data),
        unpacked_size=scan.unpacked_size,
        file_count=scan.file_count,
        package_json=manifest,
    )


class _Scan:
    """Per-member checks and what they gather; raises at the first offending member."""

    def __init__(self, limits: TarballLimits, bound: int):
        self.limits = limits
        self.bound = bound
        self.entries = 0
        self.declared = 0
        self.file_count = 0
        self.unpacked_size = 0
        self.manifest_candidate: str | None = None
        self.manifest_path: str | None = None
        self.manifest_raw: bytes | None = None

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        path = member.name
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise _invalid("tarball_bomb", f"more than {self.limits.max_entries} entries (at member {path!r})", path)
        parts = _path_parts(path)
        if member.issym() or member.islnk():
            kind = "symlink" if member.issym() else "hardlink"
            raise _invalid("tarball_link", f"member {path!r} is a {kind} (to {member.linkname!r})", path)
        if member.issparse() or not (member.isreg() or member.isdir()):
            raise _invalid("tarball_special_file", f"member {path!r} is not a regular file or directory", path)
        if member.isreg():
            # Checking the declared size rejects a bomb at its header, before inflating it.
            self.declared += member.size
            if self.declared > self.bound:
                raise _invalid(
                    "tarball_bomb",
                    f"member {path!r} ({member.size} bytes) takes the unpacked size past {self.bound} bytes",
                    path,
                )
        # npm strips the first path component (the top dir, usually "package/"); what has no
        # component left is not installed, so it is not counted and cannot be the manifest.
        if len(parts) < 2:
            return
        if member.isreg():
            self.file_count += 1
            self.unpacked_size += member.size
        if len(parts) == 2 and parts[1].lower() == "package.json":
            self._add_manifest(tar, member, parts)

    def _add_manifest(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str]) -> None:
        path = member.name
        # Case-insensitively: on macOS and Windows "PACKAGE.JSON" extracted later replaces the
        # manifest we checked, so any second candidate makes the tarball ambiguous.
        if self.manifest_candidate is not None:
            raise _invalid(
                "tarball_bad_manifest",
                f"member {path!r} is a second package.json after {self.manifest_candidate!r}",
                path,
            )
        self.manifest_candidate = path
        if parts[1] != "package.json":
            return
        if not member.isreg():
            raise _invalid("tarball_bad_manifest", f"member {path!r} is not a regular file", path)
        if member.size > self.limits.max_manifest_bytes:
            raise _invalid(
                "tarball_bad_manifest",
                f"member {path!r} is {member.size} bytes; the limit is {self.limits.max_manifest_bytes}",
                path,
            )
        fileobj = tar.extractfile(member)
        if fileobj is None:  # pragma: no cover - isreg() guarantees a file object
            raise _invalid("tarball_bad_manifest", f"member {path!r} cannot be read", path)
        self.manifest_path = path
        self.manifest_raw = fileobj.read(self.limits.max_manifest_bytes + 1)

    def manifest(self, name: str, version: str) -> dict[str, Any]:
        path, raw = self.manifest_path, self.manifest_raw
        if path is None or raw is None:
            raise _invalid("tarball_no_manifest", "no <topdir>/package.json (such as package/package.json)", None)
        try:
            manifest = parse_json(raw, what=f"member {path!r}")
        except InvalidJson as exc:   # not JSON, or nested too deep
            raise _invalid("tarball_bad_manifest", exc.message, path) from exc
        if not isinstance(manifest, dict):
            raise _invalid("tarball_bad_manifest", f"member {path!r} is not a JSON object", path)
        found = {"name": manifest.get("name"), "version": manifest.get("version")}
        # The client publishes semver.clean(version) (libnpmpublish), so "v1.0.0" or
        # "1.0.0+build" in the tarball is the version published as 1.0.0.
        if isinstance(found["version"], str) and semver.clean(found["version"]) == version:
            found["version"] = version
        mismatches = {
            field: {"expected": expected, "found": manifest.get(field)}
            for field, expected in (("name", name), ("version", version))
            if found[field] != expected
        }
        if mismatches:
            said = ", ".join(
                f"{field} {m['found']!r} (published as {m['expected']!r})" for field, m in mismatches.items()
            )
            raise InvalidTarball(
                f"member {path!r} says {said}",
                code="tarball_manifest_mismatch",
                detail={"member": path, "mismatches": mismatches},
            )
        return manifest


def _path_parts(path: str) -> list[str]:
    """The components of a member path, after rejecting absolute and escaping paths."""
    if path.startswith(("/", "\\")) or _DRIVE.match(path):
        raise _invalid("tarball_absolute_path", f"member {path!r} has an absolute path", path)
    # Backslashes count as separators: a Windows client would treat them so.
    raw = _SEPARATORS.split(path)
    if ".." in raw:
        raise _invalid("tarball_path_traversal", f"member {path!r} has a '..' component", path)
    return [part for part in raw if part not in ("", ".")]


def _invalid(code: str, message: str, member: str | None) -> InvalidTarball:
    return InvalidTarball(message, code=code, detail={"member": member} if member is not None else None)


class _GuardedTarInfo(tarfile.TarInfo):
    """TarInfo that refuses oversized PAX / GNU long-name headers before tarfile reads them whole."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        # _proc_member is where tarfile dispatches on the header type (stable since Python 2);
        # without this hook a 400 MiB PAX header would be buffered in memory before any bound.
        if self.type in _META_TYPES and self.size > _MAX_META_HEADER:
            raise _invalid("tarball_bomb", f"an extended header of {self.size} bytes at {self.name!r}", self.name)
        return super()._proc_member(tarfile_)  # type: ignore[misc]


class _Inflater:
    """A read-only stream of the inflated tarball that never holds more than one piece of output.

    zlib's ``max_length`` bounds each step's output; input is fed in slices of the original
    buffer. Concatenated gzip members (legal, and what ``gunzip`` accepts) are followed; zero
    padding after the last member is ignored, like gzip does; anything else is garbage.
    """

    def __init__(self, data: bytes, bound: int):
        self._src = memoryview(data)
        self._pos = 0
        self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip wrapper: header, CRC32, ISIZE
        self._done = False
        self.bound = bound
        self.total = 0
        self.member: str | None = None  # the last member tarfile handed out, for error messages

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` inflated bytes (at most one piece, even for -1); b"" at the end."""
        size = _CHUNK if size < 0 else min(size, _CHUNK)
        while size and not self._done:
            if self._zlib.eof:
                self._next_member()
                continue
            chunk: bytes | memoryview
            if self._zlib.unconsumed_tail:
                chunk = self._zlib.unconsumed_tail
            else:
                chunk = self._src[self._pos : self._pos + _CHUNK]
                self._pos += len(chunk)
            try:
                out = self._zlib.decompress(chunk, size)
            except zlib.error as exc:
                raise self._gzip_error(f"corrupt gzip stream: {exc}") from exc
            if out:
                self.total += len(out)
                if self.total > self.bound:
                    raise _invalid(
                        "tarball_bomb",
                        f"inflates past {self.bound} bytes{self._where()}",
                        self.member,
                    )
                return out
            # An empty step with no input left and no end-of-stream means the gzip was cut short;
            # an empty step with input left just consumed header bytes.
            if not chunk and not self._zlib.eof:
                raise self._gzip_error("truncated gzip stream")
        return b""

    def drain(self) -> None:
        """Inflate the rest (checking the bounds and the trailer), discarding it."""
        while self.read(_CHUNK):
            pass

    def _next_member(self) -> None:
        # unused_data is the tail of the input fed so far that follows this member; step back over it.
        self._pos -= len(self._zlib.unused_data)
        rest = self._src[self._pos :]
        if rest[:2] == _GZIP_MAGIC:
            self._zlib = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        elif not bytes(rest).strip(b"\0"):
            self._done = True
        else:
            raise self._gzip_error(f"{len(rest)} bytes of garbage after the gzip stream")

    def _where(self) -> str:
        return f" (at member {self.member!r})" if self.member else " (before the first member)"

    def _gzip_error(self, message: str) -> InvalidTarball:
        return _invalid("tarball_not_gzip", message + self._where(), self.member)


def build_tarball(files: dict[str, bytes], *, mtime: int = 499162500) -> bytes:
    """A deterministic npm-style ``.tgz`` of ``files`` (paths relative to ``package/``).

    Entries are sorted, mode 0o644, owned by uid/gid 0 with no user names, stamped with npm's
    fixed date (1985-10-26T08:15:00Z); the gzip header carries mtime 0. Identical input gives
    identical bytes on one zlib build.
    """
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in sorted(files):
            if rel.startswith("/") or "\\" in rel or {"", ".", ".."} & set(rel.split("/")):
                raise ValueError(f"not a plain relative path: {rel!r}")
            content = files[rel]
            info = tarfile.TarInfo("package/" + rel)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(content))
    # zlib's own gzip wrapper writes mtime 0 and no file name: what gzip.compress(mtime=0) does.
    return zlib.compress(out.getvalue(), level=6, wbits=16 + zlib.MAX_WBITS)
