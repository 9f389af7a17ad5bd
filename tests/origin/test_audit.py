"""The hash-chained audit log: sealing, appending, the tail, and catching the first tampered line."""

from __future__ import annotations

import hashlib
import json
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eghact_origin import audit
from eghact_origin.audit import (
    GENESIS,
    AuditLogCorrupt,
    AuditVerification,
    append,
    canonical_line,
    iso_time,
    repair_tail,
    seal,
    tail,
    verify,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ACTIONS = ["publish", "deprecate", "unpublish", "dist-tag", "token-create", "token-revoke", "advisory"]


def record(n: int, **data: Any) -> dict[str, Any]:
    return {
        "id": n,
        "time": iso_time(T0 + timedelta(seconds=n)),
        "action": ACTIONS[n % len(ACTIONS)],
        "actor": f"user{n % 3}",
        "subject": f"@eghact/plugin-{n}",
        "data": {"version": f"1.0.{n}", "note": "ünïcødé \u2028 line sep", **data},
    }


def chain(count: int, start: int = 1, prev: str = GENESIS) -> list[dict[str, Any]]:
    sealed = []
    for n in range(start, start + count):
        sealed.append(seal(record(n), prev))
        prev = sealed[-1]["hash"]
    return sealed


def write_log(path: Path, count: int) -> list[dict[str, Any]]:
    records = chain(count)
    append(path, records)
    return records


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def bad_at(path: Path, line: int) -> AuditVerification:
    result = verify(path)
    assert (result.ok, result.first_bad_line, result.records) == (False, line, line - 1), result
    assert result.reason
    return result


# --- sealing ------------------------------------------------------------------------------------


def test_seal_is_pure_and_deterministic() -> None:
    rec = record(1)
    before = json.dumps(rec, sort_keys=True)
    first, second = seal(rec, GENESIS), seal(rec, GENESIS)
    assert first == second
    assert json.dumps(rec, sort_keys=True) == before  # the input is not touched
    assert first["prev"] == GENESIS and set(first) == {*rec, "prev", "hash"}


def test_sealed_record_is_a_copy_in_the_form_read_back() -> None:
    rec = record(3, tags=("a", "b"), counts={1: 2})
    sealed = seal(rec, GENESIS)
    assert sealed == json.loads(canonical_line(sealed))
    assert sealed["data"]["tags"] == ["a", "b"] and sealed["data"]["counts"] == {"1": 2}
    rec["data"]["note"] = "changed afterwards"
    assert sealed["data"]["note"] != rec["data"]["note"]


def test_hash_is_sha256_of_the_canonical_record_without_hash() -> None:
    sealed = seal(record(7), "ab" * 32)
    body = {k: v for k, v in sealed.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert sealed["hash"] == hashlib.sha256(text.encode()).hexdigest()


def test_canonical_line_is_sorted_compact_utf8() -> None:
    sealed = seal(record(1), GENESIS)
    line = canonical_line(sealed)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert line.startswith(b'{"action":') and b", " not in line and b'": ' not in line
    assert "ünïcødé".encode() in line  # not escaped
    assert json.loads(line) == sealed


def test_a_different_prev_gives_a_different_hash() -> None:
    assert seal(record(1), GENESIS)["hash"] != seal(record(1), "f" * 64)["hash"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r.pop("actor"), "missing actor"),
        (lambda r: r.update(extra=1), "unexpected extra"),
        (lambda r: r.update(prev=GENESIS), "unexpected prev"),  # sealing twice is a bug
        (lambda r: r.update(id=True), "id must be int"),
        (lambda r: r.update(id=0), "id must be >= 1"),
        (lambda r: r.update(id="1"), "id must be int"),
        (lambda r: r.update(data=[1]), "data must be dict"),
        (lambda r: r.update(time="2024-05-01T12:00:00"), "not ISO-8601 UTC"),  # naive
        (lambda r: r.update(time="2024-05-01T14:00:00+02:00"), "not ISO-8601 UTC"),
        (lambda r: r.update(time="yesterday"), "not ISO-8601 UTC"),
        (lambda r: r["data"].update(x=float("nan")), "Out of range float"),
        (lambda r: r["data"].update(x=object()), "not JSON serializable"),
        (lambda r: r["data"].update(x="\ud800"), "surrogate"),
    ],
)
def test_seal_rejects_records_that_cannot_be_verified(change: Any, problem: str) -> None:
    rec = record(1)
    change(rec)
    with pytest.raises(ValueError, match=problem):
        seal(rec, GENESIS)


@pytest.mark.parametrize("prev", ["", "0" * 63, "G" * 64, "AB" * 32, None])
def test_seal_rejects_a_bad_prev_hash(prev: Any) -> None:
    with pytest.raises(ValueError, match="prev_hash"):
        seal(record(1), prev)


def test_iso_time() -> None:
    assert iso_time(datetime(2024, 1, 2, 3, 4, 5, 678900, tzinfo=UTC)) == "2024-01-02T03:04:05.678Z"
    assert iso_time(datetime(2024, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=2)))) == "2024-01-02T03:00:00.000Z"
    with pytest.raises(ValueError):
        iso_time(datetime(2024, 1, 2))


# --- appending and the tail ---------------------------------------------------------------------


def test_chain_written_in_batches_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    records = chain(10)
    for batch in (records[:1], records[1:4], [], records[4:]):
        append(path, batch)
    assert verify(path) == AuditVerification(ok=True, records=10, first_bad_line=None, reason=None)
    assert tail(path) == (10, records[-1]["hash"])
    assert path.read_bytes() == b"".join(map(canonical_line, records))


def test_append_creates_the_file_private(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    append(path, [])
    assert not path.exists()  # nothing to write, nothing created
    write_log(path, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_append_refuses_a_broken_batch(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    one, two, three = chain(3)
    cases = [
        ([one, three], "does not follow"),
        ([one, {**two, "prev": GENESIS, "hash": seal(record(2), GENESIS)["hash"]}], "prev is not the hash"),
        ([{**one, "actor": "mallory"}], "hash does not match"),
        ([record(1)], "missing"),
    ]
    for batch, problem in cases:
        with pytest.raises(ValueError, match=problem):
            append(path, batch)
    assert not path.exists()  # nothing half-written


def test_empty_and_absent_logs(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    assert tail(path) == (0, GENESIS)
    assert verify(path) == AuditVerification(ok=True, records=0, first_bad_line=None, reason=None)
    path.write_bytes(b"")
    assert tail(path) == (0, GENESIS)
    assert verify(path).ok


def test_torn_last_line_blocks_the_tail_until_repaired(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_log(path, 5)
    whole = path.read_bytes()
    path.write_bytes(whole + canonical_line(chain(1, 6, records[-1]["hash"])[0])[:40])  # a crash mid-write
    with pytest.raises(AuditLogCorrupt, match="torn"):
        tail(path)
    assert repair_tail(path) == 40
    assert path.read_bytes() == whole
    assert repair_tail(path) == 0
    assert tail(path) == (5, records[-1]["hash"])
    append(path, chain(1, 6, records[-1]["hash"]))
    assert verify(path).records == 6


def test_repair_never_cuts_a_complete_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    lines = lines_of(path)
    path.write_bytes(b"\n".join([*lines[:2], lines[2].replace(b"user", b"mall")]) + b"\n")
    assert repair_tail(path) == 0
    with pytest.raises(AuditLogCorrupt, match="hash mismatch"):
        tail(path)


def test_repair_of_a_lone_fragment_and_of_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    assert repair_tail(path) == 0
    path.write_bytes(b'{"id":1,"ti')
    assert repair_tail(path) == 11
    assert tail(path) == (0, GENESIS)


def test_tail_of_a_last_line_longer_than_a_read_block(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    small = write_log(path, 3)
    big = seal(record(4, blob="x" * (3 * audit._TAIL_BLOCK + 17)), small[-1]["hash"])
    append(path, [big])
    assert tail(path) == (4, big["hash"])
    assert verify(path).records == 4


def test_single_record_log(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    (only,) = write_log(path, 1)
    assert tail(path) == (1, only["hash"])


class CountingFile:
    """Wraps a file to count the bytes read through it."""

    def __init__(self, f: Any, counter: list[int]):
        self._f, self._counter = f, counter

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._counter[0] += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> CountingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def test_tail_reads_only_the_end_of_a_large_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "audit.jsonl"
    records = write_log(path, 2000)
    # Grow the file to 4 GiB without writing it: a hole before the real records. Reading it all
    # would take seconds and gigabytes; tail must not care.
    body = path.read_bytes()
    with open(path, "r+b") as f:
        f.truncate(0)
        f.seek(4 * 1024**3)
        f.write(b"\n" + body)
    counter = [0]
    real_open = open
    monkeypatch.setattr(audit, "open", lambda *a, **k: CountingFile(real_open(*a, **k), counter), raising=False)
    assert tail(path) == (2000, records[-1]["hash"])
    assert counter[0] <= 2 * audit._TAIL_BLOCK


def test_large_log_verifies_and_tail_agrees(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    prev, total = GENESIS, 0
    for start in range(1, 20_001, 2_000):
        batch = chain(2_000, start, prev)
        append(path, batch)
        prev, total = batch[-1]["hash"], total + len(batch)
    assert verify(path).records == total == 20_000
    assert tail(path) == (total, prev)


# --- tampering ----------------------------------------------------------------------------------


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    write_log(path, 12)
    return path


def rewrite(path: Path, lines: list[bytes], *, newline_at_end: bool = True) -> None:
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline_at_end else b""))


@pytest.mark.parametrize("k", [1, 6, 12])
@pytest.mark.parametrize("field", [b'"actor":"', b'"data":{', b'"hash":"', b'"prev":"', b'"time":"', b'"id":'])
def test_flipping_one_byte_in_record_k(log: Path, k: int, field: bytes) -> None:
    lines = lines_of(log)
    at = lines[k - 1].index(field) + len(field)
    line = bytearray(lines[k - 1])
    line[at] ^= 0x01
    lines[k - 1] = bytes(line)
    rewrite(log, lines)
    bad_at(log, k)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_any_single_byte_change_is_caught_at_its_line(tmp_path: Path, position: int, value: int) -> None:
    path = tmp_path / "prop.jsonl"
    if not path.exists():
        write_log(path, 5)
    original = path.read_bytes()
    try:
        position %= len(original)
        if original[position] == value:
            return
        changed = bytearray(original)
        changed[position] = value
        path.write_bytes(bytes(changed))
        line = original.count(b"\n", 0, position) + 1  # the newline ending a line belongs to it
        bad_at(path, line)
    finally:
        path.write_bytes(original)


@pytest.mark.parametrize("k", [1, 5, 12])
def test_deleting_line_k(log: Path, k: int) -> None:
    lines = lines_of(log)
    del lines[k - 1]
    rewrite(log, lines)
    if k == 12:
        # Cutting whole lines off the end leaves a shorter, sound chain; tail vs the database catches it.
        assert verify(log).ok and verify(log).records == 11
    else:
        assert "not contiguous" in (bad_at(log, k).reason or "")


@pytest.mark.parametrize("k", [1, 5, 11])
def test_reordering_lines_k_and_k_plus_1(log: Path, k: int) -> None:
    lines = lines_of(log)
    lines[k - 1], lines[k] = lines[k], lines[k - 1]
    rewrite(log, lines)
    bad_at(log, k)


def test_replaying_a_record(log: Path) -> None:
    lines = lines_of(log)
    rewrite(log, [*lines[:4], lines[3], *lines[4:]])
    bad_at(log, 5)


def test_rechaining_after_an_edit_still_breaks_at_the_next_line(log: Path) -> None:
    # An editor who re-seals record 4 gets a valid line 4, but line 5's prev no longer matches.
    lines = lines_of(log)
    old = json.loads(lines[3])
    forged = seal({**{k: v for k, v in old.items() if k not in ("prev", "hash")}, "actor": "mallory"}, old["prev"])
    lines[3] = canonical_line(forged)[:-1]
    rewrite(log, lines)
    assert "prev" in (bad_at(log, 5).reason or "")


@pytest.mark.parametrize("cut", [1, 30, -2])
def test_truncating_mid_line_reports_the_last_line(log: Path, cut: int) -> None:
    data = log.read_bytes()
    last_start = data.rfind(b"\n", 0, len(data) - 1) + 1
    log.write_bytes(data[: last_start + cut] if cut > 0 else data[:cut])
    assert "truncated" in (bad_at(log, 12).reason or "")


def test_missing_final_newline_is_a_truncation(log: Path) -> None:
    rewrite(log, lines_of(log), newline_at_end=False)
    assert "truncated" in (bad_at(log, 12).reason or "")


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda line: b"", "bad JSON"),  # a blank line
        (lambda line: b"[1,2]", "not a JSON object"),
        (lambda line: json.dumps(json.loads(line)).encode(), "canonical"),  # same record, other spelling
        (lambda line: line[:-1] + b',"id":3}', "canonical"),  # a duplicate key
        (
            lambda line: json.dumps({**json.loads(line), "x": 1}, sort_keys=True, separators=(",", ":")).encode(),
            "unexpected",
        ),
    ],
)
def test_malformed_lines(log: Path, mangle: Any, reason: str) -> None:
    lines = lines_of(log)
    lines[2] = mangle(lines[2])
    rewrite(log, lines)
    assert reason in (bad_at(log, 3).reason or "")


def test_line_separators_inside_strings_do_not_split_records(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    assert "\u2028".encode() in path.read_bytes()
    assert verify(path).records == 3
