"""Rendering of packuments (full and abbreviated) and version documents as bytes.

Packuments are rendered once per change, when the change is committed, and stored as
bytes; a read copies bytes and never parses JSON. The one thing a stored document cannot
know is the public base URL of whoever serves it (the origin behind a proxy, a mirror,
an edge), so the tarball URLs hold a single ``\\x01`` byte where the base goes. ``json.dumps``
escapes every control character, so a raw ``\\x01`` can never come from package content:
:func:`materialize` replaces exactly the places this module put there.

Every version document is serialised once at publish with its ``dist`` object last and
``tarball`` last within it; this lets a packument be assembled by joining stored
fragments (O(bytes), no re-serialisation of thousands of versions), and lets a
deprecation be applied by splicing one field into the fragment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

BASE_MARK = b"\x01"

# The fields npm's abbreviated ("corgi") format keeps, plus the Eghact block and licence,
# which the resolver needs and which are small.
_ABBREVIATED_FIELDS = (
    "name",
    "version",
    "dependencies",
    "optionalDependencies",
    "peerDependencies",
    "peerDependenciesMeta",
    "bundleDependencies",
    "bin",
    "directories",
    "engines",
    "os",
    "cpu",
    "funding",
    "license",
    "hasInstallScript",
    "_hasShrinkwrap",
    "acceptDependencies",
    "eghact",
)

# Fields the server owns: a client's value for them is dropped at publish.
_SERVER_FIELDS = ("dist", "deprecated", "_attachments", "_rev", "_npmUser")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class RenderedVersion:
    """A version's full and abbreviated documents, as stored (with the base mark)."""

    full: bytes
    abbreviated: bytes


def tarball_path(name: str, filename: str) -> str:
    """The registry path of a tarball, as npm spells it: ``/@scope/name/-/name-1.0.0.tgz``."""
    return f"/{name}/-/{filename}"


def render_version(
    doc: Mapping[str, Any],
    *,
    name: str,
    version: str,
    filename: str,
    dist: Mapping[str, Any],
    publisher: str | None,
) -> RenderedVersion:
    """Serialise one version document; ``dist`` gets ``tarball`` appended by this function.
    ``publisher`` None: the document names none (a pulled version whose upstream named none)."""
    clean = {k: v for k, v in doc.items() if k not in _SERVER_FIELDS}
    clean["name"] = name
    clean["version"] = version
    clean["_id"] = f"{name}@{version}"
    if publisher is not None:
        clean["_npmUser"] = {"name": publisher}
    abbreviated = {k: clean[k] for k in _ABBREVIATED_FIELDS if k in clean}
    tarball = BASE_MARK + _dumps(tarball_path(name, filename))[1:-1]
    dist_json = _dumps(dict(dist))[:-1] + b',"tarball":"' + tarball + b'"}'
    return RenderedVersion(
        full=_dumps(clean)[:-1] + b',"dist":' + dist_json + b"}",
        abbreviated=_dumps(abbreviated)[:-1] + b',"dist":' + dist_json + b"}",
    )


def with_deprecation(fragment: bytes, message: str | None) -> bytes:
    """The fragment with ``deprecated`` spliced in (stored fragments never carry it)."""
    if not message:
        return fragment
    return fragment[:-1] + b',"deprecated":' + _dumps(message) + b"}"


@dataclass(frozen=True)
class VersionFragment:
    version: str
    full: bytes
    abbreviated: bytes
    published: str
    deprecated: str | None


def revision(name: str, seq: int) -> str:
    """A CouchDB-style ``_rev``; npm echoes it back in unpublish URLs."""
    return f"{seq}-{hashlib.sha256(f'{name}@{seq}'.encode()).hexdigest()[:16]}"


def render_packuments(
    name: str,
    *,
    versions: Iterable[VersionFragment],
    dist_tags: Mapping[str, str],
    created: str,
    modified: str,
    seq: int,
    latest_doc: Mapping[str, Any] | None,
) -> tuple[bytes, bytes]:
    """The (full, abbreviated) packuments of a package's visible versions."""
    fragments = list(versions)
    full_versions = b",".join(
        _dumps(f.version) + b":" + with_deprecation(f.full, f.deprecated) for f in fragments
    )
    abbrev_versions = b",".join(
        _dumps(f.version) + b":" + with_deprecation(f.abbreviated, f.deprecated) for f in fragments
    )
    times: dict[str, str] = {"created": created, "modified": modified}
    times.update((f.version, f.published) for f in fragments)
    head: dict[str, Any] = {"_id": name, "_rev": revision(name, seq), "name": name}
    latest = latest_doc or {}
    for key in ("description", "license", "keywords", "author", "homepage", "repository", "bugs", "readme"):
        if key in latest:
            head[key] = latest[key]
    head["dist-tags"] = dict(dist_tags)
    full = (
        _dumps(head)[:-1]
        + b',"versions":{' + full_versions + b'},"time":' + _dumps(times)
        + b',"maintainers":[]}'
    )
    abbreviated = (
        _dumps({"name": name, "modified": modified, "dist-tags": dict(dist_tags)})[:-1]
        + b',"versions":{' + abbrev_versions + b"}}"
    )
    return full, abbreviated


def materialize(stored: bytes, base_url: str) -> bytes:
    """Stored bytes with the public base URL in place of every mark."""
    base = _dumps(base_url.rstrip("/"))[1:-1]
    return stored.replace(BASE_MARK, base)


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
