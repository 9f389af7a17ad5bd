"""Unpacking refuses what could escape the plugin's folder or exhaust the disk: traversal,
absolute paths, links, devices, and sizes past the bound, each with its stable code, before
anything lands outside the folder."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from eghact_client.extract import ExtractLimits, extract
from eghact_common.errors import InvalidTarball


def tarball(*members: tarfile.TarInfo, data: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        manifest = b'{"name": "x", "version": "1.0.0"}'
        info = tarfile.TarInfo("package/package.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for member in members:
            body = (data or {}).get(member.name, b"")
            member.size = len(body) if member.isreg() else 0
            tar.addfile(member, io.BytesIO(body) if member.isreg() else None)
    return gzip.compress(buffer.getvalue(), mtime=0)


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def test_a_plain_package_is_unpacked_without_its_top_folder(tmp_path: Path) -> None:
    run = member("package/bin/run.sh")
    run.mode = 0o755
    data = tarball(run, member("package/lib/a.js"), data={"package/bin/run.sh": b"#!/bin/sh\n",
                                                         "package/lib/a.js": b"1;\n"})
    assert extract(data, tmp_path / "x", package="x@1.0.0") == 3
    assert (tmp_path / "x" / "lib" / "a.js").read_bytes() == b"1;\n"
    assert (tmp_path / "x" / "bin" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "x" / "package.json").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(("hostile", "code"), [
    (member("package/../../escaped.js"), "tarball_traversal"),
    (member("/tmp/escaped.js"), "tarball_traversal"),
    (member("package\\..\\escaped.js"), "tarball_traversal"),
    (member("package/link", tarfile.SYMTYPE, "../../escaped.js"), "tarball_link"),
    (member("package/hard", tarfile.LNKTYPE, "package/package.json"), "tarball_link"),
    (member("package/dev", tarfile.CHRTYPE), "tarball_special_file"),
    (member("package/fifo", tarfile.FIFOTYPE), "tarball_special_file"),
])
def test_hostile_members_are_refused(tmp_path: Path, hostile: tarfile.TarInfo, code: str) -> None:
    data = tarball(hostile, data={hostile.name: b"evil();\n"})
    with pytest.raises(InvalidTarball) as refused:
        extract(data, tmp_path / "root" / "x", package="x@1.0.0")
    assert refused.value.code == code and refused.value.detail["member"] == hostile.name
    assert [p.name for p in tmp_path.rglob("escaped.js")] == []


def test_content_past_the_bound_is_refused_before_it_is_written(tmp_path: Path) -> None:
    big = member("package/big.bin")
    data = tarball(big, data={"package/big.bin": b"\0" * 50_000})
    limits = ExtractLimits(max_unpacked_bytes=20_000, ratio_grace_bytes=20_000)
    with pytest.raises(InvalidTarball) as refused:
        extract(data, tmp_path / "x", package="x@1.0.0", limits=limits)
    assert refused.value.code == "tarball_too_large"
    assert not (tmp_path / "x" / "big.bin").exists()


def test_bytes_that_are_not_a_gzip_tarball_are_refused(tmp_path: Path) -> None:
    for data, code in ((b"plain text", "tarball_not_gzip"), (gzip.compress(b"not a tar" * 100), "tarball_not_tar")):
        with pytest.raises(InvalidTarball) as refused:
            extract(data, tmp_path / "x", package="x@1.0.0")
        assert refused.value.code == code
