"""The index's file list as an import holds it: compact (memory must not grow ~1 KB a file
with the bundle), read alike whatever the JSON spelling, and checked as strictly as before —
a member twice, or another spelling of a listed name, is still refused."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest

from eghact_mirror import index as fmt
from eghact_mirror import signing
from eghact_mirror.errors import MirrorError
from eghact_mirror.verify import read_signed, verify_bundle

from .helpers import repack
from .test_format import build


def synthetic(files: int) -> fmt.Index:
    entries = [fmt.FileEntry(fmt.tarball_path(hashlib.sha512(b"%d" % i).hexdigest()), 5000 + i,
                             hashlib.sha512(b"%d" % i).hexdigest()) for i in range(files)]
    entries += [fmt.FileEntry(p, 900 + i, hashlib.sha512(p.encode()).hexdigest())
                for i in range(files // 4) for p in fmt.packument_paths(i)]
    packages = tuple({"name": f"p{i}", "full": fmt.packument_paths(i)[0], "abbreviated": fmt.packument_paths(i)[1]}
                     for i in range(files // 4))
    return fmt.Index("origin", "http://origin", 0, 9, "now", None, "SHA256:x", "export", {"names": None},
                     packages, (), 0, tuple(entries))


def test_a_parsed_index_costs_a_few_hundred_bytes_a_file() -> None:
    index = synthetic(20_000)
    data = index.encode()
    files = len(index.files)
    tracemalloc.start()
    try:
        parsed = fmt.parse_index(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parsed == index
    # Measured: ~260 bytes a file, at the peak and after (FileEntry objects in a tuple, and
    # json.loads of the whole list before them, peaked at ~1.1 KB a file).
    assert peak / files < 400, f"{peak / files:.0f} bytes a file"


def test_any_json_spelling_reads_alike_and_problems_are_all_named() -> None:
    index = synthetic(40)
    data = index.encode()
    spaced = json.dumps(json.loads(data), indent=1).encode()
    assert fmt.parse_index(data) == fmt.parse_index(spaced) == index
    assert [f.path for f in fmt.parse_index(data).files] == [f.path for f in index.files]  # the order kept
    body = json.loads(data)
    body["files"].append(body["files"][0])  # listed twice
    body["files"].append({**body["files"][1], "path": fmt.tarball_path("0" * 128)})  # not named by its digest
    with pytest.raises(MirrorError) as bad:
        fmt.parse_index(json.dumps(body, separators=(",", ":")).encode())
    problems = bad.value.detail["problems"]
    assert bad.value.code == "not_a_bundle" and len(problems) == 2
    assert "is listed twice" in problems[0] and "is not named by its sha512" in problems[1]


def test_another_spelling_of_a_listed_tarball_is_not_listed() -> None:
    table = fmt.FileTable(synthetic(4).files)
    listed = next(f for f in table if f.path.startswith("tarballs/"))
    assert table.get(listed.path) == listed
    assert table.position(listed.path.upper().replace("TARBALLS", "tarballs")) is None
    assert table.position("tarballs/" + listed.sha512) is None  # the two halves unsplit


def test_a_member_twice_is_refused(tmp_path: Path) -> None:
    key = signing.generate(tmp_path / "key")
    trusted = signing.load_trusted_key(tmp_path / "key.pub")
    build(tmp_path / "good", key, files=3, size=300)

    def twice(members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [members[0], *members]  # the signed index still lists each file once

    bad = repack(tmp_path / "good", tmp_path / "bad", twice)
    for check in (verify_bundle, read_signed):
        with pytest.raises(MirrorError) as refused:
            check(bad, trusted)
        assert refused.value.code == "not_a_bundle" and "appears twice" in refused.value.message
