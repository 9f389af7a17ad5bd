"""Package paths as npm spells them.

npm sends a scoped name as one segment with the slash escaped (``/@scope%2fname``), while
browsers and other clients use ``/@scope/name``; aiohttp's decoded path cannot tell
``%2f`` from ``/``, so we parse the raw path ourselves and accept every spelling.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from eghact_common.errors import InvalidName, NotFound

MAX_NAME = 214


@dataclass(frozen=True)
class PackagePath:
    name: str
    rest: tuple[str, ...]


def raw_segments(raw_path: str) -> list[str]:
    path = raw_path.split("?", 1)[0]
    return [unquote(segment) for segment in path.split("/")[1:]]


def package_path(segments: list[str]) -> PackagePath:
    """Split decoded segments into the package name and what follows it."""
    if not segments or not segments[0]:
        raise NotFound("no package named in the path")
    first = segments[0]
    if first.startswith("@") and "/" not in first:
        if len(segments) < 2 or not segments[1]:
            raise InvalidName(f"scoped name {first!r} lacks the package part")
        name, rest = f"{first}/{segments[1]}", segments[2:]
    else:
        name, rest = first, segments[1:]
    if len(name) > MAX_NAME or any(ord(c) < 0x21 for c in name) or name.count("/") > 1:
        raise InvalidName(f"{name[:60]!r} is not a package name")
    if rest and rest[-1] == "":
        rest = rest[:-1]
    return PackagePath(name, tuple(rest))
