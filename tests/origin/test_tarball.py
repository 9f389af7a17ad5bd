"""Tarball checks: every rejection code with a hand-built hostile tarball, and the facts of a good one."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eghact_common.errors import BadRequest, InvalidTarball, PayloadTooLarge
from eghact_origin.tarball import TarballFacts, TarballLimits, build_tarball, inspect_tarball

NAME, VERSION = "@eghact/router", "1.2.3"
MANIFEST = json.dumps({"name": NAME, "version": VERSION, "main": "index.js"}).encode()
MiB = 1024 * 1024


def member(name: str, data: bytes = b"", *, type_: bytes = tarfile.REGTYPE, **fields: object) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.size = len(data) if type_ == tarfile.REGTYPE else 0
    info.mode = 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data


def tar_bytes(*members: tuple, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def tgz(*members: tuple, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    return gzip.compress(tar_bytes(*members, fmt=fmt), mtime=0)


def good(*extra: tuple) -> bytes:
    return tgz(member("package/package.json", MANIFEST), member("package/index.js", b"export {}\n"), *extra)


def rejected(data: bytes, code: str, **kwargs: object) -> InvalidTarball:
    with pytest.raises(InvalidTarball) as info:
        inspect_tarball(data, name=NAME, version=VERSION, **kwargs)  # type: ignore[arg-type]
    assert info.value.code == code, info.value.message
    assert info.value.status == 400
    return info.value


def zeros_gzip(total: int, *, prefix: bytes = b"") -> bytes:
    """``prefix`` then ``total`` zero bytes, gzipped without ever holding them all."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(prefix)]
    block = bytes(MiB)
    for _ in range(total // MiB):
        parts.append(packer.compress(block))
    parts.append(packer.compress(bytes(total % MiB)))
    parts.append(packer.flush())
    return b"".join(parts)


# --- the good path -------------------------------------------------------------------------------


def test_valid_tarball_facts_match_hashlib() -> None:
    files = {"package.json": MANIFEST, "index.js": b"export default 1\n", "lib/a.js": b"a" * 5000}
    data = build_tarball(files)
    facts = inspect_tarball(data, name=NAME, version=VERSION)
    digest = hashlib.sha512(data).digest()
    assert facts == TarballFacts(
        integrity="sha512-" + base64.b64encode(digest).decode(),
        shasum=hashlib.sha1(data).hexdigest(),
        sha512_hex=digest.hex(),
        size=len(data),
        unpacked_size=sum(map(len, files.values())),
        file_count=3,
        package_json=json.loads(MANIFEST),
    )


def test_any_single_top_dir_is_accepted_and_dirs_and_root_files_are_not_counted() -> None:
    data = tgz(
        member("./", type_=tarfile.DIRTYPE),
        member("node-router-1.2.3/", type_=tarfile.DIRTYPE),
        member("node-router-1.2.3/package.json", MANIFEST),
        member("./node-router-1.2.3/lib/x.js", b"x"),
        member("stray-at-root.txt", b"npm strips this away"),
    )
    facts = inspect_tarball(data, name=NAME, version=VERSION)
    assert (facts.file_count, facts.unpacked_size) == (2, len(MANIFEST) + 1)


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_every_tar_format_is_read(fmt: int) -> None:
    long_name = "package/" + "d" * 120 + "/f.js" if fmt != tarfile.USTAR_FORMAT else "package/f.js"
    data = tgz(member("package/package.json", MANIFEST), member(long_name, b"1"), fmt=fmt)
    assert inspect_tarball(data, name=NAME, version=VERSION).file_count == 2


def test_concatenated_gzip_members_and_zero_padding_are_accepted() -> None:
    raw = tar_bytes(member("package/package.json", MANIFEST))
    data = gzip.compress(raw[:1024], mtime=0) + gzip.compress(raw[1024:], mtime=0) + bytes(4096)
    assert inspect_tarball(data, name=NAME, version=VERSION).package_json["name"] == NAME


def test_manifest_with_a_bom_is_read() -> None:
    data = tgz(member("package/package.json", b"\xef\xbb\xbf" + MANIFEST))
    assert inspect_tarball(data, name=NAME, version=VERSION).package_json["version"] == VERSION


def test_build_tarball_is_deterministic_and_npm_shaped() -> None:
    files = {"package.json": MANIFEST, "b.js": b"b", "a/c.js": b"c"}
    data = build_tarball(files)
    assert data == build_tarball(dict(reversed(files.items())))
    assert data[:2] == b"\x1f\x8b" and data[4:8] == bytes(4)  # gzip header mtime 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        infos = tar.getmembers()
    assert [i.name for i in infos] == ["package/a/c.js", "package/b.js", "package/package.json"]
    assert {(i.mode, i.uid, i.gid, i.uname, i.gname, i.mtime, i.type) for i in infos} == {
        (0o644, 0, 0, "", "", 499162500, tarfile.REGTYPE)
    }


@pytest.mark.parametrize("path", ["", "/abs", "../x", "a/../b", "a//b", "./a", "a\\b"])
def test_build_tarball_refuses_odd_paths(path: str) -> None:
    with pytest.raises(ValueError):
        build_tarball({path: b""})


def test_build_tarball_is_fast() -> None:
    files = {"package.json": MANIFEST, **{f"lib/m{i}.js": os.urandom(512) for i in range(500)}}
    start = time.perf_counter()
    build_tarball(files)
    assert time.perf_counter() - start < 1.0


# --- rejections, one per code -------------------------------------------------------------------


def test_too_large() -> None:
    data = good()
    with pytest.raises(PayloadTooLarge) as info:
        inspect_tarball(data, name=NAME, version=VERSION, limits=TarballLimits(max_bytes=len(data) - 1))
    assert (info.value.code, info.value.status) == ("tarball_too_large", 413)
    assert info.value.detail == {"size": len(data), "limit": len(data) - 1}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        os.urandom(4096),
        b"PK\x03\x04 a zip, not a tgz",
        tar_bytes(member("package/package.json", MANIFEST)),  # an uncompressed tar
        b"\x1f\x8b" + os.urandom(4096),  # gzip magic, then garbage
    ],
    ids=["empty", "random", "zip", "plain-tar", "magic-then-garbage"],
)
def test_not_gzip(data: bytes) -> None:
    rejected(data, "tarball_not_gzip")


@pytest.mark.parametrize("keep", [10, 100, 0.5, -4, -1])
def test_truncated_gzip(keep: float) -> None:
    data = good(member("package/big.js", os.urandom(20_000)))
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    error = rejected(data[:cut], "tarball_not_gzip")
    assert "truncated" in error.message or "corrupt" in error.message


def test_corrupt_crc_is_caught_even_after_the_tar_ends() -> None:
    data = bytearray(good())
    data[-8] ^= 0xFF  # CRC32 in the gzip trailer
    assert "corrupt" in rejected(bytes(data), "tarball_not_gzip").message


def test_garbage_after_the_gzip_stream() -> None:
    error = rejected(good() + b"hidden payload", "tarball_not_gzip")
    assert "garbage" in error.message


@pytest.mark.parametrize(
    "raw",
    [os.urandom(8192), b"just some text\n" * 100, json.dumps({"not": "a tar"}).encode()],
    ids=["random", "text", "json"],
)
def test_not_tar(raw: bytes) -> None:
    rejected(gzip.compress(raw), "tarball_not_tar")


def test_tar_cut_short_inside_a_member() -> None:
    raw = tar_bytes(member("package/package.json", MANIFEST), member("package/big.js", os.urandom(8192)))
    error = rejected(gzip.compress(raw[:3000]), "tarball_not_tar")
    assert error.detail["member"] == "package/big.js"


@pytest.mark.parametrize("path", ["/etc/passwd", "/package/package.json", "\\windows\\x", "C:/x", "c:\\x"])
def test_absolute_path(path: str) -> None:
    error = rejected(good(member(path, b"x")), "tarball_absolute_path")
    assert repr(path) in error.message and error.detail == {"member": path}


@pytest.mark.parametrize("path", ["../x", "package/../../x", "package/..", "package\\..\\..\\x", "package/a/../b"])
def test_path_traversal(path: str) -> None:
    error = rejected(good(member(path, b"x")), "tarball_path_traversal")
    assert repr(path) in error.message and error.detail == {"member": path}


@pytest.mark.parametrize(
    ("kind", "type_"),
    [("symlink", tarfile.SYMTYPE), ("hardlink", tarfile.LNKTYPE)],
)
def test_links(kind: str, type_: bytes) -> None:
    error = rejected(good(member("package/evil", type_=type_, linkname="/etc/passwd")), "tarball_link")
    assert kind in error.message and "package/evil" in error.message


def test_link_before_the_manifest_is_rejected_even_if_harmless_looking() -> None:
    data = tgz(
        member("package/alias.js", type_=tarfile.SYMTYPE, linkname="index.js"), member("package/package.json", MANIFEST)
    )
    rejected(data, "tarball_link")


@pytest.mark.parametrize(
    "type_",
    [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, b"Z"],
    ids=["char-device", "block-device", "fifo", "unknown-type"],
)
def test_special_files(type_: bytes) -> None:
    error = rejected(good(member("package/dev", type_=type_, devmajor=1, devminor=3)), "tarball_special_file")
    assert "package/dev" in error.message


def test_sparse_file_is_special() -> None:
    info = tarfile.TarInfo("package/sparse.bin")
    info.type = tarfile.GNUTYPE_SPARSE
    raw = tar_bytes(member("package/package.json", MANIFEST), fmt=tarfile.GNU_FORMAT)
    header = info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    rejected(gzip.compress(header + raw), "tarball_special_file")


@pytest.mark.parametrize(
    "members",
    [
        [member("package/index.js", b"1")],
        [member("package.json", MANIFEST), member("package/index.js", b"1")],  # at the root: npm drops it
        [member("package/lib/package.json", MANIFEST)],  # too deep
        [member("package/PACKAGE.JSON", MANIFEST)],  # npm looks for the exact name
        [],
    ],
    ids=["none", "at-root", "nested", "wrong-case", "empty-archive"],
)
def test_no_manifest(members: list[tuple]) -> None:
    rejected(tgz(*members), "tarball_no_manifest")


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"a string"', "not a JSON object"),
        (b'{"name": "x", "size": NaN}', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
    ],
)
def test_bad_manifest(content: bytes, why: str) -> None:
    error = rejected(tgz(member("package/package.json", content)), "tarball_bad_manifest")
    assert why in error.message and "package/package.json" in error.message


@pytest.mark.parametrize(
    "second",
    ["package/package.json", "other/package.json", "package/Package.json"],
    ids=["same-path", "second-top-dir", "case-variant"],
)
def test_duplicate_manifest_is_ambiguous(second: str) -> None:
    other = json.dumps({"name": "evil", "version": VERSION}).encode()
    error = rejected(good(member(second, other)), "tarball_bad_manifest")
    assert "second package.json" in error.message and second in error.message


def test_manifest_that_is_a_directory() -> None:
    data = tgz(member("package/package.json", type_=tarfile.DIRTYPE))
    rejected(data, "tarball_bad_manifest")


def test_oversized_manifest() -> None:
    limits = TarballLimits(max_manifest_bytes=len(MANIFEST) - 1)
    rejected(good(), "tarball_bad_manifest", limits=limits)


@pytest.mark.parametrize(
    ("manifest", "fields"),
    [
        ({"name": "@eghact/other", "version": VERSION}, {"name"}),
        ({"name": NAME, "version": "1.2.4"}, {"version"}),
        ({"name": "x", "version": "0.0.1"}, {"name", "version"}),
        ({}, {"name", "version"}),
    ],
)
def test_manifest_mismatch(manifest: dict, fields: set[str]) -> None:
    data = tgz(member("package/package.json", json.dumps(manifest).encode()))
    error = rejected(data, "tarball_manifest_mismatch")
    assert set(error.detail["mismatches"]) == fields
    assert error.detail["member"] == "package/package.json"
    for field in fields:
        assert error.detail["mismatches"][field] == {
            "expected": {"name": NAME, "version": VERSION}[field],
            "found": manifest.get(field),
        }
        assert field in error.message


def test_too_many_entries_is_a_bomb() -> None:
    data = good(*(member(f"package/f{i}.js", b"") for i in range(20)))
    error = rejected(data, "tarball_bomb", limits=TarballLimits(max_entries=10))
    assert "package/f8.js" in error.message  # the 11th entry


def test_declared_size_past_the_ratio_is_a_bomb_at_its_header() -> None:
    # The bound is the 200 KiB grace; only the first 64 KiB piece is inflated when the header is read.
    limits = TarballLimits(ratio_grace_bytes=200 * 1024, max_ratio=1)
    error = rejected(good(member("package/big.js", b"a" * 300_000)), "tarball_bomb", limits=limits)
    assert "'package/big.js' (300000 bytes)" in error.message


def test_absolute_unpacked_bound() -> None:
    limits = TarballLimits(max_unpacked_bytes=20_000)
    rejected(good(member("package/big.js", os.urandom(30_000))), "tarball_bomb", limits=limits)


def test_huge_pax_header_is_refused_before_it_is_buffered() -> None:
    data = tgz(
        member("package/package.json", MANIFEST), member("package/x", b"", pax_headers={"comment": "z" * 2 * MiB})
    )
    assert "extended header" in rejected(data, "tarball_bomb").message


def test_headers_alone_can_cross_the_bound_while_tarfile_reads() -> None:
    # Thousands of empty members declare nothing, but their headers still inflate.
    data = good(*(member(f"package/e{i}", b"") for i in range(3000)))
    limits = TarballLimits(ratio_grace_bytes=0, max_ratio=5)
    error = rejected(data, "tarball_bomb", limits=limits)
    assert error.detail["member"].startswith("package/e")
    assert "inflates past" in error.message


def test_unpacked_bound_formula() -> None:
    limits = TarballLimits()
    assert limits.unpacked_bound(1000) == 10 * MiB  # the grace
    assert limits.unpacked_bound(1 * MiB) == 200 * MiB  # the ratio
    assert limits.unpacked_bound(50 * MiB) == 512 * MiB  # the absolute bound


# --- the decompression bomb ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def zero_bomb() -> bytes:
    """200 MiB of zeros, gzipped to ~200 KiB: no tar at all."""
    return zeros_gzip(200 * MiB)


def raw_member(name: str, data: bytes, size: int | None = None) -> bytes:
    """One member's header and data blocks, with no end-of-archive marker after it."""
    info = tarfile.TarInfo(name)
    info.size = len(data) if size is None else size
    return info.tobuf(tarfile.PAX_FORMAT) + data + bytes(-len(data) % tarfile.BLOCKSIZE)


@pytest.fixture(scope="module")
def tar_bomb() -> bytes:
    """A tar holding a manifest and one 200 MiB file of zeros whose header tells the truth."""
    head = raw_member("package/package.json", MANIFEST) + raw_member("package/zeros.bin", b"", 200 * MiB)
    return zeros_gzip(200 * MiB + 1024, prefix=head)


@pytest.fixture(scope="module")
def zeros_after_archive() -> bytes:
    """A small valid tar followed by 200 MiB of zeros, which tarfile takes for the end of the archive."""
    return zeros_gzip(200 * MiB, prefix=raw_member("package/package.json", MANIFEST))


def timed_rejection(data: bytes) -> tuple[InvalidTarball, float, int]:
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(InvalidTarball) as info:
            inspect_tarball(data, name=NAME, version=VERSION)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return info.value, elapsed, peak


@pytest.mark.parametrize("bomb", ["zero_bomb", "tar_bomb", "zeros_after_archive"])
def test_gzip_bomb_is_rejected_quickly_in_small_memory(bomb: str, request: pytest.FixtureRequest) -> None:
    data = request.getfixturevalue(bomb)
    assert len(data) < 300 * 1024
    error, elapsed, peak = timed_rejection(data)
    assert error.code == "tarball_bomb"
    assert elapsed < 2.0, f"took {elapsed:.3f}s"
    # What inflating even the allowed 40 MiB into memory would cost, by a wide margin.
    assert peak < 4 * MiB, f"peak {peak} bytes"


# --- robustness ---------------------------------------------------------------------------------


def mutations() -> st.SearchStrategy[list[tuple[int, int]]]:
    return st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)), min_size=1, max_size=8
    )


def mutated(data: bytes, changes: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in changes:
        out[position % len(out)] = value
    return bytes(out)


def only_clean_outcomes(data: bytes) -> None:
    try:
        inspect_tarball(data, name=NAME, version=VERSION)
    except InvalidTarball as error:
        assert error.code.startswith("tarball_")
        assert isinstance(error, BadRequest)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations())
def test_any_mangled_tar_gets_a_clean_answer(changes: list[tuple[int, int]]) -> None:
    raw = tar_bytes(
        member("package/package.json", MANIFEST),
        member("package/" + "n" * 150, b"long name"),
        member("package/lib", type_=tarfile.DIRTYPE),
    )
    only_clean_outcomes(gzip.compress(mutated(raw, changes)))


@settings(max_examples=100, deadline=None)
@given(mutations())
def test_any_mangled_gzip_gets_a_clean_answer(changes: list[tuple[int, int]]) -> None:
    only_clean_outcomes(mutated(good(), changes))
