"""Unpacking a verified tarball into a plugin's folder, refusing whatever could escape it.

The bytes have matched the lockfile's integrity before they get here, so a refusal means the
registry holds a hostile package, not that a download went wrong. As npm's extraction
(``strip: 1``), the first path component (``package/``) is dropped. Unlike npm, which skips
links and devices silently, every member that is not a regular file or a folder is refused, as
is every path that is absolute, has a drive letter, a backslash or a ``..`` segment. Sizes are
bounded before anything is inflated: the sizes the tar headers declare, summed, may not pass
:attr:`ExtractLimits.max_unpacked_bytes` (nor more than ``max_ratio`` times the compressed size
beyond a grace), nor may the member count pass ``max_entries``; a member is then written at
most at its declared size. Files are created fresh (``O_EXCL``: a name already placed, or a
link planted by anything, is never followed) with npm's modes (0644, or 0755 if executable).

Every refusal is an :class:`~eghact_common.errors.InvalidTarball` with a stable code:
``tarball_not_gzip``, ``tarball_not_tar``, ``tarball_link``, ``tarball_special_file``,
``tarball_traversal``, ``tarball_too_large``. Blocking work: run it in a thread.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from eghact_common.errors import InvalidTarball

__all__ = ["ExtractLimits", "extract"]

_MiB = 1024 * 1024
_COPY = 256 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ExtractLimits:
    # the origin's own publish limits (origin/eghact_origin/tarball.py), so what it took installs
    max_unpacked_bytes: int = 512 * _MiB
    max_ratio: int = 200
    ratio_grace_bytes: int = 10 * _MiB
    max_entries: int = 20_000

    def bound(self, compressed: int) -> int:
        return min(self.max_unpacked_bytes, max(self.ratio_grace_bytes, self.max_ratio * compressed))


def extract(data: bytes, dest: Path, *, package: str, limits: ExtractLimits = ExtractLimits()) -> int:
    """Unpack ``data`` (a gzip tarball) into ``dest``; the number of files written."""
    if data[:2] != b"\x1f\x8b":
        raise _refuse("tarball_not_gzip", package, None, "is not gzip-compressed")
    bound = limits.bound(len(data))
    declared = entries = files = 0
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as tar:
            for member in tar:
                entries += 1
                if entries > limits.max_entries:
                    raise _refuse("tarball_too_large", package, member.name, f"has more than {limits.max_entries} "
                                  "entries")
                if member.issym() or member.islnk():
                    raise _refuse("tarball_link", package, member.name, f"is a link (to {member.linkname!r})")
                if member.issparse() or not (member.isreg() or member.isdir()):
                    raise _refuse("tarball_special_file", package, member.name,
                                  "is not a regular file or a folder")
                parts = _parts(member.name, package)
                if member.isreg():
                    declared += member.size
                    if declared > bound:
                        raise _refuse("tarball_too_large", package, member.name,
                                      f"takes the unpacked size past {bound} bytes")
                if len(parts) < 2:   # the top folder itself, or a file beside it: npm installs neither
                    continue
                target = dest.joinpath(*parts[1:])
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                source = tar.extractfile(member)
                if source is None:   # pragma: no cover - isreg() guarantees a file object
                    raise _refuse("tarball_not_tar", package, member.name, "cannot be read")
                _write(target, source, member.size, 0o755 if member.mode & 0o111 else 0o644)
                files += 1
    except (tarfile.TarError, EOFError, ValueError, OverflowError, OSError) as exc:
        # ValueError/OverflowError: tarfile lets a few escape on hostile numeric fields; OSError:
        # a bad gzip stream (zlib), or two members that cannot both be placed (file vs folder)
        raise _refuse("tarball_not_tar", package, None, f"cannot be unpacked: {exc}") from exc
    return files


def _parts(name: str, package: str) -> list[str]:
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or "\\" in name or "\0" in name:
        raise _refuse("tarball_traversal", package, name, "has an absolute or non-portable path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _refuse("tarball_traversal", package, name, "climbs out of its folder")
    return parts


def _write(target: Path, source: IO[bytes], size: int, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL after unlinking: never write through something already there (a link included)
    if target.is_symlink() or target.exists():
        target.unlink()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    with os.fdopen(fd, "wb") as out:
        left = size
        read = source.read
        while left > 0:
            chunk = read(min(_COPY, left))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)
    os.chmod(target, mode)   # the umask narrowed os.open's mode; npm's modes are the package's contract


def _refuse(code: str, package: str, member: str | None, why: str) -> InvalidTarball:
    where = f" member {member!r}" if member is not None else ""
    return InvalidTarball(f"{package}: the tarball{where} {why}; refused", code=code,
                          detail={"package": package, "member": member})
