"""The version fragments a mirror stores are cut out of the served packuments; they must be the
origin's own, byte for byte, whether the cut works or a document forces the general way."""

from __future__ import annotations

import json

from eghact_origin import packument
from eghact_origin.mirror import fragments as mirror_fragments

BASE = "http://origin.example:4873"


def _rendered() -> tuple[list[packument.VersionFragment], bytes, bytes]:
    fragments = []
    for version, deprecated in (("1.0.0", "use 2 — it is «better»"), ("1.1.0-beta.1", None), ("2.0.0", None)):
        doc = {"name": "@s/pkg", "version": version, "description": "ünïcode \"quoted\" \\ and \n",
               "dependencies": {"tarball": "1.0.0", "dist": "^1.0.0"},
               "peerDependenciesMeta": {"dist": {"optional": True}},  # a "dist":{ before the dist
               "eghact": {"type": "theme", "tarball": {"x": 1}}}
        dist = {"integrity": "sha512-" + "A" * 86 + "==", "shasum": "0" * 40}
        rendered = packument.render_version(doc, name="@s/pkg", version=version, filename=f"pkg-{version}.tgz",
                                            dist=dist, publisher="p")
        fragments.append(packument.VersionFragment(version, rendered.full, rendered.abbreviated, "2024-01-01",
                                                   deprecated))
    full, short = packument.render_packuments("@s/pkg", versions=fragments, dist_tags={"latest": "2.0.0"},
                                              created="2024-01-01", modified="2024-01-02", seq=7,
                                              latest_doc={"description": "d"})
    return fragments, packument.materialize(full, BASE), packument.materialize(short, BASE)


def test_cut_fragments_are_the_stored_ones() -> None:
    fragments, full, short = _rendered()
    head, found = mirror_fragments.versions(full, short, BASE)
    assert head["dist-tags"] == {"latest": "2.0.0"} and head["time"]["2.0.0"] == "2024-01-01"
    assert [(v, stored, abbreviated) for v, _, stored, abbreviated in found] == \
        [(f.version, f.full, f.abbreviated) for f in fragments]
    assert found[0][1]["deprecated"].startswith("use 2")
    assert found[2][1]["eghact"]["type"] == "theme"  # the latest version's document is whole
    # ... and all that came from the cut, not from parsing the documents
    assert [v for v, *_ in mirror_fragments._cut(full.decode(), short.decode())[1]] == ["1.0.0", "1.1.0-beta.1",
                                                                                          "2.0.0"]


def test_documents_laid_out_otherwise_are_parsed_the_general_way() -> None:
    fragments, full, short = _rendered()
    spaced = json.dumps(json.loads(full), indent=1, ensure_ascii=False).encode()
    doc = json.loads(short)
    doc["versions"] = dict(reversed(list(doc["versions"].items())))  # another order: the cut refuses it
    reordered = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    _, found = mirror_fragments.versions(spaced, reordered, BASE)
    assert [(v, stored, abbreviated) for v, _, stored, abbreviated in found] == \
        [(f.version, f.full, f.abbreviated) for f in fragments]
