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
from json.encoder import encode_basestring as _quote  # C, what dumps does
from typing import Any

from .. import packument

_DECODER = json.JSONDecoder()


def marked(body: bytes, base_url: str) -> bytes:
    # Only the tarball links carry the base: `"tarball":"` can never occur unescaped inside a
    # JSON string, so this touches nothing else.
    return body.replace(*_marking(base_url))


def _marking(base_url: str) -> tuple[bytes, bytes]:
    base = json.dumps(base_url.rstrip("/"))[1:-1].encode()
    return b'"tarball":"' + base, b'"tarball":"' + packument.BASE_MARK


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
        key, pos = _key(text, pos)
        if key in head:
            raise _Irregular(f"{key!r} twice")
        if key == "versions":
            if text[pos] != "{":
                raise _Irregular("versions is not an object")
            pos += 1
            seen: set[str] = set()
            while text[pos] != "}":
                version, start = _key(text, pos)
                if version in seen:
                    raise _Irregular(f"version {version!r} twice")
                seen.add(version)
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
    its stored abbreviated fragment)]), the fragments as the origin stores them. The document
    holds at least the version's ``dist`` and ``deprecated``; the dist-tags' latest version's is
    whole (the search columns come from it)."""
    try:
        head, found = _cut(full.decode(), abbreviated.decode())
    except (_Irregular, ValueError, IndexError):
        return _versions_parsed(full, abbreviated, base_url)
    link, mark = _marking(base_url)
    return head, [(version, doc, stored.encode().replace(link, mark), short.encode().replace(link, mark))
                  for version, doc, stored, short in found]


_VERSIONS = ',"versions":{'
_DIST = ',"dist":{'
_DEPRECATED = ',"deprecated":'


def _cut(full: str, short: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any], str, str]]]:
    """Both packuments cut as the origin renders them, parsing only their heads and each
    version's ``dist``: the abbreviated versions are walked first (each is
    ``{"name":N,"version":V,...,"dist":{...}}`` with ``deprecated`` spliced in last), which
    gives each version's exact dist text; the full versions end with that same text, which
    holds the tarball's integrity, so each full fragment's end is found by searching for it.
    Every cut is checked to be followed by the next version's key or by the end of the
    versions; anything else raises (then both documents are parsed)."""
    head = _head(short)
    name = head.get("name")
    pos = short.index(_VERSIONS) + len(_VERSIONS)
    cuts: list[tuple[str, dict[str, Any], str, str]] = []  # version, its dist+deprecation, abbreviated text, its tail
    while short[pos] != "}":
        version, pos = _key(short, pos)
        opening = '{"name":' + _text(name) + ',"version":' + _text(version)
        if not short.startswith(opening, pos):
            raise _Irregular(f"version {version} does not open as rendered")
        doc, end, tail = _dist_at_end(short, pos)
        cuts.append((version, doc, short[pos:end], tail))
        pos = end + 1 if short[end] == "," else end
    if short[pos:] != "}}":
        raise _Irregular("bytes after the abbreviated versions")
    start = full.index(_VERSIONS)
    top = _head(full)
    pos = start + len(_VERSIONS)
    found = []
    for version, doc, abbreviated, tail in cuts:
        key = _text(version) + ":"
        if not full.startswith(key, pos):
            raise _Irregular(f"the full packument's versions differ at {version}")
        pos += len(key)
        end = full.find(tail, pos)
        if end < 0:
            raise _Irregular(f"version {version}'s dist is not where the renderer puts it")
        end += len(tail)
        if full[end] not in ",}":
            raise _Irregular(f"no comma after version {version}")
        message = doc.get("deprecated")
        cut = len(_DEPRECATED) + len(_text(message)) + 1 if message is not None else 1
        found.append((version, doc, full[pos:end - cut] + "}", abbreviated[:-cut] + "}"))
        pos = end + 1 if full[end] == "," else end
    if full[pos] != "}" or full[pos + 1] != ",":
        raise _Irregular("the full packument has more versions than the abbreviated one")
    top.update(_DECODER.decode("{" + full[pos + 2:]))
    top["versions"] = None
    latest = (top.get("dist-tags") or {}).get("latest")
    for i, (version, doc, stored, short_cut) in enumerate(found):
        if version == latest:  # the whole document: search reads its description, keywords ...
            found[i] = (version, _DECODER.decode(stored[:-1] + _tail_of(doc)), stored, short_cut)
    return top, found


def _head(text: str) -> dict[str, Any]:
    """The fields before ``versions``: parsing fails unless the cut is at the top level."""
    cut = text.index(_VERSIONS)
    head = _DECODER.decode(text[:cut] + "}")
    if not isinstance(head, dict):
        raise _Irregular("not an object")
    return head


def _key(text: str, pos: int) -> tuple[str, int]:
    """The object key at ``pos`` and where its value starts."""
    if text[pos] != '"':
        raise _Irregular(f"no key at {pos}")
    key, pos = scanstring(text, pos + 1)
    if text[pos] != ":":
        raise _Irregular(f"no colon at {pos}")
    return key, pos + 1


def _dist_at_end(text: str, start: int) -> tuple[dict[str, Any], int, str]:
    """The last member of the version object at ``start`` must be its dist (then, maybe, its
    deprecation): ({"dist", "deprecated"}, where the object ends, its exact tail text from
    ``,"dist":`` on). A ``"dist":{`` nested deeper (a dependency named dist) is passed over:
    only the one followed by the object's end counts."""
    pos = start
    while True:
        pos = text.find(_DIST, pos + 1)
        if pos < 0:
            raise _Irregular("no dist")
        try:
            dist, end = _DECODER.raw_decode(text, pos + len(_DIST) - 1)
        except ValueError:
            continue
        message = None
        after = end
        if text.startswith(_DEPRECATED, end):
            message, after = scanstring(text, end + len(_DEPRECATED) + 1) if text[end + len(_DEPRECATED)] == '"' \
                else (None, end)
            if message is None or text[end:after] != _DEPRECATED + _text(message):
                continue  # not as the renderer writes it: the general way will say what it is
        if text[after] == "}" and text[after + 1] in ",}" and isinstance(dist, dict) \
                and isinstance(dist.get("tarball"), str):
            doc: dict[str, Any] = {"dist": dist}
            if message is not None:
                doc["deprecated"] = message
            return doc, after + 1, text[pos:after + 1]


def _tail_of(doc: dict[str, Any]) -> str:
    message = doc.get("deprecated")
    return "}" if message is None else _DEPRECATED + _text(message) + "}"


def _text(value: Any) -> str:
    """``value`` as the renderer serialises it (``packument._dumps``), without its encoder's set-up
    cost for the common case, a string."""
    if isinstance(value, str):
        return _quote(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _versions_parsed(full: bytes, abbreviated: bytes,
                     base_url: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any], bytes, bytes]]]:
    """The general way: the full packument walked and parsed, the abbreviated one cut or parsed."""
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
