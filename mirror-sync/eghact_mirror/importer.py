"""``eghact-mirror import``: verify a bundle completely, then let the origin apply it.

    1. read the bundle to its end for the signed index, and check the signature and every
       member's name and size against it (``verify.read_signed``) — nothing is written yet;
    2. read it again into a fresh staging dir beside the mirror, each member only as the
       verified index lists it, hashing every file and checking its digest
       (``verify.verify_into``) — until here the mirror's data dir has not been touched, and
       any refusal leaves it byte-identical;
    3. write ``stage.json`` and run ``eghact-origin mirror-apply``, which checks continuity
       (chain, seq, origin) under its write lock and applies all or nothing;
    4. keep the verification record in the mirror (``record``);
    5. remove the staging dir, whatever happened.

Crash safety comes from mirror-apply's single transaction: SIGKILL at any moment leaves the
mirror before or after the bundle, and running the same import again finishes the job (or
says the bundle is already applied, and writes the record if the crash took it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import record, stage
from .signing import TrustedKey
from .verify import Verified, read_signed, verify_into


@dataclass(frozen=True)
class ImportReport:
    verified: Verified
    applied: bool
    apply: dict[str, Any]
    record: dict[str, Any]
    record_path: Path | None


def import_bundle(path: Path, mirror: Path, trusted: TrustedKey, *,
                  on_bytes: Callable[[int], None] = lambda n: None,
                  on_staged: Callable[[int], None] = lambda n: None) -> ImportReport:
    """``on_bytes`` counts the compressed bytes of the first pass, ``on_staged`` the second's."""
    head = read_signed(path, trusted, on_bytes=on_bytes)
    staging = stage.create(mirror)
    try:
        sink = stage.StageSink(staging)
        try:
            verified = verify_into(head, sink, on_bytes=on_staged)
            sink.finish(verified.index, verified.digest)  # waits for every staged file
        finally:
            sink.close()  # a refusal: stops the staging child at once
        applied = stage.apply(mirror, staging)
    finally:
        stage.remove(staging)
    result = "applied" if applied.get("applied") else "already applied (no-op)"
    summary = record.summary(verified, result=result, apply=applied)
    kept = None
    text_path = mirror / "verification" / f"{verified.digest}.txt"
    if applied.get("applied") or not text_path.exists():
        # A no-op keeps the mirror as it is — unless a crash right after applying took the record.
        kept = record.keep(mirror, verified, summary, verified.signature)
    return ImportReport(verified, bool(applied.get("applied")), applied, summary, kept)
