"""``eghact-mirror import``: verify a bundle completely, then let the origin apply it.

    1. stream the bundle into a fresh staging dir beside the mirror, hashing every file;
    2. check the signature and every digest (``verify``) — until here the mirror's data dir
       has not been touched, and any refusal leaves it byte-identical;
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
from .keys import TrustedKey
from .verify import Verified, verify_bundle


@dataclass(frozen=True)
class ImportReport:
    verified: Verified
    applied: bool
    apply: dict[str, Any]
    record: dict[str, Any]
    record_path: Path | None


def import_bundle(path: Path, mirror: Path, trusted: TrustedKey, *,
                  on_bytes: Callable[[int], None] = lambda n: None) -> ImportReport:
    staging = stage.create(mirror)
    try:
        sink = stage.StageSink(staging)
        try:
            verified = verify_bundle(path, trusted, sink=sink, on_bytes=on_bytes)
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
