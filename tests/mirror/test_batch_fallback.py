"""The exporter reads packuments and tarballs through the origin's batch read (``POST
/-/v1/batch``), and falls back to one GET each when the upstream has none — an older origin, an
edge, a plain npm registry, answering 404 or 405: the bundle holds the same files either way.

The upstream is a real HTTP server on 127.0.0.1 in front of the live origin: it passes every
request on (with its own Host, so the origin's links point at it, as they would at an edge),
counts what it saw, and can refuse the batch read or cut its answer short."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import pytest
from aiohttp import web
from yarl import URL

from eghact_mirror import signing
from eghact_mirror.client import DISTS
from eghact_mirror.errors import MirrorError
from eghact_mirror.export import ExportOptions, export
from eghact_mirror.selection import SelectionSpec
from eghact_mirror.verify import verify_bundle

from ..support import blob_path, manifest, publish_body, tarball_for
from .conftest import Live
from .helpers import InFrontOfOrigin, mirror, send

_HOP_BY_HOP = {"content-length", "transfer-encoding", "content-encoding", "connection"}


class Upstream(InFrontOfOrigin):
    """``mode``: "pass" (the batch read is passed on), 404 or 405 (refused as an upstream
    without it would), "cut" (its answer stops halfway), or "no-dists" (asked for a tarball
    list, it answers the full packument, as an origin older than that read does)."""

    def __init__(self, origin: str, *, own_host: bool = True):
        super().__init__(origin)
        self.own_host = own_host  # False: the origin's links name the origin, as behind an edge
        self.mode: str | int = "pass"
        self.seen: Counter[str] = Counter()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        is_batch = request.method == "POST" and request.path == "/-/v1/batch"
        kind = "batch" if is_batch else "tarball" if "/-/" in request.path and request.path.endswith(".tgz") \
            else "other" if request.path.startswith("/-/") else "packument"
        self.seen[kind] += 1
        if is_batch and isinstance(self.mode, int):
            return web.json_response({"error": "not_found", "message": "no such route"}, status=self.mode)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("accept", "authorization",
                                                                              "content-type")}
        if self.own_host:
            headers["Host"] = request.host
        data = await request.read()
        if is_batch and self.mode == "no-dists":
            data = data.replace(DISTS.encode(), b"application/json")
        async with self._session.request(request.method, URL(self.origin + request.raw_path, encoded=True),
                                         headers=headers, data=data) as answer:
            body = await answer.read()
            passed = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        if is_batch and self.mode == "cut":
            body = body[: len(body) // 2]
        return web.Response(body=body, status=answer.status, headers=passed)


async def _export(upstream: Upstream, key: signing.SigningKey, output: Path) -> dict[str, str]:
    report = await export(ExportOptions(origin=upstream.url, output=output), key)
    assert report.files > 0
    verified = verify_bundle(output, signing.load_trusted_key(output.parent / "key.pub"))
    return {f.path: f.sha512 for f in verified.index.files if f.path != "events.jsonl"}


async def test_the_same_bundle_with_the_batch_read_and_without(live: Live, tmp_path: Path) -> None:
    key = signing.generate(tmp_path / "key")
    async with Upstream(live.url) as upstream:
        batched = await _export(upstream, key, tmp_path / "batched.bundle")
        assert upstream.seen["batch"] >= 2  # packuments, then tarballs
        assert upstream.seen["tarball"] == upstream.seen["packument"] == 0
        tarballs = sum(path.startswith("tarballs/") for path in batched)
        packuments = len(batched) - tarballs
        for refusal in (404, 405):
            upstream.mode, upstream.seen = refusal, Counter()
            assert await _export(upstream, key, tmp_path / f"get-{refusal}.bundle") == batched
            # Asked once, then one GET per item: the answer is remembered for the whole export.
            assert upstream.seen["batch"] == 1
            assert (upstream.seen["tarball"], upstream.seen["packument"]) == (tarballs, packuments)


async def test_an_origin_without_the_tarball_list_gives_the_same_bundle(live: Live, tmp_path: Path) -> None:
    """The exporter learns which tarballs to fetch from the batch read's tarball list; where an
    origin answers a packument instead, it parses the packument: the bundle is the same."""
    key = signing.generate(tmp_path / "key")
    async with Upstream(live.url) as upstream:
        listed = await _export(upstream, key, tmp_path / "listed.bundle")
        upstream.mode = "no-dists"
        assert await _export(upstream, key, tmp_path / "parsed.bundle") == listed
        assert upstream.seen["tarball"] == upstream.seen["packument"] == 0


async def test_tarballs_come_through_the_upstream_whatever_host_the_links_name(live: Live, tmp_path: Path) -> None:
    """Behind an edge the origin renders links for itself: the exporter still reads every
    tarball through the URL it was given (the bytes are checked by digest)."""
    key = signing.generate(tmp_path / "key")
    async with Upstream(live.url) as upstream:
        expected = await _export(upstream, key, tmp_path / "own.bundle")
    async with Upstream(live.url, own_host=False) as upstream:
        got = await _export(upstream, key, tmp_path / "foreign.bundle")
        assert upstream.seen["tarball"] == 0 and upstream.seen["batch"] >= 2
    tarballs = {path: sha for path, sha in expected.items() if path.startswith("tarballs/")}
    assert {path: sha for path, sha in got.items() if path.startswith("tarballs/")} == tarballs


async def test_a_batch_answer_cut_short_is_retried_then_refused(live: Live, tmp_path: Path) -> None:
    key = signing.generate(tmp_path / "key")
    async with Upstream(live.url) as upstream:
        upstream.mode = "cut"
        with pytest.raises(MirrorError) as refused:
            await export(ExportOptions(origin=upstream.url, output=tmp_path / "cut.bundle"), key)
    assert refused.value.code == "origin_unavailable" and "batch" in refused.value.message
    assert upstream.seen["batch"] == 4  # retried, never taken for a short success
    assert not list(tmp_path.glob("*.bundle*")) and not list(tmp_path.glob(".cut.bundle*"))


async def test_a_big_tarball_travels_spooled_and_lands_whole(live: Live, tmp_path: Path) -> None:
    """Over the spool threshold in a batch frame, over the staging writer's small-file bound:
    the paths big tarballs take, end to end into a mirror."""
    doc = manifest("batch-big", "1.0.0")
    tarball = tarball_for(doc, {"blob.bin": os.urandom(1_500_000)})  # random: gzip leaves it 1.5 MB
    assert len(tarball) > 1 << 20
    assert send("PUT", f"{live.url}/batch-big", publish_body(doc, tarball), live.admin) == 201
    key = signing.generate(tmp_path / "key")
    bundle = tmp_path / "big.bundle"
    async with Upstream(live.url) as upstream:
        await export(ExportOptions(origin=upstream.url, output=bundle, selection=SelectionSpec(("batch-big",))), key)
        assert upstream.seen["tarball"] == 0
    mirror("import", str(bundle), "--into", str(tmp_path / "mirror"), "--trust", str(tmp_path / "key.pub"))
    digest = hashlib.sha512(tarball).hexdigest()
    assert blob_path(tmp_path / "mirror", digest).read_bytes() == tarball


async def test_a_tarball_that_fails_its_integrity_stops_the_export_and_leaves_no_bundle(live: Live,
                                                                                       tmp_path: Path) -> None:
    """The check runs on the writer's thread, mid-stream: the refusal still ends the export
    with nothing that looks like a bundle, and the origin's rotten blob is not carried."""
    import base64
    import json
    import urllib.request

    live.publish("export-rot", "1.0.0")
    with urllib.request.urlopen(f"{live.url}/export-rot", timeout=30) as response:
        integrity = json.loads(response.read())["versions"]["1.0.0"]["dist"]["integrity"]
    digest = base64.b64decode(integrity.removeprefix("sha512-")).hex()
    blob = blob_path(live.data, digest)
    good = blob.read_bytes()
    blob.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # the origin's disk rots
    try:
        with pytest.raises(MirrorError) as refused:
            await export(ExportOptions(origin=live.url, output=tmp_path / "rot.bundle"),
                         signing.generate(tmp_path / "k"))
    finally:
        blob.write_bytes(good)
    assert refused.value.code == "digest_mismatch" and "export-rot" in refused.value.message
    assert not list(tmp_path.glob("*.bundle*")) and not list(tmp_path.glob(".rot.bundle*"))
