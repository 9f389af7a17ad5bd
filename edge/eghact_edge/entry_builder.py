"""Turning an upstream 200 into an :class:`Entry`: everything a hit will not do again.

* Tarball URLs inside packuments and version documents point at the upstream's base;
  they are rewritten to this edge's public URL (a bytes replace of the upstream base as
  found in the document, so a parent edge, an origin behind a proxy or any npm registry
  all work). Lockfiles (resolutions, and the answers of ``POST /-/v1/resolve`` passed
  through) get the same treatment in ``registry`` and every ``resolved``: a client that
  installs from a lockfile it resolved through this edge fetches through this edge.
* Tarballs are checked against every integrity we know (the upstream's ``Eghact-Integrity``
  and ``Repr-Digest`` headers, and ``dist.integrity`` of the packument, from the builder's
  one :class:`IntegrityIndex`) before anything stores or serves them.
* Packuments get their ``Link: rel=prefetch`` (the latest version's dependencies), and the
  same parse feeds the integrity index, so checking a tarball does not parse its packument
  again.
* Resolutions get links to the tarballs of their load plan's first chunks.
* Bodies are compressed once; our ETag is derived from the upstream's and our base URL,
  because the bytes we serve differ from the upstream's.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from cachetools import LRUCache

from eghact_common import integrity
from eghact_common.blocking import run_blocking
from eghact_common.errors import UpstreamUnavailable
from eghact_common.wire import ACCEPT_ABBREVIATED

from . import routes
from .encoding import encodings_for, is_compressible
from .entry import Entry
from .errors import BadUpstreamContent
from .freshness import Directives, Timing, timing_for
from .metrics import Reporter
from .tiers import MemoryTier
from .upstream import UpstreamClient, UpstreamResponse

# Headers that travel with a stored response to every client.
FORWARDED = ("Cache-Control", "Surrogate-Key", "Eghact-Seq", "Repr-Digest", "Eghact-Integrity", "Last-Modified")
_OFFLOAD_BYTES = 64 * 1024
MAX_LINKS = 16
_TARBALL_FIELD = re.compile(rb'"tarball"\s*:\s*"')

class IntegrityIndex:
    """``dist.integrity`` of tarballs by package name and tarball file name: what a tarball
    must match before it is stored or served (the authority npm uses).

    Every packument the builder parses feeds it. For a tarball whose version it does not
    know yet, :meth:`expected` reads the packument held in memory (either form, peeked), then
    the upstream's abbreviated packument (not stored: nobody asked for it). Integrity of a
    published version never changes, so the index cannot be wrong, only incomplete (a newer
    version is looked up anew). Bounded: ``names`` packages, least recently learnt dropped.
    """

    def __init__(self, memory: MemoryTier | None = None, upstream: UpstreamClient | None = None, *,
                 names: int = 4096):
        self._memory = memory
        self._upstream = upstream
        self._by_name: LRUCache[str, dict[str, str]] = LRUCache(maxsize=names)

    def learn(self, name: str, by_file: dict[str, str]) -> None:
        """``by_file``: tarball file name -> integrity, from one parse of ``name``'s packument."""
        self._by_name[name] = by_file

    async def learn_packument(self, name: str, packument: bytes) -> None:
        """From a packument's bytes (parsed off the event loop when big)."""
        _, by_file = await _offload(packument_facts, packument, size=len(packument))
        self.learn(name, by_file)

    def known(self, name: str, filename: str) -> str | None:
        versions = self._by_name.get(name)
        return versions.get(filename) if versions is not None else None

    async def expected(self, name: str, filename: str) -> str | None:
        """The integrity ``name``'s tarball ``filename`` must match; None when no packument
        we can read (here, in memory or upstream) lists it."""
        known = self.known(name, filename)
        if known is not None:
            return known
        route = routes.parse("/" + routes.escaped(name))
        if self._memory is not None:
            for abbreviated in (True, False):
                cached = self._memory.peek(route.cache_key(abbreviated))
                if cached is not None:
                    await self.learn_packument(name, cached.bodies["identity"])
                    known = self.known(name, filename)
                    if known is not None:
                        return known
        if self._upstream is not None:
            with contextlib.suppress(UpstreamUnavailable):
                response = await self._upstream.fetch(route.upstream_path, {"Accept": ACCEPT_ABBREVIATED},
                                                      kind="packument")
                if response.status == 200:
                    await self.learn_packument(name, response.body)
                    return self.known(name, filename)
        return None


class EntryBuilder:
    def __init__(self, public_url: str, *, reporter: Reporter, clock: Callable[[], float],
                 max_ttl: float | None = None, default_ttl: float = 0.0, integrity: IntegrityIndex | None = None):
        self.public_url = public_url.rstrip("/")
        self.max_ttl = max_ttl
        self.default_ttl = default_ttl
        self._reporter = reporter
        self._clock = clock
        self.integrity = integrity if integrity is not None else IntegrityIndex()

    def timing(self, route: routes.Route, directives: Directives, headers: Mapping[str, str], *,
               age_header: float, fetch_seconds: float, feed_covered: bool, by_default: bool) -> Timing:
        """The lifetime of a response to ``route`` (a 200, or a 304 about a stored entry).

        ``by_default``: the response is cacheable by default (no Authorization was sent, it is
        neither private nor no-store), so a heuristic lifetime may fill in for missing headers.
        A tarball is immutable: :meth:`build` stores none it did not check against its
        integrity, and bytes that match a digest cannot change."""
        return timing_for(directives, stored_at=self._clock(), age_header=age_header, fetch_seconds=fetch_seconds,
                          feed_covered=feed_covered, max_ttl=self.max_ttl, headers=headers,
                          default_ttl=self.default_ttl if by_default else 0.0,
                          immutable=route.kind == routes.TARBALL)

    async def build(self, route: routes.Route, key: str, response: UpstreamResponse, directives: Directives,
                    *, by_default: bool = False) -> Entry:
        """``by_default``: see :meth:`timing`. Raises BadUpstreamContent for a tarball that
        does not match its integrity (or whose integrity nobody states)."""
        body = response.body
        content_type = response.headers.get("Content-Type", "application/octet-stream")
        links: tuple[str, ...] = ()
        if route.kind == routes.TARBALL:
            await self.verify_tarball(route, response)
        elif route.kind in (routes.PACKUMENT, routes.VERSION) and route.name:
            body = rewrite_tarball_urls(body, route.name, self.public_url)
            if route.kind == routes.PACKUMENT:
                links, by_file = await _offload(packument_facts, body, size=len(body))
                self.integrity.learn(route.name, by_file)
        elif route.kind == routes.RESOLUTION:
            body = await rewrite_lockfile(body, self.public_url)
            links = await _offload(resolution_links, body, size=len(body))
        headers = tuple((name, response.headers[name]) for name in FORWARDED if name in response.headers)
        vary = _vary(route, content_type)
        if vary:
            headers += (("Vary", vary),)
        upstream_etag = response.headers.get("ETag")
        surrogate = response.headers.get("Surrogate-Key", "")
        timing = self.timing(route, directives, response.headers, age_header=_age(response),
                             fetch_seconds=response.seconds, feed_covered=bool(route.tag) or bool(surrogate),
                             by_default=by_default)
        return Entry(
            key=key, content_type=content_type,
            bodies=await encodings_for(body, is_compressible(content_type)),
            etag=await self._etag(upstream_etag, body), upstream_etag=upstream_etag, headers=headers,
            tag=route.tag, timing=timing, links=links,
        )

    async def _etag(self, upstream_etag: str | None, body: bytes) -> str:
        if upstream_etag:
            seed = f"{upstream_etag}\n{self.public_url}".encode()
            return '"e' + hashlib.sha256(seed).hexdigest()[:39] + '"'
        digest = await _offload(lambda b: hashlib.sha256(b).hexdigest(), body, size=len(body))
        return '"e' + digest[:39] + '"'

    async def verify_tarball(self, route: routes.Route, response: UpstreamResponse) -> None:
        expected = []
        if "Eghact-Integrity" in response.headers:
            expected.append(response.headers["Eghact-Integrity"])
        repr_digest = response.headers.get("Repr-Digest", "")
        if repr_digest.startswith("sha-512=:") and repr_digest.endswith(":"):
            expected.append("sha512-" + repr_digest[len("sha-512=:"):-1])
        if route.name and route.filename:
            from_packument = await self.integrity.expected(route.name, route.filename)
            if from_packument:
                expected.append(from_packument)
        if not expected:
            self._reporter.integrity_failure()
            raise BadUpstreamContent(f"no integrity known for {route.name}/{route.filename}; not serving it",
                                     detail={"path": route.upstream_path})
        body = response.body
        try:   # only the digests the checks below compare (sha512 alone, for npm's SRIs)
            algorithms = {integrity.deciding_algorithm(sri) for sri in expected}
        except ValueError:
            algorithms = set(integrity.ALGORITHMS)
        found = await _offload(lambda b: integrity.digests(b, algorithms), body, size=len(body))
        for sri in expected:
            try:
                ok = integrity.matches(found, sri)
            except ValueError:
                ok = False
            if not ok:
                self._reporter.integrity_failure()
                raise BadUpstreamContent(
                    f"the upstream's {route.filename} does not match its integrity; not cached, not served",
                    detail={"path": route.upstream_path, "expected": sri,
                            "actual": "sha512-" + base64.b64encode(found["sha512"]).decode()})


def _vary(route: routes.Route, content_type: str) -> str:
    parts = ["Accept"] if route.kind == routes.PACKUMENT else []
    if is_compressible(content_type):
        parts.append("Accept-Encoding")
    return ", ".join(parts)


def _age(response: UpstreamResponse) -> float:
    from .freshness import parse_age

    return parse_age(response.headers.get("Age"))


async def _offload(fn: Callable[[bytes], Any], body: bytes, *, size: int) -> Any:
    return await run_blocking(fn, body) if size > _OFFLOAD_BYTES else fn(body)


def upstream_base(body: bytes, name: str) -> bytes | None:
    """The base the upstream used for tarball URLs, found in the document itself."""
    found = _TARBALL_FIELD.search(body)
    if found is None:
        return None
    start = found.end()
    url = body[start:body.find(b'"', start)]
    for spelling in (name, routes.escaped(name), name.replace("/", "%2F")):
        marker = f"/{spelling}/-/".encode()
        at = url.find(marker)
        if at > 0:
            return url[:at]
    return None


def rewrite_tarball_urls(body: bytes, name: str, public_url: str) -> bytes:
    base = upstream_base(body, name)
    public = public_url.encode()
    if base is None or base == public:
        return body
    pattern = re.compile(rb'("tarball"\s*:\s*")' + re.escape(base) + rb"/")
    return pattern.sub(lambda m: m.group(1) + public + b"/", body)


def rewrite_lockfile_urls(body: bytes, public_url: str) -> bytes:
    """An ``eghact-lock.json`` with ``public_url`` for the base the upstream wrote in its
    ``registry`` and at the start of every ``resolved``; any other body is returned as is.

    The base is read from the parsed document (a request's dependencies may name a package
    ``registry``); the bytes are then spliced, not re-serialized, so the lockfile keeps its
    exact form. The first ``"registry": "<base>"`` is the top-level one: the fields before
    it (the request's ranges, the hash) can never hold a URL."""
    try:
        lock = json.loads(body)
    except ValueError:
        return body
    base = lock.get("registry") if isinstance(lock, dict) else None
    public = public_url.rstrip("/")
    if not isinstance(base, str) or not base or base == public:
        return body
    old, new = (json.dumps(url, ensure_ascii=False)[1:-1].encode() for url in (base, public))
    body = re.sub(rb'("registry"\s*:\s*")' + re.escape(old) + rb'"', lambda m: m.group(1) + new + b'"', body, count=1)
    return re.sub(rb'("resolved"\s*:\s*")' + re.escape(old) + rb"/", lambda m: m.group(1) + new + b"/", body)


async def rewrite_lockfile(body: bytes, public_url: str) -> bytes:
    """:func:`rewrite_lockfile_urls`, off the event loop when the body is big."""
    return await _offload(lambda b: rewrite_lockfile_urls(b, public_url), body, size=len(body))


def packument_facts(body: bytes) -> tuple[tuple[str, ...], dict[str, str]]:
    """From one parse of a packument: the paths of the packuments a client will ask for
    next (the latest version's dependencies), and ``dist.integrity`` by tarball file name."""
    try:
        doc = json.loads(body)
        versions = doc.get("versions") or {}
        latest = doc.get("dist-tags", {}).get("latest")
        deps = list(((versions.get(latest) or {}).get("dependencies") or {}).keys())
        by_file = {}
        for version in versions.values():
            dist = version.get("dist") or {}
            tarball, sri = dist.get("tarball"), dist.get("integrity")
            if isinstance(tarball, str) and isinstance(sri, str):
                by_file[tarball.rsplit("/", 1)[-1]] = sri
    except (ValueError, AttributeError, TypeError):
        return (), {}
    return tuple("/" + routes.escaped(dep) for dep in deps[:MAX_LINKS] if isinstance(dep, str)), by_file


def resolution_links(body: bytes) -> tuple[str, ...]:
    """Paths of the tarballs a client loads after fetching a resolution: its load plan's
    eager chunk, then its first lazy chunks, in the plan's order (dependencies first)."""
    try:
        lock = json.loads(body)
        packages = lock.get("packages") or {}
        chunks = (lock.get("loadPlan") or {}).get("chunks") or []
        ordered = sorted(chunks, key=lambda chunk: chunk.get("mode") != "eager")   # stable: plan order
        links: list[str] = []
        for chunk in ordered:
            for plugin in chunk.get("plugins") or []:
                package = packages.get(plugin) or {}
                name, version = package.get("name"), package.get("version")
                if isinstance(name, str) and isinstance(version, str):
                    links.append(routes.tarball_path(name, version))
                if len(links) >= MAX_LINKS:
                    return tuple(links)
    except (ValueError, AttributeError, TypeError):
        return ()
    return tuple(links)
