"""An upstream packument (npm's full document) rendered into the rows we store.

Each version is rendered by :func:`packument.render_version`, the renderer of a publish, so a
pulled package is served exactly as a local one is: full and abbreviated packuments from the
same rows, tarball URLs pointing at whoever serves them (the base mark), ``dist`` last. What
only the upstream knows is kept beside the rows: each tarball's upstream URL, and the whole
document as fetched (compressed), for the pull policy to be re-applied without a refetch.

Versions that cannot be served safely are left out, never guessed at: a version key that is
not semver, a document that is not an object, or a ``dist`` without a tarball URL or without
any digest to check the tarball against (``integrity`` or a 40-hex ``shasum``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import zstandard

from eghact_common import integrity, names, semver
from eghact_common.errors import UplinkUnavailable

from .. import packument
from ..storage import PulledPackage, VersionRow

_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\.tgz")
_SHASUM = re.compile(r"[0-9a-f]{40}")
_INSTALL_SCRIPTS = ("preinstall", "install", "postinstall")


def compress(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(raw)


def decompress(stored: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(stored)


def sha512_hex(sri: str) -> str:
    """The sha512 digest an SRI string names, hex ('' when it names none or does not parse)."""
    try:
        return next((d.hex() for algo, d in integrity.parse_sri(sri) if algo == "sha512"), "")
    except ValueError:
        return ""


def check_document(name: str, doc: Any, uplink: str) -> dict[str, Any]:
    """``doc`` when it is a packument of ``name``; else the uplink answered something else (502)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("versions", {}), dict) or \
            doc.get("name", name) != name:
        raise UplinkUnavailable(f"uplink {uplink} answered something other than the packument of {name}",
                                code="uplink_bad_document", detail={"name": name, "uplink": uplink})
    return doc


def pulled_package(name: str, uplink: str, base_url: str, doc: dict[str, Any], *, raw: bytes, etag: str | None,
                   last_modified: str | None, fetched: float, hidden: dict[str, str],
                   reveal_at: float | None = None) -> PulledPackage:
    """The rows of ``doc`` (already through the pull policy) as served by uplink ``uplink`` at
    ``base_url``; ``raw`` is the compressed upstream document as fetched. With every version
    hidden (``doc`` has none) it has no rows and no tags: the store keeps the name as pulled,
    with nothing to read, and the service explains why (404 ``versions_held_back``)."""
    found = doc.get("time")
    times: dict[str, Any] = found if isinstance(found, dict) else {}
    rows: list[VersionRow] = []
    urls: dict[str, str] = {}
    for version, vdoc in (doc.get("versions") or {}).items():
        row = _version_row(name, version, vdoc, times, base_url, urls)
        if row is not None:
            rows.append(row)
    kept = {row.version for row in rows}
    tags = [(tag, version) for tag, version in (doc.get("dist-tags") or {}).items()
            if isinstance(tag, str) and tag and version in kept]
    created = times.get("created") if isinstance(times.get("created"), str) else ""
    return PulledPackage(name, uplink, rows, tags, created or "", urls, raw, etag, last_modified, fetched, hidden,
                         reveal_at)


def _version_row(name: str, version: Any, vdoc: Any, times: dict[str, Any], base_url: str,
                 urls: dict[str, str]) -> VersionRow | None:
    if not isinstance(version, str) or semver.valid(version) != version or not isinstance(vdoc, dict):
        return None
    dist = vdoc.get("dist")
    if not isinstance(dist, dict) or not isinstance(dist.get("tarball"), str):
        return None
    sri = _text(dist.get("integrity"))
    shasum = _text(dist.get("shasum"))
    digest = sha512_hex(sri)
    if not digest and not _SHASUM.fullmatch(shasum.lower()):
        return None  # nothing to check its tarball against
    url = urljoin(base_url + "/", dist["tarball"])
    filename = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if not _FILENAME.fullmatch(filename) or filename in urls:
        filename = names.tarball_filename(name, version)
        if filename in urls:
            return None
    urls[filename] = url
    served_dist = {k: v for k, v in dist.items() if k != "tarball"}
    scripts = vdoc.get("scripts")
    doc = dict(vdoc)
    if "hasInstallScript" not in doc and isinstance(scripts, dict) and any(s in scripts for s in _INSTALL_SCRIPTS):
        doc["hasInstallScript"] = True  # what npm's registry adds to its abbreviated form
    user = vdoc.get("_npmUser")
    # Upstream's publisher, by name only; none invented where upstream names none.
    publisher = user["name"] if isinstance(user, dict) and isinstance(user.get("name"), str) else None
    rendered = packument.render_version(doc, name=name, version=version, filename=filename, dist=served_dist,
                                        publisher=publisher)
    deprecated = vdoc.get("deprecated")
    published = times.get(version)
    return VersionRow(name, version, filename, published if isinstance(published, str) else "", rendered.full,
                      rendered.abbreviated, digest, sri, shasum.lower(), 0,
                      deprecated if isinstance(deprecated, str) and deprecated else None)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
