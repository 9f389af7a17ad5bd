"""Nothing an origin sends is kept past a bound (issue 11, item 5, on the online side): a
tarball longer than the size its tarball list gives, or endless, is refused at its declared
length or at the first byte beyond (``digest_mismatch``); one no list sizes, a packument or a
feed page past its maximum, or JSON nested past the parser, is ``origin_unavailable``.

The origin is a real aiohttp server on 127.0.0.1 in front of the live origin, passing every
request on and lying about one package, ``bounds-z`` (``bounds-a`` is published first and
stays honest: the collector learns the origin's base URL from the first packument it parses,
and only then uses the tarball lists, so the tarball list sizes ``bounds-z``). The mirror
runs as a real ``eghact-mirror`` process under RLIMIT_FSIZE of 1 MiB, as in test_bounded.py:
a run that spools a hostile body fails with EFBIG (an internal error) instead of its
refusal. Each case is run as ``sync --once`` into a mirror and as ``export``: both must
refuse with the case's exit code, leave the mirror byte-identical, and leave no staging dir
and no bundle behind."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from eghact_mirror import signing
from eghact_mirror.errors import EXIT_CODES

from ..support import tree_digest
from .conftest import Live
from .helpers import ENV, InFrontOfOrigin, mirror_cmd, refused

FILE_LIMIT = 1 << 20  # no file the mirror writes for these runs may grow past this
HOSTILE = "bounds-z"
TARBALL = f"/{HOSTILE}/-/{HOSTILE}-1.0.0.tgz"
ENDLESS = 1 << 40  # what an endless body declares
SENT_AT_MOST = 64 << 20  # the fake stops there, so that no run can go on for ever
_HOP_BY_HOP = {"content-length", "transfer-encoding", "content-encoding", "connection"}
_ZEROS = bytes(64 << 10)


def frames(body: bytes) -> list[tuple[dict[str, object], bytes]]:
    """The (header, body) frames of a batch answer (the origin's format, origin/.../batch.py)."""
    out = []
    pos = 0
    while pos < len(body):
        end = body.index(b"\n", pos)
        head = json.loads(body[pos:end])
        start = end + 1
        out.append((head, body[start:start + head["length"]]))  # type: ignore[operator]
        pos = start + head["length"] + 1  # type: ignore[operator]
    return out


async def endless(response: web.StreamResponse) -> None:
    """Zeros until the reader hangs up (or SENT_AT_MOST)."""
    sent = 0
    try:
        while sent < SENT_AT_MOST:
            await response.write(_ZEROS)
            sent += len(_ZEROS)
    except (ConnectionError, aiohttp.ClientError):
        pass


class HostileOrigin(InFrontOfOrigin):
    """The live origin, but for ``mode``:

    frame-longer      the batch frame of bounds-z's tarball declares and carries 4 MiB more than its size
    frame-endless     ... declares 2^40 bytes and sends zeros
    get-longer        that frame is a 503 (the mirror then GETs the tarball), and the GET
                      answers 4 MiB more, with a Content-Length that says so
    get-endless       ... and the GET answers zeros, chunked, without end
    unlisted-endless  no batch read (404: no tarball list sizes anything); the tarball GET is endless
    packument-frame-endless  the batch frame of bounds-z's full packument declares 2^40 bytes, sends zeros
    packument-get-endless    no batch read; bounds-z's packument GET is endless
    feed-deep         the changes feed answers JSON nested 100,000 deep
    """

    def __init__(self, origin: str, mode: str, tarball: bytes):
        super().__init__(origin)
        self.mode = mode
        self.tarball = tarball

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        mode, path = self.mode, request.path
        if mode == "feed-deep" and path == "/-/v1/changes":
            return web.Response(body=b"[" * 100_000, content_type="application/json")
        is_batch = request.method == "POST" and path == "/-/v1/batch"
        if is_batch and mode in ("unlisted-endless", "packument-get-endless"):
            return web.json_response({"error": "not_found", "message": "no such route"}, status=404)
        if path == TARBALL and mode in ("get-longer", "get-endless", "unlisted-endless"):
            if mode == "get-longer":
                return web.Response(body=self.tarball + os.urandom(4 << 20), content_type="application/octet-stream")
            return await self._endless(request)
        if path == f"/{HOSTILE}" and mode == "packument-get-endless":
            return await self._endless(request)
        status, headers, body = await self._pass(request)
        if is_batch and status == 200:
            return await self._frames(request, frames(body), headers)
        return web.Response(body=body, status=status, headers=headers)

    async def _pass(self, request: web.Request) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("accept", "content-type")}
        headers["Host"] = request.host  # the origin's links then name this server
        async with self._session.request(request.method, URL(self.origin + request.raw_path, encoded=True),
                                         headers=headers, data=await request.read()) as answer:
            body = await answer.read()
            return answer.status, {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}, body

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await endless(response)
        return response

    async def _frames(self, request: web.Request, got: list[tuple[dict[str, object], bytes]],
                      headers: dict[str, str]) -> web.StreamResponse:
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        try:
            for head, body in got:
                kind = {str(k).lower(): str(v) for k, v in head["headers"].items()}.get("content-type", "")  # type: ignore[attr-defined]
                lie = head["path"] == TARBALL and head["status"] == 200 and self.mode.startswith(("frame-", "get-"))
                lie = lie or (head["path"] == f"/{HOSTILE}" and self.mode == "packument-frame-endless"
                              and kind.startswith("application/json"))  # the full packument
                if lie and self.mode.startswith("get-"):
                    body = b'{"error":"unavailable","message":"try a GET"}'
                    head = {**head, "status": 503, "length": len(body)}
                elif lie and self.mode == "frame-longer":
                    body += os.urandom(4 << 20)
                    head = {**head, "length": len(body)}
                elif lie:  # an endless body
                    await response.write(json.dumps({**head, "length": ENDLESS}).encode() + b"\n")
                    await endless(response)
                    return response
                await response.write(json.dumps(head).encode() + b"\n" + body + b"\n")
        except (ConnectionError, aiohttp.ClientError):
            pass
        return response


@pytest.fixture(scope="module")
def hostile(live: Live, tmp_path_factory: pytest.TempPathFactory) -> tuple[Live, bytes, Path]:
    """The two packages (bounds-a honest, bounds-z lied about), bounds-z's tarball, a key."""
    live.publish("bounds-a", "1.0.0")
    live.publish(HOSTILE, "1.0.0")
    import urllib.request
    with urllib.request.urlopen(f"{live.url}{TARBALL}", timeout=10) as answer:
        tarball = answer.read()
    root = tmp_path_factory.mktemp("hostile")
    signing.generate(root / "key")
    return live, tarball, root / "key"


def run_limited(*args: str) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    return subprocess.run(mirror_cmd(*args), capture_output=True, text=True, env=ENV, timeout=120,
                          preexec_fn=limit)


@pytest.fixture
async def origin_for(hostile: tuple[Live, bytes, Path]) -> AsyncIterator[object]:
    servers: list[HostileOrigin] = []

    async def start(mode: str) -> HostileOrigin:
        server = await HostileOrigin(hostile[0].url, mode, hostile[1]).__aenter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.__aexit__()


CASES = [
    # (mode, extra flags, the refusal, what its message says)
    ("frame-longer", (), "digest_mismatch", "its tarball list gives"),
    ("frame-endless", (), "digest_mismatch", f"as {ENDLESS} bytes"),
    ("get-longer", (), "digest_mismatch", "its tarball list gives"),
    ("get-endless", (), "digest_mismatch", "refused at byte"),
    ("unlisted-endless", ("--max-tarball-bytes", "512K"), "origin_unavailable", "--max-tarball-bytes limit"),
    ("packument-frame-endless", (), "origin_unavailable", "--max-document-bytes limit of 134217728"),
    ("packument-get-endless", ("--max-document-bytes", "512K"), "origin_unavailable", "--max-document-bytes"),
    ("feed-deep", (), "origin_unavailable", "is not JSON"),
]


@pytest.mark.parametrize("command", ["sync", "export"])
@pytest.mark.parametrize(("mode", "flags", "code", "says"), CASES, ids=[case[0] for case in CASES])
async def test_a_hostile_origin_is_refused_within_a_bound(
        command: str, mode: str, flags: tuple[str, ...], code: str, says: str, origin_for: object,
        hostile: tuple[Live, bytes, Path], tmp_path: Path) -> None:
    server = await origin_for(mode)  # type: ignore[operator]
    into = tmp_path / "mirror"
    into.mkdir()
    (into / "keep").write_text("a mirror's file")
    before = tree_digest(into)
    if command == "sync":
        args = ["sync", "--origin", server.url, "--into", str(into), "--once", "--batch", "10000"]
    else:
        args = ["export", "--origin", server.url, "--key", str(hostile[2]), "-o", str(tmp_path / "out.bundle")]
    result = await asyncio.to_thread(run_limited, *args, "--filter", "bounds-*", *flags)
    assert refused(result) == (EXIT_CODES[code][0], code), result.stderr[-2000:]
    assert says in result.stderr, result.stderr[-2000:]
    assert tree_digest(into) == before
    assert not list(tmp_path.glob(".mirror.staging-*"))
    assert not list(tmp_path.glob("*.bundle*")) and not list(tmp_path.glob(".out.bundle*"))


async def test_the_same_origin_honest_is_mirrored_under_the_same_file_limit(
        origin_for: object, hostile: tuple[Live, bytes, Path], tmp_path: Path) -> None:
    """The control: through the same server, not lying, both runs succeed under the limit (so
    the refusals above are the lies', not the server's or the limit's)."""
    server = await origin_for("pass")  # type: ignore[operator]
    into = tmp_path / "mirror"
    synced = await asyncio.to_thread(run_limited, "sync", "--origin", server.url, "--into", str(into), "--once",
                                     "--batch", "10000", "--filter", "bounds-*")
    assert synced.returncode == 0, synced.stderr[-2000:]
    exported = await asyncio.to_thread(run_limited, "export", "--origin", server.url, "--key", str(hostile[2]),
                                       "-o", str(tmp_path / "out.bundle"), "--filter", "bounds-*")
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert "2 packages, 2 tarballs" in exported.stdout
