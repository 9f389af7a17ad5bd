"""Gathering a seq range from an origin into a sink: the events, each selected package's two
packuments as served, and the tarballs the mirror lacks — shared by ``export`` (the sink is a
bundle writer) and ``sync`` (the sink is a staging dir).

Concurrency: a few workers each take a group of packages, read their packuments in one batch
read, then the tarballs the mirror lacks in another (``client``: the origin's batch read, or
one GET each where there is none), and hand the group's files to one writer, which drains a
bounded queue into the sink: it hashes and frames a group at a time on a thread (a few
milliseconds a group, in order), while the sink's own thread compresses (``writer``) or its
child process creates the files (``stage``) — handing each small file to a thread on its own
would cost more in GIL hand-offs than it saves. The queue bound, the group size, the spooling of big
tarballs (``payload.SPOOL_BYTES``) and the fixed number of workers are what keep memory flat
whatever the range weighs.

Which tarballs travel. A package new to the mirror travels whole. For one the mirror has, only
the versions published after ``from_seq``: those whose publish event is in the range, and —
because packuments are read after the range was fixed, and a publish may land in between —
those published after ``to_seq`` up to the packument's ``Eghact-Seq`` (the feed is read that far
on demand). Everything else in the packument was published before ``from_seq``, so the mirror
has it. The versions and their tarballs come from the origin's tarball list (``client``: read
beside the packuments, at their seq) or, where there is none, from the abbreviated packument.
Each tarball is read within the size the list gives (``limits``; a packument gives none) and
checked against the sha512 they promise before it goes anywhere.

Pulled packages (the origin's tarball list names their uplink) travel with some versions
only: a package pulled from npm may list thousands of versions of many MB each. Those the
selection needs (``Job.versions``: a closure's or a lockfile's versions), or without such a
set (a name predicate, ``sync``) those the origin holds tarballs for; the origin pulls through
the tarballs it has not fetched yet when the batch read asks for them. The package's entry in
the index names those versions (``"versions"``), and mirror-apply stores the union of what the
mirror holds and what the bundle brings (origin/eghact_origin/mirror/pulled.py), so only
tarballs the mirror lacks travel: ``RangePlan.held``, from the previous link's
``selection.pulled`` (each pulled package's versions the mirror holds; unknown: all travel).
"""


from __future__ import annotations

import asyncio
import itertools
import json
import re
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from eghact_common import integrity, wire

from . import index as fmt
from .client import OriginClient, Packuments, load_json
from .errors import MirrorError
from .payload import Payload

QUEUE_GROUPS = 4
GROUP_PACKAGES = 64  # ~130 packuments and a few hundred tarballs: one batch read each
WORKERS = 3
# Events that change a packument; advisories and resolutions do not.
PACKAGE_EVENTS = frozenset({wire.PUBLISH, wire.DEPRECATE, wire.UNPUBLISH, wire.DIST_TAG, wire.UPLINK})


class ContentSink(Protocol):
    def add(self, path: str, source: bytes | memoryview | BinaryIO, size: int) -> None:
        """Store one file of ``size`` bytes read from ``source``. Blocking: called on a worker thread."""


@dataclass(frozen=True)
class Job:
    name: str
    whole: bool  # every version's tarball (new to the mirror), or only those published since from_seq
    # A pulled package's versions the selection needs; None: those the origin holds tarballs for.
    versions: frozenset[str] | None = None


@dataclass
class RangePlan:
    from_seq: int
    to_seq: int
    # The packages to collect: a list, or (a full export) batches of them as the feed is read,
    # so that collecting starts with the first page instead of after the last.
    jobs: list[Job] | AsyncIterator[list[Job]]
    published: dict[str, set[str]]  # versions published in (from_seq, to_seq], by name
    # events.jsonl of the range (already filtered to the selection), or what makes it once
    # the jobs have all been handed out (the feed is then read to its end).
    events: Payload | Callable[[], Payload]
    # Versions of each pulled package the mirror holds before this link (None: not known).
    held: dict[str, frozenset[str]] | None = None


# One spooled entry: exactly as Index.encode lists a file, and a comma.
_ENTRY = re.compile(rb'\{"path":("(?:[^"\\]|\\.)*"),"size":([0-9]+),"sha512":"([0-9a-f]{128})"\},')
_PLAIN = re.compile(r"[a-z0-9./]+")


class FileLog:
    """The (path, size, sha512) of every file written, spooled to a temp file: the index is
    the one thing that grows with the number of files, and it need not sit in memory twice.
    Each entry is spooled as the index's JSON lists it, so that encoding the index is copying
    the spool (``json_entries``): building ~80,000 entries from parsed lines took ~0.2 s at
    the end of a full export, when nothing else runs."""

    def __init__(self) -> None:
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self.count = 0
        self.total_bytes = 0
        self.tarballs = 0

    def append(self, entry: fmt.FileEntry) -> None:
        path = f'"{entry.path}"' if _PLAIN.fullmatch(entry.path) else json.dumps(entry.path)
        self._spool.write(f'{{"path":{path},"size":{entry.size},"sha512":"{entry.sha512}"}},'.encode())
        self.count += 1
        self.total_bytes += entry.size
        self.tarballs += entry.path.startswith("tarballs/")

    def json_entries(self) -> Iterator[bytes]:
        """The entries as the index's JSON file list (without its brackets), a block at a time."""
        self._spool.seek(0)
        size = self._spool.seek(0, 2)
        self._spool.seek(0)
        left = size - 1 if size else 0  # all but the last comma
        while left > 0:
            block = self._spool.read(min(left, 1 << 20))
            left -= len(block)
            yield block
        self._spool.seek(0, 2)

    def __iter__(self) -> Iterator[fmt.FileEntry]:
        self._spool.seek(0)
        data = self._spool.read()
        self._spool.seek(0, 2)
        for match in _ENTRY.finditer(data):
            path, size, sha = match.groups()
            yield fmt.FileEntry(json.loads(path), int(size), sha.decode())

    def __len__(self) -> int:
        return self.count

    def __contains__(self, entry: object) -> bool:
        return any(entry == mine for mine in self)

    def close(self) -> None:
        self._spool.close()


@dataclass
class Collected:
    packages: list[dict[str, Any]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    files: FileLog = field(default_factory=FileLog)
    base_url: str | None = None
    tarballs: int = 0
    tarball_bytes: int = 0
    warnings: list[str] = field(default_factory=list)


def held_after(before: dict[str, frozenset[str]] | None, packages: list[dict[str, Any]],
               removed: list[str]) -> dict[str, list[str]]:
    """Each pulled package's versions the mirror holds once a link carrying ``packages`` (index
    entries) is applied after ``before`` (None: not known, then only what this link brings is
    known): the union, as mirror-apply keeps it. A package sent whole (taken over: local now)
    or removed leaves the map. Recorded in the index as ``selection.pulled``."""
    held = {name: set(versions) for name, versions in (before or {}).items()}
    for entry in packages:
        if "versions" in entry:
            held.setdefault(entry["name"], set()).update(entry["versions"])
        else:
            held.pop(entry["name"], None)
    for name in removed:
        held.pop(name, None)
    return {name: sorted(versions) for name, versions in sorted(held.items())}


def sha512_of(dist: dict[str, Any]) -> str:
    """The sha512 hex a version's ``dist.integrity`` promises."""
    for algo, raw in integrity.parse_sri(dist["integrity"]):
        if algo == "sha512":
            return raw.hex()
    raise MirrorError("origin_unavailable", f"{dist.get('tarball')} has no sha512 integrity to check it by")


class Collector:
    def __init__(self, client: OriginClient, sink: ContentSink, *, on_package: Callable[[int], None] = lambda n: None,
                 on_bytes: Callable[[int], None] = lambda n: None):
        self._client = client
        self._sink = sink
        self._on_package = on_package
        self._on_bytes = on_bytes
        self._queue: asyncio.Queue[list[tuple[str, Payload]] | None] = asyncio.Queue(QUEUE_GROUPS)
        self._scheduled: set[bytes] = set()  # raw digests: half the memory of hex strings
        self._tail_seq = 0
        self._tail: dict[str, set[str]] = {}
        self._tail_lock = asyncio.Lock()
        self.result = Collected()

    async def run(self, plan: RangePlan) -> Collected:
        self._plan = plan
        self._tail_seq = plan.to_seq
        groups: asyncio.Queue[list[tuple[int, Job]] | None] = asyncio.Queue(WORKERS)
        try:
            async with asyncio.TaskGroup() as group:
                writer = group.create_task(self._writer())
                workers = [group.create_task(self._worker(groups)) for _ in range(WORKERS)]
                await _deal(plan.jobs, groups)
                for _ in workers:
                    await groups.put(None)
                await asyncio.gather(*workers)
                events = plan.events if isinstance(plan.events, Payload) else plan.events()
                await self._queue.put([(fmt.EVENTS_PATH, events)])
                await self._queue.put(None)
                await writer
        except BaseExceptionGroup as group:
            # The first failure is the story (the others are its consequences, or the same
            # refusal seen by another worker): raise it as itself, so callers see a MirrorError.
            raise _first(group) from None
        finally:
            while not self._queue.empty():  # what a failure left unwritten
                for _, payload in self._queue.get_nowait() or ():
                    payload.close()
        self.result.packages.sort(key=lambda p: p["name"])
        self.result.removed.sort()
        return self.result

    async def _worker(self, groups: asyncio.Queue[list[tuple[int, Job]] | None]) -> None:
        while (jobs := await groups.get()) is not None:
            await self._group(jobs)
            self._on_package(len(jobs))

    async def _group(self, jobs: list[tuple[int, Job]]) -> None:
        docs = await self._client.packuments([job.name for _, job in jobs])
        files: list[tuple[str, Payload]] = []
        links: list[tuple[str, str, str, int | None]] = []
        for (i, job), docs_of in zip(jobs, docs, strict=True):
            full, short = docs_of.full, docs_of.abbreviated
            if full is None or short is None:
                self.result.removed.append(job.name)  # unpublished whole (or gone): a tombstone
                continue
            full_path, short_path = fmt.packument_paths(i)
            if docs_of.uplink is not None:
                carried = await self._pulled(job, docs_of, short, links)
                if carried is not None:
                    files += [(full_path, Payload(len(full), data=full)), (short_path, Payload(len(short), data=short))]
                    self.result.packages.append({"name": job.name, "full": full_path, "abbreviated": short_path,
                                                 "versions": carried})
                continue
            seen_seq = max(docs_of.full_seq, docs_of.abbreviated_seq)
            if docs_of.dists is not None and docs_of.dists[1] == seen_seq == min(docs_of.full_seq,
                                                                                 docs_of.abbreviated_seq) \
                    and self.result.base_url is not None:
                # The origin's tarball list, read at the packuments' seq, so naming the same
                # versions: no packument to parse. Links are this origin's (the batch reads
                # /<name>/-/<file> here whatever host a packument names).
                prefix = f"{self._client.url}/{job.name}/-/"
                dists: list[tuple[str, str, str, int | None]] = [(v, prefix + file, sha, size)
                                                                  for v, file, sha, size in docs_of.dists[0]]
            else:
                dists = await self._parsed_dists(job.name, short)
                if dists:
                    self._note_base(job.name, dists[0][1])
            wanted = None if job.whole or self._plan.from_seq == 0 else await self._published(job.name, seen_seq)
            for version, link, sha, size in dists:
                try:
                    key = bytes.fromhex(sha)
                except ValueError:
                    raise MirrorError("origin_unavailable", f"{job.name}@{version}: {sha[:20]!r}... is not a "
                                      "sha512 to check its tarball by") from None
                if (wanted is None or version in wanted) and key not in self._scheduled:
                    self._scheduled.add(key)
                    links.append((job.name, link, sha, size))
            files += [(full_path, Payload(len(full), data=full)), (short_path, Payload(len(short), data=short))]
            self.result.packages.append({"name": job.name, "full": full_path, "abbreviated": short_path})
        try:
            tarballs = await self._client.tarballs(links)
        except BaseException:
            for _, payload in files:
                payload.close()
            raise
        self.result.tarballs += len(tarballs)
        self.result.tarball_bytes += sum(payload.size for payload in tarballs)
        files += [(fmt.tarball_path(sha), payload) for (_, _, sha, _), payload in zip(links, tarballs, strict=True)]
        await self._queue.put(files)

    async def _pulled(self, job: Job, docs_of: Packuments, short: bytes,
                      links: list[tuple[str, str, str, int | None]]) -> list[str] | None:
        """The versions a pulled package carries (see the module docstring), with the links of
        the tarballs the mirror lacks added to ``links``; None when the mirror would hold none
        of its versions (no entry: nothing to store)."""
        if docs_of.dists is None:
            raise MirrorError("origin_unavailable", f"the tarball list of {job.name}, pulled from uplink "
                              f"{docs_of.uplink}, is unreadable: which versions to carry is unknown")
        if self.result.base_url is None:
            self._note_base(job.name, _a_tarball_link(job.name, short))
        available = {version: (file, sha, size) for version, file, sha, size in docs_of.dists[0] if sha}
        if job.versions is None:
            carried = {version for version, (_, _, size) in available.items() if size}
        else:
            carried = set(job.versions & available.keys())
            lacking = sorted(job.versions - carried)
            if lacking:
                self.result.warnings.append(
                    f"{job.name}@{', '.join(lacking[:10])}: needed, but the origin serves no such version with a "
                    "sha512 to check its tarball by (hidden by its pull policy, gone upstream, or sha1 only): "
                    "not mirrored")
        before = frozenset() if job.whole or self._plan.held is None else self._plan.held.get(job.name, frozenset())
        if not carried and not before:
            return None
        prefix = f"{self._client.url}/{job.name}/-/"
        for version in sorted(carried - before):
            file, sha, size = available[version]
            key = bytes.fromhex(sha)
            if key not in self._scheduled:
                self._scheduled.add(key)
                links.append((job.name, prefix + file, sha, size or None))  # 0: not fetched yet, size unknown
        return sorted(carried)

    @staticmethod
    async def _parsed_dists(name: str, short: bytes) -> list[tuple[str, str, str, int | None]]:
        """(version, tarball link, sha512 hex, None: no size) of each version in an abbreviated
        packument (its ``dist.unpackedSize`` is the unpacked files', not the tarball's)."""
        # The abbreviated document has every version's dist and weighs a third less to parse;
        # only (version, link, digest) is kept, so a giant packument is garbage at once.
        what = f"the abbreviated packument of {name}"
        doc = await asyncio.to_thread(load_json, short, what) if len(short) > 1 << 20 else load_json(short, what)
        try:
            return [(v, m["dist"]["tarball"], sha512_of(m["dist"]), None)
                    for v, m in (doc.get("versions") or {}).items()]
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise MirrorError("origin_unavailable", f"{what} has a version without a dist to fetch it by "
                              f"({exc!r})") from None

    async def _published(self, name: str, seen_seq: int) -> set[str]:
        """Versions of ``name`` published after from_seq, up to at least ``seen_seq``."""
        async with self._tail_lock:
            while self._tail_seq < seen_seq:
                events, last = await self._client.changes(self._tail_seq, 10_000)
                for event in events:
                    if event.get("type") == wire.PUBLISH and event.get("version"):
                        self._tail.setdefault(event["name"], set()).add(event["version"])
                if last <= self._tail_seq:
                    break
                self._tail_seq = last
        return self._plan.published.get(name, set()) | self._tail.get(name, set())

    def _note_base(self, name: str, tarball_url: str) -> None:
        if self.result.base_url is not None:
            return
        marker = tarball_url.find(f"/{name}/-/")
        if marker < 0:
            raise MirrorError("origin_unavailable", f"the tarball link {tarball_url} of {name} is not "
                              "<base>/<name>/-/<file>: mirror-apply could not re-base it")
        self.result.base_url = tarball_url[:marker]

    async def _writer(self) -> None:
        # A group at a time on a thread, in order: the loop is what keeps the origin busy, and
        # hashing and framing hundreds of files there made every batch read wait (measured on
        # a full export: 0.3-0.6 s sooner this way, now that the compressor takes the GIL back
        # once per few MB rather than every 128 KB).
        while (files := await self._queue.get()) is not None:
            write = asyncio.ensure_future(asyncio.to_thread(self._write, files))
            try:
                await asyncio.shield(write)
            except asyncio.CancelledError:
                # A thread cannot be stopped: let it finish before the caller tears the sink down.
                await asyncio.wait([write])
                raise

    def _write(self, files: list[tuple[str, Payload]]) -> None:
        for k, (path, payload) in enumerate(files):
            try:
                digest = payload.digest()  # checks a tarball against its packument's integrity first
                self._sink.add(path, payload.data if payload.data is not None else payload.file, payload.size)
            except BaseException:
                for _, rest in files[k:]:
                    rest.close()
                raise
            payload.close()
            self.result.files.append(fmt.FileEntry(path, payload.size, digest))
            self._on_bytes(payload.size)


async def _deal(jobs: list[Job] | AsyncIterator[list[Job]], groups: asyncio.Queue[list[tuple[int, Job]] | None]
                ) -> None:
    """Number the jobs (their packuments' place in the bundle) and hand them out GROUP_PACKAGES
    at a time; a batch from a stream that does not fill a group waits for the next one."""
    numbered = itertools.count()
    pending: list[tuple[int, Job]] = []
    batches = _as_stream(jobs) if isinstance(jobs, list) else jobs
    async for batch in batches:
        pending += [(next(numbered), job) for job in batch]
        while len(pending) >= GROUP_PACKAGES:
            await groups.put(pending[:GROUP_PACKAGES])
            del pending[:GROUP_PACKAGES]
    if pending:
        await groups.put(pending)


async def _as_stream(jobs: list[Job]) -> AsyncIterator[list[Job]]:
    yield jobs


def _first(group: BaseExceptionGroup) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _a_tarball_link(name: str, short: bytes) -> str:
    """One tarball link of an abbreviated packument (they all share the origin's base URL)."""
    doc = load_json(short, f"the abbreviated packument of {name}")
    for manifest in (doc.get("versions") or {}).values() if isinstance(doc, dict) else ():
        link = (manifest.get("dist") or {}).get("tarball") if isinstance(manifest, dict) else None
        if isinstance(link, str):
            return link
    raise MirrorError("origin_unavailable", f"the abbreviated packument of {name} has no tarball link")


def bytes_payload(data: bytes) -> Payload:
    return Payload(len(data), data=data)
