"""A first bundle into an empty mirror (the usual air-gap start): the database is built aside
as a new file and linked into place, instead of written through one huge WAL transaction.

Why: a full bundle's database is a few hundred MB. Through the usual path every page goes to
the WAL, is synced there, and is copied into the database again at the checkpoint; here it
is written once, with no journal, in bigger pages, with the secondary indexes created after
their rows (the store's ``build_mirror_database``).

Why it is crash-safe: nothing in the data dir changes until the database is complete and
durable, and then it becomes visible in one step. The order:

1. continuity is checked against an empty mirror (``mirror_apply`` does it before calling us);
2. the database is built in the staging dir, while a thread flushes the staged tarballs to
   disk (they were written without a sync);
3. the staged tarballs are moved into the blob store (renames, ``FileBlobStore.adopt``),
   then the database file is fsynced and everything synced — the blobs' directory entries
   included;
4. the database is hard-linked to ``registry.sqlite3``: a link never replaces an existing
   name, so a database another writer created meanwhile is never clobbered (we then apply
   the usual way). Its ``meta`` row ``mirror`` is what marks the bundle applied, so the link
   is the commit: a crash before it leaves an empty mirror (with some invisible blobs, which
   the rerun adopts again), a crash after it a mirror with the bundle (the rerun is a no-op
   that heals ``mirror.json`` and the audit log from the outbox).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eghact_common.durable import fsync_dir

from ..storage import DB_FILE as DB
from ..storage import FileBlobStore, MirrorState, PackageRows, build_mirror_database, iso
from .pulled import pulled_rows
from .rows import applied, audit_data, package_rows, read_at, staged_events

_BUILDING = f"{DB}.building"
_BATCH = 256  # packages per batch of rows: bounded memory, few statements


def possible(data_dir: Path, stage: dict[str, Any]) -> bool:
    """Whether the mirror is empty: no database (nor a journal a database would replay)."""
    if any(os.path.lexists(f"{data_dir / DB}{suffix}") for suffix in ("", "-wal", "-journal")):
        return False
    # A package both carried and removed is an odd bundle: the usual path knows what to do.
    return not set(stage.get("removed") or ()) & {entry["name"] for entry in stage["packages"]}


def apply(data_dir: Path, stage_dir: Path, stage: dict[str, Any], staged: dict[str, int]) -> bool:
    """Build, make durable, link. False when a database appeared meanwhile (the blobs are then
    already in the store; the caller applies the usual way). Raises what the rows refuse."""
    building = stage_dir / _BUILDING
    with contextlib.suppress(FileNotFoundError):
        building.unlink()
    # The staged tarballs are dirty in the page cache: flushing them now overlaps the disk
    # with the CPU-bound build, and leaves the final sync little to write.
    flush = threading.Thread(target=os.sync, name="flush-staged")
    flush.start()
    try:
        _build(building, stage, stage_dir / stage["packuments"], staged)
    finally:
        flush.join()
    data_dir.mkdir(parents=True, exist_ok=True)
    FileBlobStore(data_dir / "blobs").adopt(stage_dir / "tarballs")
    with open(building, "rb+") as db:
        os.fsync(db.fileno())
    os.sync()  # the blobs' renames, the data dir and its blob folders
    target = data_dir / DB
    try:
        _link(building, target, data_dir)
    except FileExistsError:
        return False
    fsync_dir(data_dir)
    with contextlib.suppress(FileNotFoundError):
        building.unlink()
    return True


def _link(source: Path, target: Path, data_dir: Path) -> None:
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # The staging dir is on another file system: copy into the data dir first, durably,
        # under a name the origin never opens, then link that.
        copy = data_dir / f".{DB}.{os.getpid()}"
        shutil.copyfile(source, copy)
        try:
            with open(copy, "rb+") as db:
                os.fsync(db.fileno())
            os.link(copy, target)
        finally:
            copy.unlink()


def _build(path: Path, stage: dict[str, Any], pack_path: Path, sizes: dict[str, int]) -> None:
    build_mirror_database(
        path, _package_batches(stage, pack_path, sizes), staged_events(pack_path.parent, stage),
        applied(MirrorState(), stage),
        ("mirror-apply", "mirror", stage["bundle_digest"], audit_data(stage), iso(datetime.now(UTC))))


def _package_batches(stage: dict[str, Any], pack_path: Path, sizes: dict[str, int]) -> Iterator[list[PackageRows]]:
    """The packages' rows, a batch at a time, in the stage's order (bounded memory)."""
    entries = stage["packages"]
    if not entries:
        return
    base, seq = stage["base_url"], stage["to_seq"]
    with open(pack_path, "rb") as pack:
        for start in range(0, len(entries), _BATCH):
            batch = [_rows(e, read_at(pack, e["full"]), read_at(pack, e["abbreviated"]), base, seq, sizes)
                     for e in entries[start:start + _BATCH]]
            yield [rows for rows in batch if rows is not None]


def _rows(entry: dict[str, Any], full: bytes, short: bytes, base: str, seq: int,
          sizes: dict[str, int]) -> PackageRows | None:
    if entry.get("versions") is None:
        return package_rows(entry["name"], full, short, base, seq, sizes)
    return pulled_rows(entry["name"], full, short, base, seq, sizes, entry["versions"], [])  # an empty mirror
