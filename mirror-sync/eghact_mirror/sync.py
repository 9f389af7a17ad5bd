"""``eghact-mirror sync``: an online follower of an origin's changes feed.

Each round reads one page of the feed after the mirror's seq (long-polling when caught up),
collects what changed (``collect``, tarballs checked against their integrity before they are
staged), and applies it through the same staged ``mirror-apply`` path as ``import`` — so a
synced mirror and an imported one are the same thing, and either can continue the other.

The synthetic chain. A batch is a link like a bundle: its index (the bundle index format,
``source: "sync"``, signed when ``--key`` is given) lists its range, files and digests, its
digest is the sha512 of those index bytes, and it names the previous link's digest. The
follower keeps each batch's index in ``DIR/sync/<digest>.json`` *before* applying it, so:

* ``export --after DIR`` (``chain``) finds the selection and digest of the last batch, and a
  staging host can export bundles that continue a copy of its synced mirror;
* resuming is reading ``DIR/mirror.json``. mirror-apply writes that file just after its
  commit; should a crash fall between the two, the file is one batch behind, mirror-apply
  answers ``out_of_order``, and the follower retries from the journal's batch that continues
  the file's position (mirror-apply decides, under its lock, which one is right).

Resumable at any point, bounded: ``--once`` stops when caught up, ``--max-batches`` after N
batches, SIGTERM/SIGINT between batches.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import chain, inputs, stage
from . import index as fmt
from .client import OriginClient
from .collect import PACKAGE_EVENTS, Collector, Job, RangePlan, bytes_payload, held_after
from .errors import MirrorError
from .limits import Limits
from .selection import SelectionSpec
from .signing import SigningKey


@dataclass(frozen=True)
class SyncOptions:
    origin: str
    mirror: Path
    filters: tuple[str, ...] = ()
    once: bool = False
    batch: int = 1000
    max_batches: int | None = None
    wait: float = 30.0
    token: str | None = None
    limits: Limits = field(default_factory=Limits)


@dataclass
class SyncReport:
    batches: int = 0
    seq: int = 0
    packages: int = 0
    tarballs: int = 0
    digests: list[str] = field(default_factory=list)


async def sync(options: SyncOptions, key: SigningKey | None = None, *, stop: asyncio.Event | None = None,
               on_batch: Callable[[fmt.Index, str], None] = lambda index, digest: None) -> SyncReport:
    stop = stop or asyncio.Event()
    spec = SelectionSpec(filters=options.filters)
    report = SyncReport()
    async with OriginClient(options.origin, token=options.token, limits=options.limits) as client:
        origin_id = (await client.health())["registry_id"]
        link = chain.mirror_link(options.mirror)
        report.seq = link.seq
        if link.origin_id not in (None, origin_id):
            raise MirrorError("wrong_origin", f"{options.mirror} mirrors origin {link.origin_id}; "
                              f"{options.origin} is origin {origin_id}")
        while not stop.is_set() and (options.max_batches is None or report.batches < options.max_batches):
            wait = None if options.once else options.wait
            events, last = await _page(client, link.seq, options.batch, wait, stop)
            if not events and last <= link.seq:
                if options.once or stop.is_set():
                    break
                continue
            try:
                index, digest = await _batch(client, options, spec, origin_id, link, events, last, key)
            except MirrorError as error:
                successor = _successor(options.mirror, link) if error.code == "out_of_order" else None
                if successor is None:
                    raise
                link = successor  # mirror.json was one batch behind the database: go on from there
                continue
            link = chain.link_of(index, digest)
            report.batches += 1
            report.seq = link.seq
            report.packages += len(index.packages)
            report.tarballs += index.tarball_count
            report.digests.append(digest)
            on_batch(index, digest)
    return report


async def _page(client: OriginClient, since: int, limit: int, wait: float | None,
                stop: asyncio.Event) -> tuple[list[dict[str, object]], int]:
    """One feed page; a long poll is abandoned as soon as ``stop`` is set."""
    fetch = asyncio.ensure_future(client.changes(since, limit, wait=wait))
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not fetch.done():
        fetch.cancel()
        return [], since
    return fetch.result()


async def _batch(client: OriginClient, options: SyncOptions, spec: SelectionSpec, origin_id: str,
                 link: chain.Link, events: list[dict[str, object]], last: int,
                 key: SigningKey | None) -> tuple[fmt.Index, str]:
    changed = sorted({str(e["name"]) for e in events if e.get("type") in PACKAGE_EVENTS})
    published: dict[str, set[str]] = {}
    for e in events:
        if e.get("type") == "publish" and e.get("version"):
            published.setdefault(str(e["name"]), set()).add(str(e["version"]))
    kept = [e for e in events if spec.matches(str(e["name"]))]
    lines = b"".join(json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode() + b"\n" for e in kept)
    jobs = [Job(name, False) for name in changed if spec.matches(name)]
    plan = RangePlan(link.seq, last, jobs, published, bytes_payload(lines), chain.pulled_of(link))
    staging = stage.create(options.mirror)
    sink = stage.StageSink(staging)
    try:
        collector = Collector(client, sink)
        try:
            got = await collector.run(plan)
            files = tuple(got.files)  # a batch is small: its entries can be objects
        finally:
            collector.result.files.close()
        index = fmt.Index(
            origin_id=origin_id, origin_url=got.base_url or client.url, from_seq=link.seq, to_seq=last,
            created=datetime.now(UTC).isoformat(timespec="seconds"), previous_digest=link.digest,
            key_fingerprint=key.fingerprint if key else None, source="sync",
            selection={"filters": list(options.filters), "closure": False, "top": None, "lockfiles": [],
                       "names": None, "pulled": held_after(plan.held, got.packages, got.removed)},
            packages=tuple(got.packages), removed=tuple(got.removed), event_count=len(kept), files=files,
            warnings=tuple(got.warnings))
        index_bytes = index.encode()
        digest = fmt.digest(index_bytes)
        _journal(options.mirror, digest, index_bytes, key)
        sink.finish(index, digest)
        try:
            await asyncio.to_thread(stage.apply, options.mirror, staging)
        except MirrorError:
            chain.journal_path(options.mirror, digest).unlink(missing_ok=True)
            raise
    finally:
        sink.close()
        await asyncio.to_thread(stage.remove, staging)
    return index, digest


def _journal(mirror: Path, digest: str, index_bytes: bytes, key: SigningKey | None) -> None:
    path = chain.journal_path(mirror, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(index_bytes)
    tmp.replace(path)
    if key is not None:
        path.with_suffix(".sig").write_bytes(key.sign(index_bytes))


def _successor(mirror: Path, link: chain.Link) -> chain.Link | None:
    """The journaled batch that continues ``link``, if a crash may have applied it unrecorded."""
    folder = mirror / "sync"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data, body = inputs.read_json(path, "the journaled index")
            index = fmt.index_of(body)
        except MirrorError:
            continue  # not one of ours (or damaged): it continues nothing
        if index.previous_digest == link.digest and index.from_seq == link.seq and fmt.digest(data) != link.digest:
            return chain.link_of(index, fmt.digest(data))
    return None
