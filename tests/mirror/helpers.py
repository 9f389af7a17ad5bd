"""Mirror test support: the ``eghact-mirror`` CLI as a real process, HTTP helpers, a
snapshot of a mirror's database (to tell "before" from "after" a bundle), and re-packing a
bundle with a change (to make tampered bundles the way an attacker would)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import aiohttp
import zstandard
from aiohttp import web

from ..support import PYTHONPATH, blob_path, escaped, get

CORGI = "application/vnd.npm.install-v1+json"
ENV = {**os.environ, "PYTHONPATH": PYTHONPATH}


def mirror_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "eghact_mirror.cli", *args]


def mirror(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``eghact-mirror`` and return what it did; ``check`` wants exit 0."""
    result = subprocess.run(mirror_cmd(*args), capture_output=True, text=True, env=ENV, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"eghact-mirror {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n"
                             f"{result.stderr}")
    return result


def refused(result: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    """(exit code, error code) of a refused run, from ``eghact-mirror: <code>: <message>``."""
    line = next((ln for ln in result.stderr.splitlines() if ln.startswith("eghact-mirror: ")), "")
    return result.returncode, line.removeprefix("eghact-mirror: ").split(":", 1)[0]


def get_or_none(url: str, accept: str | None = None) -> bytes | None:
    try:
        return get(url, accept)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def send(method: str, url: str, body: Any, token: str) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def feed_names(url: str) -> list[str]:
    events = json.loads(get(f"{url}/-/v1/changes?since=0&limit=10000"))["results"]
    return sorted({e["name"] for e in events if e["type"] != "advisory"})


def served(url: str, names: list[str]) -> tuple[dict[tuple[str, str | None], bytes | None], dict[str, bytes]]:
    """Every packument (full and abbreviated; None when 404) and every tarball a registry serves
    for ``names``, tarballs keyed by path (the part of the URL after the base)."""
    docs: dict[tuple[str, str | None], bytes | None] = {}
    tarballs: dict[str, bytes] = {}
    for name in names:
        for accept in (None, CORGI):
            docs[(name, accept)] = get_or_none(f"{url}/{escaped(name)}", accept)
        full = docs[(name, None)]
        for version in json.loads(full)["versions"].values() if full else ():
            link = version["dist"]["tarball"]
            tarballs[link.removeprefix(url)] = get(link)
    return docs, tarballs


def db_snapshot(data_dir: Path) -> str:
    """A digest of what a mirror serves and where its chain is: packuments, versions,
    dist-tags, advisories, the feed and the mirror state (not the files SQLite keeps)."""
    db = data_dir / "registry.sqlite3"
    if not db.exists():
        return "empty"
    digest = hashlib.sha256()
    conn = sqlite3.connect(db)
    try:
        try:
            if not conn.execute("SELECT 1 FROM meta WHERE key='mirror'").fetchone() and \
                    not conn.execute("SELECT 1 FROM packages").fetchone():
                return "empty"  # created (a run was killed after opening it) but nothing applied
        except sqlite3.OperationalError:
            return "empty"  # not even the schema: a run was killed while creating it
        for query in ("SELECT name, full_doc, abbrev_doc FROM packages ORDER BY name",
                      "SELECT name, version, unpublished, blob_digest, deprecated FROM versions ORDER BY name, version",
                      "SELECT name, tag, version FROM dist_tags ORDER BY name, tag",
                      "SELECT id, name, vulnerable_versions FROM advisories ORDER BY id",
                      "SELECT seq, type, name, version FROM changes ORDER BY seq",
                      "SELECT value FROM meta WHERE key='mirror'"):
            digest.update(repr(conn.execute(query).fetchall()).encode())
        live = conn.execute("SELECT DISTINCT blob_digest FROM versions WHERE unpublished IS NULL").fetchall()
    finally:
        conn.close()
    for (blob,) in live:  # whatever the database points at must be there
        assert blob_path(data_dir, blob).is_file(), blob
    return digest.hexdigest()


def read_members(bundle: Path) -> list[tuple[str, bytes]]:
    with open(bundle, "rb") as raw:
        stream = zstandard.ZstdDecompressor().stream_reader(raw)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            return [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]


def write_members(bundle: Path, members: list[tuple[str, bytes]]) -> None:
    with open(bundle, "wb") as raw, \
            zstandard.ZstdCompressor(write_checksum=True).stream_writer(raw, closefd=False) as out, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def repack(src: Path, dst: Path, edit: Callable[[list[tuple[str, bytes]]], list[tuple[str, bytes]]]) -> Path:
    """``dst``: ``src`` with its members edited — a well-formed bundle that lies."""
    write_members(dst, edit(read_members(src)))
    return dst


class InFrontOfOrigin:
    """A server on 127.0.0.1 (port 0) in front of the live ``origin``: every request goes to
    ``_handle``, which may ask the origin with ``_session``. Used as ``async with``."""

    def __init__(self, origin: str):
        self.origin = origin
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()
        await self._runner.cleanup()
