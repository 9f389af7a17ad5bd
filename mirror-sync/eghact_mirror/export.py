"""``eghact-mirror export``: a signed bundle of an origin's seq range.

The range is (from_seq, to_seq] where from_seq comes from ``--since`` (0 for a full bundle)
or from the link ``--after`` names, and to_seq is the origin's head when the export starts.
The export reads the feed for that range, decides what the mirror needs (``selection``), and
streams packuments and tarballs into a bundle (``collect`` into ``writer``), then signs the
index. A range with no event yields no bundle (``up_to_date``): ``mirror-apply`` would call an
empty one a downgrade, and there is nothing to carry anyway.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from . import chain, feed
from . import index as fmt
from .client import OriginClient, Payload
from .collect import PACKAGE_EVENTS, Collector, Job, RangePlan, held_after
from .errors import MirrorError
from .limits import Limits
from .progress import Progress
from .selection import ALL, Closure, SelectionSpec, lockfile_roots
from .signing import SigningKey, TrustedKey
from .writer import BundleWriter, WrittenBundle

# One encoder for every event line (json.dumps with options builds a new one per call).
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True)
class ExportOptions:
    origin: str
    output: Path
    since: int | None = None
    previous: str | None = None  # with --since: the digest the mirror applied last
    after: Path | None = None
    selection: SelectionSpec = field(default_factory=SelectionSpec)
    max_size: int | None = None
    token: str | None = None
    level: int = 1
    threads: int = 0
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class ExportReport:
    bundle: WrittenBundle
    index: fmt.Index  # without its file list (it was spooled, and is gone)
    files: int
    tarballs: int
    content_bytes: int
    seconds: float


@dataclass
class _Range:
    """The feed of (from_seq, to_seq], read once: the raw lines go to a temp file, the
    facts selection needs stay in memory as names and versions only."""

    lines: BinaryIO = field(default_factory=lambda: tempfile.TemporaryFile())  # noqa: SIM115 - closed by export
    names: list[str] = field(default_factory=list)  # the name of each line, to filter without re-parsing
    changed: set[str] = field(default_factory=set)
    published: dict[str, set[str]] = field(default_factory=dict)
    track_published: bool = True  # a full bundle ships every version: no need to remember which

    @property
    def count(self) -> int:
        return len(self.names)

    def add(self, event: dict[str, Any]) -> None:
        self.add_page([event])

    def add_page(self, events: list[dict[str, Any]]) -> None:
        """A page of the feed at once: one write, one encode to bytes (a full export reads
        ~60,000 events, and a write and an encode each cost more than the event's JSON)."""
        if not events:
            return
        self.lines.write(("\n".join([_ENCODE(event) for event in events]) + "\n").encode())
        intern, changed = sys.intern, self.changed
        for event in events:
            name = intern(event["name"])
            self.names.append(name)
            kind = event.get("type")
            if kind in PACKAGE_EVENTS:
                changed.add(name)
                if self.track_published and kind == "publish" and event.get("version"):
                    self.published.setdefault(name, set()).add(event["version"])

    def filtered(self, keep: Any) -> tuple[Payload, int]:
        """events.jsonl of the events whose name ``keep`` accepts, spooled to a temp file."""
        self.lines.seek(0)
        out = tempfile.TemporaryFile()  # noqa: SIM115 - the collector's writer closes it (Payload.close)
        digest = hashlib.sha512()
        kept = 0
        for line, name in zip(self.lines, self.names, strict=True):
            if keep(name):
                out.write(line)
                digest.update(line)
                kept += 1
        size = out.tell()
        out.seek(0)
        return Payload(size, digest.hexdigest(), file=out), kept


async def read_range(client: OriginClient, since: int, until: int) -> _Range:
    seen = _Range(track_published=since > 0)
    async for events in feed.pages(client, since, until):
        seen.add_page([event for event in events if event["seq"] <= until])
    return seen


async def jobs_as_read(client: OriginClient, seen: _Range, until: int, spec: SelectionSpec
                       ) -> AsyncIterator[list[Job]]:
    """The feed of (0, until] read into ``seen``, yielding after each page the packages it
    names for the first time (those ``spec`` matches): a full bundle's jobs, in feed order."""
    async for events in feed.pages(client, 0, until):
        kept = [event for event in events if event["seq"] <= until]
        # Each package new to the range once, in the order of its first event that changes it.
        changed = seen.changed
        fresh = dict.fromkeys(e["name"] for e in kept if e.get("type") in PACKAGE_EVENTS and e["name"] not in changed)
        seen.add_page(kept)
        yield [Job(name, False) for name in fresh if spec.matches(name)]


@dataclass
class _KeptEvents:
    """The range's events that go into the bundle, spooled once the feed has been read."""

    seen: _Range
    keep: Any
    count: int = 0

    def payload(self) -> Payload:
        payload, self.count = self.seen.filtered(self.keep)
        self.seen.lines.close()
        return payload


async def all_names(client: OriginClient, until: int) -> set[str]:
    """Every package name the feed ever mentioned (filter roots for a closure)."""
    names: set[str] = set()
    async for events in feed.pages(client, 0, until):
        names.update(e["name"] for e in events if e.get("type") in PACKAGE_EVENTS and e["seq"] <= until)
    return names


@dataclass
class _Chosen:
    """An explicit selection computed against the origin: its roots and its closure walk."""

    roots: dict[str, set[str]]
    walker: Closure
    selected: set[str]


async def choose(client: OriginClient, spec: SelectionSpec, head: int, warnings: list[str]) -> _Chosen:
    """The names (and versions) an explicit selection reaches at the origin now. Run before the
    range is fixed: with uplinks, the walk pulls through what the origin lacks, and those pulls
    are then events of this bundle's range rather than of the next one's."""
    roots: dict[str, set[str]] = {}
    closed: dict[str, set[str]] = {}
    if spec.filters:
        for name in await all_names(client, head):
            if spec.matches(name):
                (closed if spec.closure else roots).setdefault(name, set()).add(ALL)
    for path in spec.lockfiles:
        for name, version in lockfile_roots(path):
            (closed if spec.closure else roots).setdefault(name, set()).add(version)
    if spec.top:
        popular = await client.popular(spec.top)
        if popular is None:
            raise MirrorError("origin_unavailable", f"{client.url} has no /-/v1/popular (the edge issue adds it): "
                              "--top cannot rank packages")
        for name in popular:
            closed.setdefault(name, set()).add(ALL)
    walker = Closure(client)
    # Roots without --closure are read (not followed) too: one the origin pulls through is then
    # pulled before the range is fixed.
    frontier = {**{name: set() for name in roots}, **closed}
    selected = await walker.walk(frontier) | set(roots)
    warnings.extend(walker.warnings)
    return _Chosen(roots, walker, selected)


def plan_selection(spec: SelectionSpec, chosen: _Chosen | None, seen: _Range,
                   start: chain.Link) -> tuple[list[Job], tuple[str, ...] | None]:
    """The packages to collect and what the mirror holds afterwards (None: a predicate)."""
    if chosen is None or not spec.explicit:
        return [Job(n, False) for n in sorted(seen.changed) if spec.matches(n)], None
    before = set(start.names or ()) if start.names_known and start.names is not None else None
    if start.seq == 0:
        before = set()
    held = chain.pulled_of(start)
    holds = chosen.selected | (before or set())
    jobs = []
    for name in sorted(holds):
        whole = before is None or name not in before
        needed = chosen.walker.needed(name, chosen.roots.get(name, ()))
        # A pulled package the mirror holds must travel again when the selection now needs
        # versions it lacks (a new range, a new dependent), changed at the origin or not; when
        # the previous link does not say what it holds, every package with needed versions is
        # asked (a local one then carries its packuments only).
        more = needed is not None and (held is None or (name in held and not needed <= held[name]))
        if whole or name in seen.changed or more:
            jobs.append(Job(name, whole, needed))
    return jobs, tuple(sorted(holds))


async def export(options: ExportOptions, key: SigningKey, progress: Progress | None = None) -> ExportReport:
    import time

    started = time.perf_counter()
    progress = progress or Progress()
    start = chain.START
    if options.after is not None:
        start = chain.read_link(options.after, TrustedKey(key.public))
    elif options.since:
        start = chain.Link(None, options.since, options.previous, None, False)
    async with OriginClient(options.origin, token=options.token, limits=options.limits) as client:
        health = await client.health()
        origin_id, head = health["registry_id"], health["seq"]
        if start.origin_id not in (None, origin_id):
            raise MirrorError("wrong_origin", f"the chain continues a bundle of origin {start.origin_id}; "
                              f"{options.origin} is origin {origin_id}")
        if head < start.seq:
            raise MirrorError("bad_input", f"the origin is at seq {head}, behind the chain's seq {start.seq}: "
                              "another origin, or one restored from an older backup")
        warnings: list[str] = []
        chosen = None
        if options.selection.explicit:
            chosen = await choose(client, options.selection, head, warnings)
            head = (await client.health())["seq"]  # with what the walk pulled through
        if head == start.seq:
            raise MirrorError("up_to_date", f"the origin has nothing after seq {head}: no bundle written")
        if start.seq == 0 and not options.selection.explicit:
            # A full bundle of a predicate selection holds every package the feed names, so
            # collecting starts with the feed's first page instead of after its last.
            seen = _Range(track_published=False)
            jobs: list[Job] | AsyncIterator[list[Job]] = jobs_as_read(client, seen, head, options.selection)
            holds = None
        else:
            seen = await read_range(client, start.seq, head)
            jobs, holds = plan_selection(options.selection, chosen, seen, start)
        keep = options.selection.matches if holds is None else set(holds).__contains__
        kept = _KeptEvents(seen, keep)
        plan = RangePlan(start.seq, head, jobs, seen.published, kept.payload, chain.pulled_of(start))
        writer = BundleWriter(options.output, level=options.level, threads=options.threads,
                              max_part_size=options.max_size, mtime=int(time.time()))
        # A streamed full bundle has as many packages as the origin holds, give or take the unpublished.
        packages = progress.task("packages", len(jobs) if isinstance(jobs, list) else health.get("packages"))
        written = progress.task("bytes bundled", None, unit="bytes")
        collector = Collector(client, writer, on_package=lambda n: progress.advance(packages, n),
                              on_bytes=lambda n: progress.advance(written, n))
        files = collector.result.files
        try:
            got = await collector.run(plan)
            removed = set(got.removed)
            selection = {**options.selection.describe(),
                         "names": None if holds is None else [n for n in holds if n not in removed],
                         "pulled": held_after(plan.held, got.packages, got.removed)}
            warnings += got.warnings
            index = fmt.Index(
                origin_id=origin_id, origin_url=got.base_url or client.url, from_seq=start.seq, to_seq=head,
                created=datetime.now(UTC).isoformat(timespec="seconds"), previous_digest=start.digest,
                key_fingerprint=key.fingerprint, source="export", selection=selection,
                packages=tuple(got.packages), removed=tuple(got.removed), event_count=kept.count,
                files=got.files, warnings=tuple(warnings))
            index_bytes = index.encode()
            bundle = writer.finish(index_bytes, key.sign(index_bytes), key.sign, key.fingerprint)
        except BaseException:
            writer.abort()
            raise
        finally:
            files.close()
            seen.lines.close()
    return ExportReport(bundle, dataclasses.replace(index, files=()), files.count, files.tarballs,
                        files.total_bytes, time.perf_counter() - started)
