"""The client's shared tarball cache, content-addressed by integrity.

One cache serves every project of a user (``$EGHACT_CACHE``, default
``~/.cache/eghact/tarballs``): a tarball is kept under the digest its lockfile integrity
names (``sha512/ab/<hex>``), so a second project that locks the same packages installs
offline, and no name, URL or registry enters the key (the same bytes from an edge, the origin
or a mirror are one entry). Only verified bytes are written; a read is verified again, and an
entry that no longer matches (a disk error, a hand edit) is dropped and fetched anew.
Hashing is CPU work: callers run :meth:`get` and :meth:`put` off the event loop.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from eghact_common.durable import write_atomic
from eghact_common.integrity import deciding_algorithm, digests, matches, parse_sri

__all__ = ["TarballCache", "default_cache_dir", "verify"]


def default_cache_dir() -> Path:
    configured = os.environ.get("EGHACT_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eghact" / "tarballs"


def verify(data: bytes, integrity: str) -> bool:
    """Whether ``data`` is what ``integrity`` (an SRI string) names, by its strongest hash."""
    return matches(digests(data, [deciding_algorithm(integrity)]), integrity)


class TarballCache:
    def __init__(self, root: Path | None = None):
        self.root = root if root is not None else default_cache_dir()

    def path(self, integrity: str) -> Path:
        algorithm = deciding_algorithm(integrity)
        raw = next(digest for algo, digest in parse_sri(integrity) if algo == algorithm)
        name = raw.hex()
        return self.root / algorithm / name[:2] / name

    def get(self, integrity: str) -> bytes | None:
        """The verified bytes for ``integrity``, or None."""
        path = self.path(integrity)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if verify(data, integrity):
            return data
        with contextlib.suppress(OSError):
            path.unlink()
        return None

    def put(self, integrity: str, data: bytes) -> None:
        """Keep ``data`` (already verified against ``integrity``). A cache that cannot be written
        (read-only, full) costs only a later download, so that is not an error."""
        path = self.path(integrity)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # No fsync: a tarball lost to a power cut fails its next verification and is fetched again.
            write_atomic(path, data, mode=0o644, fsync=False)
        except OSError:
            return
