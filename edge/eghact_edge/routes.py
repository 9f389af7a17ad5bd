"""Request paths as cache keys.

npm sends a scoped name as one segment with the slash escaped (``/@scope%2fname``; the
aiohttp client re-encodes it as ``%2F``), browsers send ``/@scope/name``. aiohttp's decoded
path cannot tell ``%2f`` from ``/``, so the raw path is parsed here and every spelling of one
resource becomes one :class:`Route` with one cache key. Parsing is memoised per raw path
(bounded), so the hit path pays one dict lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode

from eghact_common import wire
from eghact_common.errors import BadRequest
from eghact_common.npm_paths import raw_segments, split_package

from .target import origin_form

# Cacheable kinds: the content class of eghact_common.cache_policy they belong to.
PACKUMENT, VERSION, TARBALL, DIST_TAGS, SEARCH, RESOLUTION = (
    "packument", "version", "tarball", "dist-tags", "search", "resolution")


@dataclass(frozen=True, slots=True)
class Route:
    """What a raw path names. ``kind`` is None for what is never cached (proxied as is)."""

    kind: str | None
    name: str | None
    upstream_path: str       # canonical spelling sent upstream (npm's for names)
    key: str                 # cache key without the Accept variant
    tag: str | None          # the surrogate key that purges it
    filename: str | None = None

    def cache_key(self, abbreviated: bool) -> str:
        # Vary: Accept splits packuments only; other kinds have one representation.
        if self.kind == PACKUMENT:
            return self.key + ("#a" if abbreviated else "#f")
        return self.key


def escaped(name: str) -> str:
    """npm's escaped form of a name: the one ``/`` of a scoped name as ``%2f``."""
    return quote(name, safe="@/").replace("/", "%2f")


def parse(raw: str) -> Route:
    """The route of a raw request target (path and query, as sent on the wire); 400 for a
    target that is not origin-form (:func:`.target.origin_form`)."""
    path, _, query = origin_form(raw).partition("?")
    if path == "/":
        return Route(None, None, raw, raw, None)
    if path.startswith("/-/"):
        return _special(path, query, raw)
    name, rest = split_package(raw_segments(path))
    pkg = wire.package_key(name)
    if not rest:
        upstream = "/" + escaped(name)
        return Route(PACKUMENT, name, upstream, upstream, pkg)
    if len(rest) == 1:
        upstream = f"/{escaped(name)}/{quote(rest[0], safe='')}"
        return Route(VERSION, name, upstream, upstream, pkg)
    if len(rest) == 2 and rest[0] == "-" and rest[1].endswith(".tgz"):
        filename = rest[1]
        if "/" in filename or filename.startswith("."):
            raise BadRequest(f"bad tarball file name {filename[:60]!r}")
        # The scope's "/" stays a "/" in tarball URLs (npm's form); anything else not allowed
        # in a request line is escaped, so the upstream gets the name it would decode to.
        upstream = f"/{quote(name, safe='@/')}/-/{quote(filename, safe='')}"
        version = tarball_version(name, filename)
        tag = wire.tarball_key(name, version) if version else pkg
        return Route(TARBALL, name, upstream, upstream, tag, filename)
    return Route(None, name, raw, raw, None)


def _special(path: str, query: str, raw: str) -> Route:
    if path == "/-/v1/search":
        # One key per query, whatever the parameter order.
        canonical = urlencode(sorted(parse_qsl(query, keep_blank_values=True)))
        upstream = "/-/v1/search?" + canonical
        return Route(SEARCH, None, upstream, upstream, wire.SEARCH_KEY)
    if path.startswith("/-/package/"):
        segments = raw_segments(path)[2:]
        if segments:
            name, rest = split_package(segments)
            if rest and rest[0] == "dist-tags" and len(rest) <= 2:
                upstream = f"/-/package/{escaped(name)}/" + "/".join(quote(r, safe="") for r in rest)
                return Route(DIST_TAGS, name, upstream, upstream, wire.package_key(name))
    if path.startswith("/-/v1/resolutions/"):
        digest = path.rsplit("/", 1)[-1]
        if digest and all(c.isalnum() or c in "-_" for c in digest):
            upstream = f"/-/v1/resolutions/{digest}"
            return Route(RESOLUTION, None, upstream, upstream, wire.resolution_key(digest))
    return Route(None, None, raw, raw, None)


def tarball_version(name: str, filename: str) -> str | None:
    """``1.2.3`` from ``pkg-1.2.3.tgz`` (npm names a tarball ``<unscoped-name>-<version>.tgz``)."""
    bare = name.rsplit("/", 1)[-1]
    prefix = bare + "-"
    if filename.startswith(prefix) and filename.endswith(".tgz") and len(filename) > len(prefix) + 4:
        return filename[len(prefix):-4]
    return None


def tarball_path(name: str, version: str) -> str:
    return f"/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


class RouteCache:
    """Memoised :func:`parse`, bounded: a flood of distinct paths only costs re-parsing."""

    def __init__(self, limit: int = 50_000):
        self._routes: dict[str, Route] = {}
        self._limit = limit

    def get(self, raw: str) -> Route:
        route = self._routes.get(raw)
        if route is None:
            route = parse(raw)
            if len(self._routes) >= self._limit:
                self._routes.clear()
            self._routes[raw] = route
        return route
