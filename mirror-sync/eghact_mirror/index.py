"""The bundle format: the signed index, the part manifest of a split bundle, and path rules.

A bundle is ONE zstd frame holding a POSIX ustar stream (every name fits its 100+155-byte
name and prefix fields, every member is far below its 8 GiB size limit)::

    events.jsonl                 the change events of (from_seq, to_seq], one JSON object a line,
                                 as the feed served them (tombstones: unpublish, deprecate)
    packuments/<i>.json          package i's packument, exactly as the origin served it
    packuments/<i>.abbrev.json   the same, abbreviated (Accept: application/vnd.npm.install-v1+json);
                                 a package the origin pulled from an uplink is stored by the mirror
                                 with only the versions its index entry names ("versions") and
                                 those it held already
    tarballs/<hex 1-64>/<hex 65-128>   every tarball the bundle carries, once, named by its sha512
                                 (split so that every name fits a plain ustar header: a pax
                                 header per tarball would double the tar work of reading)
    index.json                   this module's Index, the last file but one
    index.sig                    the raw 64-byte Ed25519 signature of index.json's exact bytes, last

The index comes LAST so that a bundle is written in one streaming pass (its digests are known
only once every file went by). The price is on the reading side: nothing in a bundle can be
trusted before the index and signature at its end, so an import reads it twice — once to
verify the index, once to stage what that index vouches for (``verify``).

The bundle's DIGEST is the sha512 hex of index.json's exact bytes. The index names every
file's size and sha512, so the digest identifies the content completely; the tar framing and
the compression are not part of a bundle's identity (re-compressing a bundle does not make it
another bundle), and the digest is known the moment the index is, without a second pass over
a multi-gigabyte file. The chain is ``previous_digest``: the digest of the bundle (or synced
batch, see ``sync``) that the mirror must have applied last.

The paths inside the bundle are those of the staged layout ``eghact-origin mirror-apply``
reads (tarballs aside: ``staged_path`` joins their two halves), so that importing is
extracting plus writing ``stage.json``.

A split bundle is FILE.part001, FILE.part002, ... (the byte stream cut in pieces) plus
FILE.parts.json — the part manifest: each part's name, size and sha512, and the bundle
digest — and FILE.parts.sig, its signature. The manifest is small and read first, so a
missing or damaged part is named before anything is decompressed.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import MirrorError
from .filetable import FileEntry, FileTable

FORMAT = "eghact-mirror-bundle"
PARTS_FORMAT = "eghact-mirror-parts"
VERSION = 1
INDEX_PATH = "index.json"
SIGNATURE_PATH = "index.sig"
EVENTS_PATH = "events.jsonl"
# An index lists every file (~250 bytes each): 256 MiB is a million files with room to spare,
# and a cap keeps a hostile bundle from making us buffer an endless "index".
MAX_INDEX_BYTES = 256 * 1024 * 1024
_CONTENT_PATH = re.compile(
    r"^(?:events\.jsonl|packuments/[0-9]{1,9}(?:\.abbrev)?\.json|tarballs/[0-9a-f]{64}/[0-9a-f]{64})$")
_HEX512 = re.compile(r"^[0-9a-f]{128}$")


def is_content_path(path: str) -> bool:
    """Whether ``path`` is a name a bundle's content may have (the index and signature aside)."""
    return bool(_CONTENT_PATH.match(path))


def packument_paths(i: int) -> tuple[str, str]:
    return f"packuments/{i}.json", f"packuments/{i}.abbrev.json"


def tarball_path(sha512_hex: str) -> str:
    return f"tarballs/{sha512_hex[:64]}/{sha512_hex[64:]}"


def staged_path(path: str) -> str:
    """Where a bundle file goes in mirror-apply's staged layout (``tarballs/<sha512 hex>``)."""
    return "tarballs/" + path[9:].replace("/", "") if path.startswith("tarballs/") else path


def digest(data: bytes) -> str:
    """A bundle's digest from its index bytes (see the module docstring)."""
    return hashlib.sha512(data).hexdigest()


@dataclass(frozen=True)
class Index:
    origin_id: str
    origin_url: str
    from_seq: int
    to_seq: int
    created: str
    previous_digest: str | None
    key_fingerprint: str | None
    source: str  # "export" (a bundle) or "sync" (a batch the follower applied)
    selection: dict[str, Any]
    # {"name", "full", "abbreviated"}, and for a package pulled from an uplink "versions": the
    # versions it carries (mirror-apply keeps the union of those and what the mirror holds)
    packages: tuple[dict[str, Any], ...]
    removed: tuple[str, ...]
    event_count: int
    # A FileTable when parsed (compact: an import holds it throughout); the exporter passes its
    # spooled file log, so that the entries are never all in memory as objects (only the
    # encoded index is).
    files: Collection[FileEntry]
    warnings: tuple[str, ...] = field(default=())

    def encode(self) -> bytes:
        head = {
            "format": FORMAT, "version": VERSION, "source": self.source, "origin_id": self.origin_id,
            "origin_url": self.origin_url, "from_seq": self.from_seq, "to_seq": self.to_seq,
            "created": self.created, "previous_digest": self.previous_digest,
            "key_fingerprint": self.key_fingerprint, "selection": self.selection,
            "packages": list(self.packages), "removed": list(self.removed), "event_count": self.event_count,
            "warnings": list(self.warnings),
        }
        out = io.BytesIO()
        out.write(json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode()[:-1] + b',"files":[')
        encoded = getattr(self.files, "json_entries", None)  # the exporter's file log writes its own
        if encoded is not None:
            out.writelines(encoded())
            out.write(b"]}")
            return out.getvalue()
        separator = b""
        for f in self.files:
            out.write(b'%s{"path":%s,"size":%d,"sha512":"%s"}' % (separator, json.dumps(f.path).encode(), f.size,
                                                                  f.sha512.encode()))
            separator = b","
        out.write(b"]}")
        return out.getvalue()

    @property
    def tarball_count(self) -> int:
        if isinstance(self.files, FileTable):
            return self.files.tarball_count
        return sum(f.path.startswith("tarballs/") for f in self.files)

    @property
    def content_bytes(self) -> int:
        if isinstance(self.files, FileTable):
            return self.files.content_bytes
        return sum(f.size for f in self.files)


# One file entry exactly as Index.encode writes it (content paths need no JSON escapes).
_ENTRY = re.compile(rb'\{"path":"([a-z0-9./]{1,200})","size":([0-9]{1,18}),"sha512":"([0-9a-f]{128})"\}')
_FILES = b',"files":['


def parse_index(data: bytes) -> Index:
    """Parse and check an index; every problem is reported at once (``not_a_bundle``).

    An index written by ``Index.encode`` is parsed without building a JSON object per file
    (79,000 of them took ~45 MB at once in an import): the head by ``json.loads``, the file
    list entry by entry in its exact spelling. Anything else is parsed as JSON, with the same
    checks — the fast path accepts nothing the JSON one would refuse."""
    split = _split_files(data)
    if split is not None:
        head, files = split
        return index_of(head, files)
    return index_of(_load(data, "index"))


def _split_files(data: bytes) -> tuple[dict[str, Any], FileTable] | None:
    """(the head, the files) of an index in Index.encode's spelling with nothing to refuse in
    its file list, or None (the JSON parse then decides, and names every problem)."""
    # The last ',"files":[' is the list's: no entry can hold one (a '"' in a path is escaped).
    at = data.rfind(_FILES)
    if at < 0 or not data.endswith(b"]}"):
        return None
    try:
        head = json.loads(data[:at] + b"}")
    except (ValueError, RecursionError):
        return None
    if not isinstance(head, dict) or "files" in head:
        return None
    files = FileTable()
    pos, end = at + len(_FILES), len(data) - 2
    match = _ENTRY.match
    while pos < end:
        found = match(data, pos)
        if found is None:
            return None
        path, size, sha = (field.decode() for field in found.groups())
        if not (is_content_path(path) and (not path.startswith("tarballs/") or path[9:].replace("/", "") == sha)
                and files.add(path, int(size), sha)):
            return None
        pos = found.end()
        if pos < end:
            if data[pos] != 0x2C:  # ','
                return None
            pos += 1
            if pos == end:
                return None  # a trailing comma: not JSON
    return head, files


def index_of(body: Any, checked: FileTable | None = None) -> Index:
    """Check an index its caller has parsed (``inputs``: a file given on the command line);
    ``checked``: its file list, parsed and checked apart from ``body`` (which then has none)."""
    if isinstance(body, dict) and checked is not None:
        body = {**body, "files": []}
    if not isinstance(body, dict):
        raise MirrorError("not_a_bundle", "the index is not a JSON object")
    problems: list[str] = []
    if body.get("format") != FORMAT or body.get("version") != VERSION:
        raise MirrorError("not_a_bundle", f"index format {body.get('format')!r} version {body.get('version')!r} "
                          f"is not {FORMAT} {VERSION}: a newer tool may read it")
    for key, kind in (("origin_id", str), ("origin_url", str), ("from_seq", int), ("to_seq", int),
                      ("created", str), ("source", str), ("selection", dict), ("packages", list),
                      ("removed", list), ("event_count", int), ("files", list), ("warnings", list)):
        if not isinstance(body.get(key), kind):
            problems.append(f"{key} is not a {kind.__name__}")
    if problems:
        raise MirrorError("not_a_bundle", "bad index: " + "; ".join(problems))
    if not 0 <= body["from_seq"] <= body["to_seq"]:
        problems.append(f"from_seq {body['from_seq']} / to_seq {body['to_seq']} are not an ascending range")
    previous = body.get("previous_digest")
    if previous is not None and not (isinstance(previous, str) and previous):
        problems.append("previous_digest is neither null nor a digest")
    files = FileTable() if checked is None else checked
    for i, entry in enumerate(body["files"]):
        path, size, sha = (entry.get(k) for k in ("path", "size", "sha512")) if isinstance(entry, dict) \
            else (None,) * 3
        if not (isinstance(path, str) and is_content_path(path) and type(size) is int and size >= 0
                and isinstance(sha, str) and _HEX512.match(sha)):
            problems.append(f"files[{i}] is not a {{path, size, sha512}} of a bundle file")
        elif path.startswith("tarballs/") and path[9:].replace("/", "") != sha:
            # mirror-apply stores a staged tarball under its name without re-hashing it.
            problems.append(f"files[{i}]: {path} is not named by its sha512")
        elif not files.add(path, size, sha):
            problems.append(f"files[{i}]: {path} is listed twice")
    for entry in body["packages"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                and _listed(files, entry.get("full")) and _listed(files, entry.get("abbreviated"))):
            problems.append(f"package entry {entry!r} does not name two listed files")
        elif "versions" in entry and not (isinstance(entry["versions"], list)
                                          and all(isinstance(v, str) for v in entry["versions"])):
            problems.append(f"package entry {entry['name']!r}: versions is not a list of versions")
    if problems:
        raise MirrorError("not_a_bundle", "bad index: " + "; ".join(problems[:20]), detail={"problems": problems})
    return Index(
        origin_id=body["origin_id"], origin_url=body["origin_url"], from_seq=body["from_seq"],
        to_seq=body["to_seq"], created=body["created"], previous_digest=previous,
        key_fingerprint=body.get("key_fingerprint"), source=body["source"], selection=body["selection"],
        packages=tuple(body["packages"]), removed=tuple(str(n) for n in body["removed"]),
        event_count=body["event_count"], files=files, warnings=tuple(str(w) for w in body["warnings"]),
    )


def _listed(files: FileTable, path: Any) -> bool:
    return isinstance(path, str) and files.position(path) is not None


@dataclass(frozen=True)
class PartManifest:
    bundle_digest: str
    key_fingerprint: str
    parts: tuple[FileEntry, ...]  # path = the part's file name, relative to the manifest's folder

    @property
    def total_size(self) -> int:
        return sum(p.size for p in self.parts)

    def encode(self) -> bytes:
        body = {"format": PARTS_FORMAT, "version": VERSION, "bundle_digest": self.bundle_digest,
                "key_fingerprint": self.key_fingerprint, "total_size": self.total_size,
                "parts": [{"name": p.path, "size": p.size, "sha512": p.sha512} for p in self.parts]}
        return json.dumps(body, indent=1).encode() + b"\n"


def parse_parts(data: bytes) -> PartManifest:
    body = _load(data, "part manifest")
    if body.get("format") != PARTS_FORMAT or body.get("version") != VERSION:
        raise MirrorError("not_a_bundle", f"part manifest format {body.get('format')!r} is not {PARTS_FORMAT}")
    parts = []
    for i, entry in enumerate(body.get("parts") or []):
        name, size, sha = (entry.get(k) for k in ("name", "size", "sha512")) if isinstance(entry, dict) else (None,) * 3
        if not (isinstance(name, str) and "/" not in name and name not in ("", ".", "..")
                and isinstance(size, int) and size >= 0 and isinstance(sha, str) and _HEX512.match(sha)):
            raise MirrorError("not_a_bundle", f"part manifest entry {i} is not a {{name, size, sha512}}")
        parts.append(FileEntry(name, size, sha))
    if not parts or not isinstance(body.get("bundle_digest"), str):
        raise MirrorError("not_a_bundle", "the part manifest lists no parts or no bundle digest")
    return PartManifest(body["bundle_digest"], str(body.get("key_fingerprint")), tuple(parts))


def part_path(base: Path, number: int) -> Path:
    return base.with_name(f"{base.name}.part{number:03d}")


def parts_manifest_path(base: Path) -> Path:
    return base.with_name(base.name + ".parts.json")


def parts_signature_path(base: Path) -> Path:
    return base.with_name(base.name + ".parts.sig")


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:  # a part manifest is parsed before its signature is checked
        raise MirrorError("not_a_bundle", f"the {what} is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MirrorError("not_a_bundle", f"the {what} is not a JSON object")
    return body
