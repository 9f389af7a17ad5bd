"""Package paths as npm spells them, for every node that routes npm requests.

npm sends a scoped name as one segment with the slash escaped (``/@scope%2fname``), while
browsers and other clients use ``/@scope/name``, and aiohttp's client rewrites ``%2f`` as
``%2F``; a decoded path cannot tell ``%2f`` from ``/``, so callers hand us the RAW path
and every spelling comes out as one name.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from .errors import InvalidName, NotFound

MAX_NAME = 214
# POSTs that are reads in disguise: npm search, npm audit (quick, bulk, full) and batch reads change
# no package. The origin lets them through in read-only mode; an edge neither purges after them nor
# waits for the feed (it adds its own reads on top).
SAFE_POSTS = ("/-/v1/search", "/-/v1/batch", "/-/npm/v1/security/")
_UNROUTABLE = re.compile(r"[\x00-\x20\\?#]")  # control characters, space, backslash, ? and #


def raw_segments(raw_path: str) -> list[str]:
    """Decoded segments of a raw request target (the query, if any, is dropped)."""
    path = raw_path.split("?", 1)[0]
    return [unquote(segment) for segment in path.split("/")[1:]]


def check_name(name: str) -> str:
    """Enough of npm's naming rules to route safely (the full rules apply at publish)."""
    if (not name or len(name) > MAX_NAME or name.count("/") > 1 or name.startswith(".")
            or _UNROUTABLE.search(name)):
        raise InvalidName(f"{name[:60]!r} is not a package name")
    if name.startswith("@") and ("/" not in name or name.endswith("/") or name.startswith("@/")):
        raise InvalidName(f"scoped name {name[:60]!r} lacks the package part")
    return name


def split_package(segments: list[str]) -> tuple[str, list[str]]:
    """The package name at the start of decoded segments, and the segments after it."""
    if not segments or not segments[0]:
        raise NotFound("no package named in the path")
    first = segments[0]
    if first.startswith("@") and "/" not in first:
        if len(segments) < 2 or not segments[1]:
            raise InvalidName(f"scoped name {first!r} lacks the package part")
        name, rest = f"{first}/{segments[1]}", segments[2:]
    else:
        name, rest = first, segments[1:]
    if rest and rest[-1] == "":
        rest = rest[:-1]
    return check_name(name), rest
