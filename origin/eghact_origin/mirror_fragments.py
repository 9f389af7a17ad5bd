"""Cutting the stored forms of a package's versions out of its packuments as an origin served
them (for ``mirror_apply``).

An origin stores each version twice — its full and its abbreviated document, as fragments
that ``packument.render_packuments`` joins into the two packuments — and serves the joined
bytes. A mirror must store the same fragments, so that a re-render on it gives what the
origin gives. Re-serialising tens of thousands of parsed documents costs more than parsing
them, so the fragments are cut out of the served bytes instead:

* the full packument is walked with the JSON module's own scanner, which parses each version
  where it stands and says where it ends: the fragment is the served text itself, parsed once;
* the abbreviated one is not parsed at all: the renderer writes the versions in the same order,
  each ending with its ``dist`` (``tarball`` last) and then its deprecation, so the end of each
  is a known string, and each cut is checked to start and end as the renderer writes it.

``deprecated`` is taken back out (``packument.with_deprecation`` splices it in at render), and
the base URL of tarball links is put back to the mark. Anything laid out otherwise — another
producer's JSON — falls back to parsing and re-serialising, the general way.
"""

from __future__ import annotations

import json
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C scanner, untyped
from typing import Any

from . import packument

_DECODER = json.JSONDecoder()


def marked(body: bytes, base_url: str) -> bytes:
    # Only the tarball links carry the base: `"tarball":"` can never occur unescaped inside a
    # JSON string, so this touches nothing else.
    base = json.dumps(base_url.rstrip("/"))[1:-1].encode()
    return body.replace(b'"tarball":"' + base, b'"tarball":"' + packument.BASE_MARK)


def _fragment(doc: dict[str, Any], base_url: str) -> bytes:
    # The stored fragment never carries `deprecated` (it is spliced in at render) and keeps
    # dist last with tarball last, exactly as render_version wrote it at the origin.
    clean = {k: v for k, v in doc.items() if k != "deprecated"}
    return marked(packument._dumps(clean), base_url)


class _Irregular(ValueError):
    """A packument not laid out as the origin renders it: parse it the general way."""


def _walk_full(text: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any], str]]]:
    """A full packument's top-level fields (``versions`` aside) and each version as (version,
    document, its exact text). The version values are parsed where they stand (raw_decode gives
    where each ends), so the stored fragment is the served text itself: one parse, and no
    re-serialisation of tens of thousands of documents. Raises on anything but compact JSON."""
    if text[:1] != "{":
        raise _Irregular("not an object")
    head: dict[str, Any] = {}
    versions: list[tuple[str, dict[str, Any], str]] = []
    pos = 1
    while text[pos] != "}":
        if text[pos] != '"':
            raise _Irregular(f"no key at {pos}")
        key, pos = scanstring(text, pos + 1)
        if text[pos] != ":" or key in head:
            raise _Irregular(f"no colon at {pos}, or a key twice")
        pos += 1
        if key == "versions":
            if text[pos] != "{":
                raise _Irregular("versions is not an object")
            pos += 1
            seen: set[str] = set()
            while text[pos] != "}":
                if text[pos] != '"':
                    raise _Irregular(f"no version at {pos}")
                version, pos = scanstring(text, pos + 1)
                if text[pos] != ":" or version in seen:
                    raise _Irregular(f"no colon at {pos}, or a version twice")
                seen.add(version)
                start = pos + 1
                doc, pos = _DECODER.raw_decode(text, start)
                if not isinstance(doc, dict):
                    raise _Irregular(f"version {version} is not an object")
                versions.append((version, doc, text[start:pos]))
                if text[pos] == ",":
                    pos += 1
                elif text[pos] != "}":
                    raise _Irregular(f"no comma at {pos}")
            head["versions"] = None
            pos += 1
        else:
            head[key], pos = _DECODER.raw_decode(text, pos)
        if text[pos] == ",":
            pos += 1
        elif text[pos] != "}":
            raise _Irregular(f"no comma at {pos}")
    if pos != len(text) - 1:
        raise _Irregular("bytes after the packument")
    return head, versions


def _without_deprecation(fragment: bytes, message: Any) -> bytes | None:
    """The fragment as stored (``deprecated`` taken out again), or None if it is not where
    ``packument.with_deprecation`` puts it."""
    if message is None:
        return fragment
    if not isinstance(message, str) or not message:
        return None
    tail = b',"deprecated":' + packument._dumps(message) + b"}"
    return fragment[:-len(tail)] + b"}" if fragment.endswith(tail) else None


def _abbreviated_fragments(body: bytes, versions: list[tuple[str, dict[str, Any], str]]) -> list[bytes] | None:
    """Each version's fragment in the abbreviated packument, found without parsing it: the
    renderer writes the versions in the full packument's order, each ending with its dist
    (tarball last) and then its deprecation, so the end of each is a known string. Every
    fragment is checked to start as the renderer starts it and to be followed by the next
    one's key; None when anything differs (then the document is parsed)."""
    pos = body.find(b'"versions":{')
    if pos < 0:
        return None
    pos += len(b'"versions":{')
    found = []
    for i, (version, doc, _) in enumerate(versions):
        dist = doc.get("dist")
        message = doc.get("deprecated")
        if not isinstance(dist, dict) or not isinstance(dist.get("tarball"), str) or \
                (message is not None and not isinstance(message, str)):
            return None
        key = packument._dumps(version) + b":"
        if not body.startswith(key, pos):
            return None
        start = pos + len(key)
        suffix = b'"tarball":' + packument._dumps(dist["tarball"]) + b"}" + \
            (b',"deprecated":' + packument._dumps(message) if message else b"") + b"}"
        end = body.find(suffix, start)
        opening = b'{"name":' + packument._dumps(doc.get("name")) + b',"version":' + packument._dumps(version)
        if end < 0 or not body.startswith(opening, start):
            return None
        end += len(suffix)
        found.append(body[start:end])
        if i + 1 < len(versions):
            if body[end:end + 1] != b",":
                return None
            pos = end + 1
        elif body[end:] != b"}}":
            return None
    return found


def versions(full: bytes, abbreviated: bytes,
             base_url: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any], bytes, bytes]]]:
    """(top-level fields of the full packument, [(version, its document, its stored fragment,
    its stored abbreviated fragment)]), the fragments as the origin stores them."""
    try:
        head, parsed = _walk_full(full.decode())
    except (_Irregular, ValueError, IndexError):
        doc = json.loads(full)
        head = {k: v for k, v in doc.items() if k != "versions"}
        parsed = [(v, d, "") for v, d in (doc.get("versions") or {}).items()]
    shorts = _abbreviated_fragments(abbreviated, parsed)
    short_docs = None
    if shorts is None:
        short_docs = json.loads(abbreviated).get("versions") or {}
    out = []
    for i, (version, doc, text) in enumerate(parsed):
        stored = _without_deprecation(text.encode(), doc.get("deprecated")) if text else None
        stored = marked(stored, base_url) if stored is not None else _fragment(doc, base_url)
        short = _without_deprecation(shorts[i], doc.get("deprecated")) if shorts is not None else None
        if short is not None:
            short = marked(short, base_url)
        else:
            if short_docs is None:
                short_docs = json.loads(abbreviated).get("versions") or {}
            short = _fragment(short_docs[version], base_url)
        out.append((version, doc, stored, short))
    return head, out
