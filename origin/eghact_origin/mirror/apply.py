"""Applying a verified mirror bundle to an origin data dir (``eghact-origin mirror-apply``).

The origin owns its data-dir format; the mirror tool (which may not import the origin)
verifies a bundle's signature and digests, unpacks it into a *staged* directory, and runs
this command. Staged layout (a contract with ``eghact_mirror``, format 5: ``eghact_common.wire.STAGE_FORMAT``)::

    STAGE/stage.json   {"format": 5, "origin_id", "from_seq", "to_seq", "bundle_digest",
                        "previous_digest", "base_url", "packuments": "packuments.pack",
                        "packages": [{"name", "full": [OFFSET, LENGTH],
                                      "abbreviated": [OFFSET, LENGTH],
                                      "versions": [...] (a pulled package only)} ...],
                        "removed": [names every version of which is unpublished],
                        "tarballs": {"<sha512 hex>": SIZE, ...},
                        "events": "events.jsonl", "event_count": N}
    STAGE/events.jsonl                  the change events (origin seqs), one a line, in order
    STAGE/packuments.pack               the packuments exactly as the origin served them
    STAGE/tarballs/<ab>/<sha512>        each tarball ``tarballs`` lists, named by its sha512

The stager vouches for the tarballs' names — eghact-mirror checked every byte against the
signed index (import) or each tarball against its packument's integrity (sync) — so they are
renamed into the blob store, not re-read (``FileBlobStore.adopt``): a full bundle's tens of
thousands of blobs move in a few hundred renames, and are synced once.

A package entry with ``versions`` is a package the origin pulled from an uplink: it carries
those versions' tarballs only, and the mirror stores the union of what it holds and what the
bundle brings (:mod:`.pulled`). Format 5 added that key (4 had none): an older mirror-apply
refuses the stage as ``bad_stage`` rather than taking it for a whole package.

Packuments are stored as the origin served them (only the base URL of tarball links is
put back to the mark), so a mirror answers byte for byte what the origin answered; the
origin's seqs are kept, so an edge can follow a mirror's feed as it follows an origin's.
The metadata is written in one transaction, which commits only once the blobs are durable
(they are moved in and synced beside it): a crash leaves the mirror before the bundle or
after it, never between (blobs moved in before a crash are invisible until metadata names
them). Continuity is checked again inside that transaction,
whatever the caller checked before.

A first bundle into an empty mirror takes another way to the same result (:mod:`.fresh`):
the database is built aside as a new file, with no journal, and linked into place once it
and the blobs are durable — writing a few hundred MB once instead of twice (WAL, then
checkpoint). Both ways write the same rows (:func:`package_rows`; the store's one row writer).
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from eghact_common.durable import write_atomic
from eghact_common.wire import STAGE_FORMAT

from ..storage import FileBlobStore, MirrorState, MirrorWriter, PackageRows, SqliteMetadataStore
from .errors import MirrorApplyError
from .pulled import pulled_rows
from .rows import applied, audit_data, package_rows, read_at, staged_events

__all__ = ["ApplyReport", "MirrorApplyError", "apply_staged"]

_HEX512 = re.compile(r"^[0-9a-f]{128}$")


@dataclass(frozen=True)
class ApplyReport:
    applied: bool
    packages: int
    tarballs: int
    events: int
    to_seq: int


def _check_continuity(state: MirrorState, stage: dict[str, Any]) -> bool:
    """True to apply, False when the bundle is the one last applied (a no-op); raises otherwise."""
    if stage["bundle_digest"] == state.digest:
        return False
    if stage["bundle_digest"] in state.chain:
        raise MirrorApplyError("the bundle was applied before and has been superseded: a replay",
                               code="replay", exit_code=16)
    if state.origin_id not in (None, stage["origin_id"]):
        raise MirrorApplyError(f"the bundle comes from origin {stage['origin_id']}, this mirror follows "
                               f"{state.origin_id}", code="wrong_origin", exit_code=11)
    if stage["to_seq"] <= state.seq and state.chain:
        raise MirrorApplyError(f"the bundle ends at seq {stage['to_seq']}, the mirror is already at {state.seq}",
                               code="downgrade", exit_code=12)
    if stage["from_seq"] != state.seq or stage.get("previous_digest") != state.digest:
        raise MirrorApplyError(
            f"the bundle starts at seq {stage['from_seq']} after {stage.get('previous_digest')}, the mirror is at "
            f"seq {state.seq} after {state.digest}: apply the bundles in order", code="out_of_order",
            exit_code=13)
    return True


def apply_staged(data_dir: Path, stage_dir: Path) -> ApplyReport:
    stage = json.loads((stage_dir / "stage.json").read_bytes())
    if stage.get("format") != STAGE_FORMAT:
        raise MirrorApplyError(f"staged format {stage.get('format')} is not {STAGE_FORMAT}", code="bad_stage",
                               exit_code=10)
    staged: dict[str, int] = stage.get("tarballs") or {}
    if not all(_HEX512.match(digest) and isinstance(size, int) for digest, size in staged.items()):
        raise MirrorApplyError("the staged tarball list names something that is not a sha512", code="bad_stage",
                               exit_code=10)
    if not isinstance(stage.get("event_count"), int):
        raise MirrorApplyError("the staged layout has no event count", code="bad_stage", exit_code=10)
    report = ApplyReport(True, len(stage["packages"]), len(staged), stage["event_count"], stage["to_seq"])
    if _apply_fresh(data_dir, stage_dir, stage, staged):
        return report
    data_dir.mkdir(parents=True, exist_ok=True)
    blobs = FileBlobStore(data_dir / "blobs")
    store = SqliteMetadataStore(data_dir)
    try:
        state = store.mirror_state_sync()
        if not _check_continuity(state, stage):
            # Also heals a mirror.json left one bundle behind by a crash after the commit.
            _write_mirror_json(data_dir, state)
            return ApplyReport(False, 0, 0, 0, stage["to_seq"])
        # No fsync per blob (tens of thousands in a full bundle): one sync covers them all. It
        # runs beside the metadata writes (flushing a few hundred MB takes a while) and the
        # transaction waits for it before it commits: nothing points at a blob not yet durable.
        durable = _Durable(blobs, stage_dir / "tarballs") if staged else None
        try:
            with open(stage_dir / stage["packuments"], "rb") if stage["packages"] else io.BytesIO() as pack:
                freed = store.mirror_apply_sync(lambda writer: _apply(writer, stage_dir, stage, pack, staged,
                                                                      durable.wait if durable else lambda: None))
        finally:
            if durable is not None:
                durable.thread.join()
        for blob in freed:
            blobs.delete(blob)
        _write_mirror_json(data_dir, store.mirror_state_sync())
        return report
    finally:
        store.close()


def _apply_fresh(data_dir: Path, stage_dir: Path, stage: dict[str, Any], staged: dict[str, int]) -> bool:
    """A first bundle into an empty mirror, built aside (``mirror_fresh``); False when the mirror
    is not empty. Continuity is checked first, against an empty mirror: a refusal changes nothing."""
    from . import fresh as mirror_fresh  # imported when needed: fresh imports nothing of apply

    if not mirror_fresh.possible(data_dir, stage):
        return False
    _check_continuity(MirrorState(), stage)
    if not mirror_fresh.apply(data_dir, stage_dir, stage, staged):
        return False
    store = SqliteMetadataStore(data_dir)  # appends the outbox's audit record to audit.jsonl
    try:
        _write_mirror_json(data_dir, store.mirror_state_sync())
    finally:
        store.close()
    return True


def _apply(writer: MirrorWriter, stage_dir: Path, stage: dict[str, Any], pack: BinaryIO, staged: dict[str, int],
           before_commit: Callable[[], None]) -> list[str]:
    state = writer.state()
    if not _check_continuity(state, stage):  # re-checked under the write lock
        return []
    # Blobs already in the mirror also satisfy versions (incremental bundles carry only new
    # tarballs); their sizes are known from the versions that brought them.
    sizes = writer.blob_sizes()
    sizes.update(staged)
    existing = writer.package_names()
    freed: list[str] = []
    base = stage["base_url"]
    for entry in stage["packages"]:
        name = entry["name"]
        full, short = read_at(pack, entry["full"]), read_at(pack, entry["abbreviated"])
        if entry.get("versions") is None:
            rows: PackageRows | None = package_rows(name, full, short, base, stage["to_seq"], sizes)
        else:  # pulled: the versions it carries, added to those the mirror holds
            rows = pulled_rows(name, full, short, base, stage["to_seq"], sizes, entry["versions"],
                               writer.live_versions(name) if name in existing else [])
        if rows is not None:
            freed += writer.write_package(rows, name in existing)
    for name in stage.get("removed", []):
        freed += writer.remove_package(name)
    writer.write_events(staged_events(stage_dir, stage), stage["to_seq"])
    writer.set_state(applied(state, stage))
    writer.audit("mirror-apply", "mirror", stage["bundle_digest"], audit_data(stage))
    # Only blobs no live version still names are freed.
    live = writer.live_digests(freed)
    before_commit()
    return [d for d in freed if d not in live]


class _Durable:
    """The staged blobs moved into the store and synced to disk, on a thread; :meth:`wait`
    returns once they are durable, or raises what failed."""

    def __init__(self, blobs: FileBlobStore, tree: Path):
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(blobs, tree), name="blobs-durable")
        self.thread.start()

    def _run(self, blobs: FileBlobStore, tree: Path) -> None:
        try:
            blobs.adopt(tree)
            os.sync()
        except BaseException as exc:  # raised again by wait(), in the transaction
            self._error = exc

    def wait(self) -> None:
        self.thread.join()
        if self._error is not None:
            raise self._error


def _write_mirror_json(data_dir: Path, state: MirrorState) -> None:
    """A human-readable copy of the mirror's position (the database holds the truth)."""
    body = {"source_origin_id": state.origin_id, "applied_seq": state.seq, "last_bundle": state.digest,
            "bundle_chain": list(state.chain)}
    write_atomic(data_dir / "mirror.json", json.dumps(body, indent=2).encode(), mode=0o600)  # 0600: as mkstemp made it
