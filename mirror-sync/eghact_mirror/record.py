"""The verification record: what was checked, for the people who sign off an air-gap transfer.

``import`` keeps, in ``DIR/verification/``, for each bundle it applied::

    <digest>.txt         for people: result, key fingerprint, range, chain, counts, the file's
                         (or each part's) sha512 to compare with the exporter's, then one line
                         per file checked — ``OK  <sha512>  <size>  <path>``
    <digest>.json        the same, for tools
    <digest>.index.json  the exact signed index bytes, and
    <digest>.index.sig   its signature: anyone can re-verify the record later with the public key

``verify`` prints the summary and, with ``--record PATH``, writes the text record there. A
refused bundle gets its record printed, never kept in the mirror: a refusal changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eghact_common.durable import write_atomic

from . import __version__
from .verify import Verified


def summary(verified: Verified, *, result: str, apply: dict[str, Any] | None = None) -> dict[str, Any]:
    index = verified.index
    location = verified.location
    return {
        "result": result,
        "tool": f"eghact-mirror {__version__}",
        "verified_at": verified.verified_at,
        "bundle": str(location.base),
        "split": location.split,
        "bundle_files": [{"name": path.name, "sha512": sha, "size": size}
                         for (path, _), sha, size in zip(location.parts, verified.file_sha512,
                                                         _sizes(location), strict=False)],
        "compressed_bytes": verified.compressed_bytes,
        "bundle_digest": verified.digest,
        "index_sha512": verified.digest,
        "trusted_key": verified.trusted_fingerprint,
        "signed_by": index.key_fingerprint,
        "origin_id": index.origin_id,
        "origin_url": index.origin_url,
        "from_seq": index.from_seq,
        "to_seq": index.to_seq,
        "created": index.created,
        "previous_digest": index.previous_digest,
        "selection": {k: v for k, v in index.selection.items() if k != "names"},
        "counts": {"files_checked": len(index.files), "content_bytes": index.content_bytes,
                   "packages": len(index.packages), "tarballs": index.tarball_count,
                   "removed": len(index.removed), "events": index.event_count},
        "warnings": list(index.warnings),
        "seconds": round(verified.seconds, 3),
        "apply": apply,
    }


def _sizes(location: Any) -> list[int]:
    return [path.stat().st_size for path, _ in location.parts]


def text(record: dict[str, Any], verified: Verified | None = None, *, files: bool = True) -> str:
    """The human record; ``files`` adds one line per file checked."""
    return "".join(text_lines(record, verified, files=files))


def text_lines(record: dict[str, Any], verified: Verified | None = None, *, files: bool = True) -> Iterator[str]:
    """:func:`text` a line at a time (its file list is one line per file: ~80,000 for a full
    bundle, not to be held at once)."""
    counts = record["counts"]
    lines = [
        f"eghact-mirror verification record — {record['result'].upper()}",
        f"  verified at      {record['verified_at']} by {record['tool']}",
        f"  bundle           {record['bundle']}{' (split)' if record['split'] else ''}",
    ]
    for f in record["bundle_files"]:
        lines += [f"  file             {f['name']}, {f['size']} bytes", f"    sha512         {f['sha512']}"]
    lines += [
        "  bundle digest    (the sha512 of the signed index; the chain's link)",
        f"    sha512         {record['bundle_digest']}",
        f"  signature        good, key {record['trusted_key']} (the trusted key)",
        f"  origin           {record['origin_id']} ({record['origin_url']})",
        f"  range            seq {record['from_seq']} -> {record['to_seq']}, exported {record['created']}",
        f"  continues        {record['previous_digest'] or '(nothing: a first bundle)'}",
        f"  checked          {counts['files_checked']} files, {counts['content_bytes']} bytes: every size and "
        "sha512 equal to the signed index, no file missing, no file extra",
        f"  carries          {counts['packages']} packages, {counts['tarballs']} tarballs, {counts['removed']} "
        f"removed, {counts['events']} events",
    ]
    if record.get("apply") is not None:
        applied = record["apply"]
        lines.append("  applied          " + ("yes" if applied.get("applied") else
                                              "no: this bundle was already the mirror's last (a no-op)"))
    lines += [f"  warning          {w}" for w in record["warnings"]]
    for line in lines:
        yield line + "\n"
    if files and verified is not None:
        yield "\n"
        for f in verified.index.files:
            yield f"OK  {f.sha512}  {f.size:>10}  {f.path}\n"


def keep(mirror: Path, verified: Verified, record: dict[str, Any], signature: bytes) -> Path:
    """Write the record into ``mirror/verification``; returns the text record's path."""
    folder = mirror / "verification"
    folder.mkdir(parents=True, exist_ok=True)
    base = verified.digest
    _atomic(folder / f"{base}.index.json", verified.index_bytes)
    _atomic(folder / f"{base}.index.sig", signature)
    _atomic(folder / f"{base}.json", _json_pieces(record, verified))
    path = folder / f"{base}.txt"
    _atomic(path, (line.encode() for line in text_lines(record, verified)))
    return path


def _json_pieces(record: dict[str, Any], verified: Verified) -> Iterator[bytes]:
    """``{**record, "files": [[path, size, sha512], ...]}`` as JSON, a file at a time."""
    yield json.dumps(record).encode()[:-1] + (b', "files": [' if record else b'"files": [')
    separator = b""
    for f in verified.index.files:
        yield separator + json.dumps([f.path, f.size, f.sha512]).encode()
        separator = b", "
    yield b"]}"


def _atomic(path: Path, data: bytes | Iterator[bytes]) -> None:
    write_atomic(path, data, mode=0o644)
