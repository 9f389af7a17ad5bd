"""Every kind of hostile or invalid publish is refused with its documented code, and
leaves nothing behind: no version, no feed event, no blob, no temp file (DESIGN §6.6)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import tarfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..conftest import LiveOrigin, start_origin
from ..support import escaped, manifest, publish_body, tarball_for, tree_digest

LIMIT = 256 * 1024


@pytest.fixture
async def small_origin(tmp_path: Path) -> AsyncIterator[LiveOrigin]:
    runner, url = await start_origin(tmp_path / "data", max_tarball_bytes=LIMIT)
    async with aiohttp.ClientSession() as session:
        yield LiveOrigin(url, runner.app, tmp_path / "data", session)
    await runner.cleanup()


def raw_tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return gzip.compress(buffer.getvalue(), mtime=0)


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE,
           link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.linkname = link
    return info, data


def package_json(name: str = "victim", version: str = "1.0.0") -> tuple[tarfile.TarInfo, bytes]:
    return member("package/package.json", json.dumps(manifest(name, version)).encode())


def bomb() -> bytes:
    # 200 MiB of zeros compresses to ~200 KiB; the guard must stop inflating early.
    info = tarfile.TarInfo("package/zeros.bin")
    info.size = 200 * 1024 * 1024
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    compressor = gzip.GzipFile(fileobj=(out := io.BytesIO()), mode="wb", mtime=0)
    pkg_info, pkg_data = package_json()
    compressor.write(pkg_info.tobuf(format=tarfile.GNU_FORMAT) + pkg_data + b"\0" * (512 - len(pkg_data) % 512))
    compressor.write(header)
    chunk = b"\0" * (1024 * 1024)
    for _ in range(200):
        compressor.write(chunk)
    compressor.close()
    return out.getvalue()


Body = dict[str, Any]


def with_tarball(data: bytes) -> Body:
    return publish_body(manifest("victim", "1.0.0"), data)


def corrupt(mutate: Callable[[Body], None]) -> Body:
    body = publish_body(manifest("victim", "1.0.0"))
    mutate(body)
    return body


HOSTILE: list[tuple[str, Callable[[], Body | bytes], int, str]] = [
    ("not json", lambda: b"{nope", 400, "invalid_json"),
    ("json array", lambda: b"[]", 400, "invalid_json"),
    ("name differs from url", lambda: publish_body(manifest("other", "1.0.0")), 400, "name_mismatch"),
    ("two versions", lambda: corrupt(lambda b: b["versions"].update({"2.0.0": b["versions"]["1.0.0"]})),
     400, "bad_publish_body"),
    ("bad base64", lambda: corrupt(lambda b: next(iter(b["_attachments"].values())).update(data="@@@")),
     400, "invalid_attachment"),
    ("length lies", lambda: corrupt(lambda b: next(iter(b["_attachments"].values())).update(length=3)),
     400, "invalid_attachment"),
    ("invalid manifest", lambda: publish_body(manifest("victim", "1.0.0", license="NOT A LICENSE",
                                                      dependencies={"x": "git+https://example.com/x.git"},
                                                      eghact={"type": "gadget"})),
     400, "invalid_manifest"),
    ("client integrity wrong", lambda: publish_body(manifest("victim", "1.0.0"),
                                                    integrity="sha512-" + base64.b64encode(b"x" * 64).decode()),
     400, "integrity_mismatch"),
    ("client shasum wrong", lambda: corrupt(lambda b: b["versions"]["1.0.0"]["dist"].update(shasum="0" * 40)),
     400, "integrity_mismatch"),
    ("not gzip", lambda: with_tarball(b"plain bytes, not a tarball"), 400, "tarball_not_gzip"),
    ("truncated gzip", lambda: with_tarball(tarball_for(manifest("victim", "1.0.0"))[:-30]), 400, "tarball_not_gzip"),
    ("gzip but not tar", lambda: with_tarball(gzip.compress(b"x" * 5000)), 400, "tarball_not_tar"),
    ("absolute path", lambda: with_tarball(raw_tar([package_json(), member("/etc/passwd", b"root")])),
     400, "tarball_absolute_path"),
    ("dot-dot", lambda: with_tarball(raw_tar([package_json(), member("package/../../evil.js", b"x")])),
     400, "tarball_path_traversal"),
    ("symlink", lambda: with_tarball(raw_tar([package_json(), member("package/l", kind=tarfile.SYMTYPE,
                                                                       link="/etc/shadow")])), 400, "tarball_link"),
    ("hardlink", lambda: with_tarball(raw_tar([package_json(), member("package/h", kind=tarfile.LNKTYPE,
                                                                        link="package/package.json")])),
     400, "tarball_link"),
    ("device", lambda: with_tarball(raw_tar([package_json(), member("package/dev", kind=tarfile.CHRTYPE)])),
     400, "tarball_special_file"),
    ("fifo", lambda: with_tarball(raw_tar([package_json(), member("package/fifo", kind=tarfile.FIFOTYPE)])),
     400, "tarball_special_file"),
    ("no package.json", lambda: with_tarball(raw_tar([member("package/index.js", b"1")])), 400, "tarball_no_manifest"),
    ("manifest mismatch", lambda: with_tarball(raw_tar([package_json("victim", "9.9.9")])),
     400, "tarball_manifest_mismatch"),
    ("decompression bomb", lambda: with_tarball(bomb()), 400, "tarball_bomb"),
    ("over the size limit", lambda: with_tarball(tarball_for(manifest("victim", "1.0.0"),
                                                             {"noise.bin": os.urandom(LIMIT + 1)})),
     413, "tarball_too_large"),
    ("body over the request limit", lambda: b'{"pad":"' + b"x" * (LIMIT * 8) + b'"}', 413, "payload_too_large"),
]


def stored_state(origin: LiveOrigin) -> tuple[str, int]:
    return tree_digest(origin.data_dir / "blobs"), origin.registry.store.changes_sync(0, 10_000)[-1:][0].seq \
        if origin.registry.store.changes_sync(0, 10_000) else 0


@pytest.mark.parametrize(("label", "make", "status", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_publish_is_refused_and_leaves_nothing(small_origin: LiveOrigin, label: str,
                                                             make: Callable[[], Body | bytes], status: int,
                                                             code: str) -> None:
    origin = small_origin
    token = origin.token("publish:*")
    # Something legitimate exists first, so "nothing changed" is not trivially "empty".
    async with origin.session.put(f"{origin.url}/bystander", json=publish_body(manifest("bystander", "1.0.0")),
                                  headers=origin.auth(token)) as response:
        assert response.status == 201
    before = stored_state(origin)
    payload = make()
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    async with origin.session.put(f"{origin.url}/victim", data=io.BytesIO(data), headers={
            **origin.auth(token), "Content-Type": "application/json"}) as response:
        body = await response.json()
        assert response.status == status, body
        assert body["error"] == code, body
        assert body["message"]
    assert stored_state(origin) == before
    assert list((origin.data_dir / "blobs" / "tmp").iterdir()) == []
    async with origin.session.get(f"{origin.url}/victim") as response:
        assert response.status == 404


async def test_invalid_manifest_lists_every_problem(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    doc = manifest("victim", "1.0.0", license="NOT A LICENSE", dependencies={"x": "file:../x"},
                   eghact={"version": "not a range", "type": "gadget",
                           "capabilities": {"required": ["gpu:mine"]}})
    async with origin.session.put(f"{origin.url}/victim", json=publish_body(doc),
                                  headers=origin.auth(token)) as response:
        body = await response.json()
    problems = body["detail"]["problems"]
    assert len(problems) >= 4, problems  # the file: dependency is only a warning (npm publishes it)
    for needle in ("license", "eghact.version", "eghact.type", "capabilities"):
        assert any(needle in p for p in problems), (needle, problems)


async def test_republish_is_409_and_keeps_the_original(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    first = publish_body(manifest("keeper", "1.0.0"))
    async with origin.session.put(f"{origin.url}/keeper", json=first, headers=origin.auth(token)) as response:
        assert response.status == 201
    async with origin.session.get(f"{origin.url}/keeper/1.0.0") as response:
        original = await response.read()
    second = publish_body(manifest("keeper", "1.0.0", description="sneaky replacement"))
    async with origin.session.put(f"{origin.url}/keeper", json=second, headers=origin.auth(token)) as response:
        assert response.status == 409
        assert (await response.json())["error"] == "version_exists"
    async with origin.session.get(f"{origin.url}/keeper/1.0.0") as response:
        assert await response.read() == original


async def test_publish_scope_is_enforced(origin: LiveOrigin) -> None:
    narrow = origin.token("publish:@team/*")
    async with origin.session.put(f"{origin.url}/{escaped('@other/pkg')}",
                                  json=publish_body(manifest("@other/pkg", "1.0.0")),
                                  headers=origin.auth(narrow)) as response:
        assert response.status == 403
        assert (await response.json())["error"] == "forbidden"
    async with origin.session.put(f"{origin.url}/{escaped('@team/pkg')}",
                                  json=publish_body(manifest("@team/pkg", "1.0.0")),
                                  headers=origin.auth(narrow)) as response:
        assert response.status == 201
    reader = origin.token("read")
    async with origin.session.put(f"{origin.url}/{escaped('@team/pkg')}",
                                  json=publish_body(manifest("@team/pkg", "1.0.1")),
                                  headers=origin.auth(reader)) as response:
        assert response.status == 403


async def test_unpublish_needs_admin_and_leaves_a_tombstone(origin: LiveOrigin) -> None:
    publisher, admin = origin.token("publish:*"), origin.token("admin", name="root")
    for version in ("1.0.0", "1.1.0"):
        async with origin.session.put(f"{origin.url}/tomb", json=publish_body(manifest("tomb", version)),
                                      headers=origin.auth(publisher)) as response:
            assert response.status == 201
    url = f"{origin.url}/tomb/-/tomb-1.1.0.tgz/-rev/whatever"
    async with origin.session.delete(url, headers=origin.auth(publisher)) as response:
        assert response.status == 403
    async with origin.session.delete(url, headers=origin.auth(admin)) as response:
        assert response.status == 200
    async with origin.session.get(f"{origin.url}/tomb/-/tomb-1.1.0.tgz") as response:
        assert response.status == 404
        assert (await response.json())["error"] == "unpublished"
    async with origin.session.get(f"{origin.url}/tomb") as response:
        doc = await response.json()
    assert list(doc["versions"]) == ["1.0.0"] and doc["dist-tags"]["latest"] == "1.0.0"
    async with origin.session.get(f"{origin.url}/-/v1/changes") as response:
        events = (await response.json())["results"]
    tombstone = events[-1]
    assert tombstone["type"] == "unpublish" and tombstone["version"] == "1.1.0" and tombstone["reason"]
    assert "tgz:tomb@1.1.0" in tombstone["keys"]
    async with origin.session.put(f"{origin.url}/tomb", json=publish_body(manifest("tomb", "1.1.0")),
                                  headers=origin.auth(publisher)) as response:
        assert response.status == 409  # a version number is never reused
