"""The append-only, hash-chained audit log (``audit.jsonl`` in the origin's data dir).

Each line is one record in canonical JSON (sorted keys, no spaces, UTF-8)::

    {"action":..,"actor":..,"data":{..},"hash":..,"id":n,"prev":..,"subject":..,"time":..}

``id`` counts 1, 2, 3, ... without gaps; ``prev`` is the previous line's ``hash`` (64 zeros for
the first); ``hash`` is the sha256 hex of the canonical JSON of the record without ``hash``.
Editing, deleting, reordering or inserting a record therefore breaks the chain at that line.
(Cutting whole lines off the end does not: compare ``tail`` with the id the database expects.)

The origin seals records inside its SQLite transaction (an outbox) and appends them after the
commit, so :func:`seal` is pure; after a crash it re-appends what :func:`tail` shows missing.
A crash during :func:`append` can leave a torn last line: :func:`tail` refuses to build on it
and :func:`repair_tail` removes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from eghact_common.durable import fsync_dir

__all__ = [
    "GENESIS",
    "AuditLogCorrupt",
    "AuditVerification",
    "append",
    "canonical_line",
    "iso_time",
    "repair_tail",
    "seal",
    "tail",
    "verify",
]

GENESIS = "0" * 64
_FIELDS = {"id": int, "time": str, "action": str, "actor": str, "subject": str, "data": dict}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TAIL_BLOCK = 64 * 1024


class AuditLogCorrupt(ValueError):
    """The end of the log is not a sound record, so nothing may be chained onto it."""


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    records: int  # records that verified, all of them before the first bad line
    first_bad_line: int | None  # 1-based
    reason: str | None


def iso_time(moment: datetime) -> str:
    """``moment`` as the log writes it: ISO-8601 UTC with milliseconds, like npm's ``time``."""
    if moment.tzinfo is None:
        raise ValueError("an audit time needs a timezone; pass an aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seal(record: dict[str, Any], prev_hash: str) -> dict[str, Any]:
    """A copy of ``record`` chained onto ``prev_hash``: with ``prev`` and ``hash`` set.

    Pure and deterministic. Raises ``ValueError`` on a record that does not fit the schema or
    cannot be serialised canonically (NaN, lone surrogates), so that nothing unverifiable is
    ever written.
    """
    problems = _schema_problems(record, sealed=False)
    if not isinstance(prev_hash, str) or not _HEX64.match(prev_hash):
        problems.append(f"prev_hash must be 64 lowercase hex characters, got {prev_hash!r}")
    if problems:
        raise ValueError("cannot seal audit record: " + "; ".join(problems))
    try:
        # The round trip gives a deep copy in exactly the form that will be read back (tuples
        # become lists, int keys strings), so an outbox copy equals the line, and a caller who
        # later mutates ``record["data"]`` cannot change what was sealed.
        sealed: dict[str, Any] = json.loads(_canonical({**record, "prev": prev_hash}))
    except TypeError as exc:  # a value JSON cannot hold, or keys of mixed types
        raise ValueError(f"cannot seal audit record: {exc}") from exc
    sealed["hash"] = _hash(sealed)
    return sealed


def canonical_line(sealed: dict[str, Any]) -> bytes:
    """The exact bytes of ``sealed`` as one line of the log, trailing newline included."""
    if "hash" not in sealed:
        raise ValueError("record is not sealed")
    return _canonical(sealed) + b"\n"


def append(path: Path, sealed_records: list[dict[str, Any]]) -> None:
    """Append ``sealed_records`` (a contiguous run of the chain) with one write, then fsync.

    The file is created 0o600. One ``O_APPEND`` write keeps concurrent appends from
    interleaving within a batch (on a local filesystem; not on NFS); each record is re-checked
    first, because a bad line written once would fail :func:`verify` forever. It does not read
    the file: continuity with what is already there is the caller's (it knows the chain head
    from its database).
    """
    if not sealed_records:
        return
    lines = []
    for i, record in enumerate(sealed_records):
        problems = _schema_problems(record, sealed=True)
        if not problems and record["hash"] != _hash(record):
            problems.append("hash does not match the record")
        if not problems and i and record["id"] != sealed_records[i - 1]["id"] + 1:
            problems.append(f"id {record['id']} does not follow {sealed_records[i - 1]['id']}")
        if not problems and i and record["prev"] != sealed_records[i - 1]["hash"]:
            problems.append("prev is not the hash of the record before it")
        if problems:
            raise ValueError(f"cannot append audit record {i}: " + "; ".join(problems))
        lines.append(canonical_line(record))
    payload = memoryview(b"".join(lines))

    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        created = True
    except FileExistsError:
        fd = os.open(path, flags)
        created = False
    try:
        while payload:
            written = os.write(fd, payload)
            payload = payload[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        # A new file's name lives in the directory; without this a crash could lose the whole log.
        fsync_dir(Path(path).parent)


def tail(path: Path) -> tuple[int, str]:
    """``(id, hash)`` of the last record, reading only the end of the file; ``(0, GENESIS)`` if none.

    Raises :class:`AuditLogCorrupt` when the last line is torn (no newline) or not a sound
    record: appending after it would bury the damage inside the chain.
    """
    f = _open_existing(path, "rb")
    if f is None:
        return 0, GENESIS
    with f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return 0, GENESIS
        f.seek(end - 1)
        if f.read(1) != b"\n":
            raise AuditLogCorrupt(f"{path}: the last line is torn (no newline); see repair_tail")
        start = _line_start(f, end - 1)
        f.seek(start)
        line = f.read(end - start)
    record = _parse(line)
    if isinstance(record, str):
        raise AuditLogCorrupt(f"{path}: the last line is not a sound record: {record}")
    return record["id"], record["hash"]


def repair_tail(path: Path) -> int:
    """Cut a torn last line (one without its newline, left by a crash); return bytes removed.

    Complete lines are never touched: a complete bad line is tampering, not a crash.
    """
    f = _open_existing(path, "r+b")
    if f is None:
        return 0
    with f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return 0
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return 0
        keep = _line_start(f, end)
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return end - keep


def verify(path: Path) -> AuditVerification:
    """Check the whole chain, streaming; report the first record that is broken or tampered with."""
    f = _open_existing(path, "rb")
    if f is None:
        return AuditVerification(ok=True, records=0, first_bad_line=None, reason=None)
    expected_id, prev = 1, GENESIS
    with f:
        # Binary lines split on b"\n" only; str.splitlines would also split on U+2028 and
        # friends, which canonical JSON (ensure_ascii=False) writes unescaped inside strings.
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return _bad(number, "truncated last line (no newline)")
            record = _parse(line)
            if isinstance(record, str):
                return _bad(number, record)
            if record["id"] != expected_id:
                return _bad(number, f"id {record['id']} where {expected_id} was expected (not contiguous)")
            if record["prev"] != prev:
                return _bad(number, "prev does not match the hash of the previous record")
            expected_id, prev = expected_id + 1, record["hash"]
    return AuditVerification(ok=True, records=expected_id - 1, first_bad_line=None, reason=None)


def _bad(number: int, reason: str) -> AuditVerification:
    return AuditVerification(ok=False, records=number - 1, first_bad_line=number, reason=reason)


def _parse(line: bytes) -> dict[str, Any] | str:
    """The sealed record on ``line`` (with its newline), or why it is not one."""
    try:
        record = json.loads(line)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both
        return f"bad JSON: {exc}"
    if not isinstance(record, dict):
        return "not a JSON object"
    problems = _schema_problems(record, sealed=True)
    if problems:
        return "; ".join(problems)
    try:
        canonical = canonical_line(record)
    except ValueError as exc:
        return f"not serialisable canonically: {exc}"
    # The hash covers the parsed record; insisting on canonical bytes also catches edits
    # that change only the text (key order, spacing, escapes, duplicate keys).
    if canonical != line:
        return "not in canonical form"
    if record["hash"] != _hash(record):
        return "hash mismatch"
    return record


def _schema_problems(record: Any, *, sealed: bool) -> list[str]:
    if not isinstance(record, dict):
        return ["a record is a dict"]
    problems = []
    allowed = set(_FIELDS) | ({"prev", "hash"} if sealed else set())
    missing = allowed - record.keys()
    extra = record.keys() - allowed
    if missing:
        problems.append("missing " + ", ".join(sorted(missing)))
    if extra:
        problems.append("unexpected " + ", ".join(sorted(map(str, extra))))
    for field, kind in _FIELDS.items():
        value = record.get(field)
        # bool is an int to isinstance, and never a valid id.
        if field in record and (not isinstance(value, kind) or isinstance(value, bool)):
            problems.append(f"{field} must be {kind.__name__}")
    if isinstance(record.get("id"), int) and not isinstance(record["id"], bool) and record["id"] < 1:
        problems.append("id must be >= 1")
    if isinstance(record.get("time"), str) and not _is_utc(record["time"]):
        problems.append(f"time {record['time']!r} is not ISO-8601 UTC")
    for field in ("prev", "hash") if sealed else ():
        if field in record and not (isinstance(record[field], str) and _HEX64.match(record[field])):
            problems.append(f"{field} must be 64 lowercase hex characters")
    return problems


def _is_utc(text: str) -> bool:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return False
    return moment.utcoffset() == timedelta(0)


def _canonical(obj: dict[str, Any]) -> bytes:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode()


def _hash(sealed: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in sealed.items() if k != "hash"})).hexdigest()


def _line_start(f: BinaryIO, end: int) -> int:
    """Offset just after the last b"\\n" before ``end`` (0 if none), reading backwards in blocks."""
    pos = end
    while pos > 0:
        step = min(_TAIL_BLOCK, pos)
        pos -= step
        f.seek(pos)
        newline = f.read(step).rfind(b"\n")
        if newline >= 0:
            return pos + newline + 1
    return 0


def _open_existing(path: Path, mode: str) -> BinaryIO | None:
    try:
        return open(path, mode)  # type: ignore[return-value]  # mode is always binary here
    except FileNotFoundError:
        return None
