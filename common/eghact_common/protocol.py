"""The wire protocol's version: what an origin states, and what the nodes reading it accept.

The protocol is what edges, mirrors and the resolve client read from an origin beyond npm's
own documents: the changes feed's events and its extent, the batch read's frames, the health
document, resolutions. An origin states its version as ``"protocol": "1.0"`` in ``/-/health``
and ``/-/v1/feed`` (an edge passes the latter through, so a reader behind edges sees the
origin's). Each reader checks it against the versions it reads, a PEP 440 ``SpecifierSet``
(``packaging``; npm's semver is for packages, this is our own version), and refuses clearly
rather than misreading a changed format: a minor version only adds fields, which readers
ignore; a major version changes or removes one.

An upstream that states no version is not refused: an npm registry has no feed and is read as
before, and an origin from before this field speaks 1.0.
"""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

PROTOCOL = Version("1.0")
# What this release reads: any 1.x (compatible release: >=1.0, ==1.*).
SUPPORTED = SpecifierSet("~=1.0")


def incompatibility(stated: object, supported: SpecifierSet = SUPPORTED) -> str | None:
    """Why a peer that states protocol ``stated`` cannot be read, or None when it can be (or
    states none: ``stated`` is None)."""
    if stated is None:
        return None
    try:
        version = Version(stated) if isinstance(stated, str) else None
    except InvalidVersion:
        version = None
    if version is None:
        return f"it states protocol {stated!r}, which is not a version"
    if version not in supported:
        return f"it speaks protocol {version}; this release reads {supported}"
    return None
