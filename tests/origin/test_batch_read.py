"""``POST /-/v1/batch`` against a real origin on 127.0.0.1: each frame is what a GET of its path
answers (status, headers, bytes), private scopes are enforced item by item, and a bad batch is
refused as a whole with a 400 and a stable error code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eghact_origin.http import batch
from eghact_origin.http.batch import MAX_ITEMS, MEDIA_TYPE

from ..conftest import LiveOrigin, start_origin
from ..support import escaped, manifest, publish_body

CORGI = "application/vnd.npm.install-v1+json"
SAME_HEADERS = ("Content-Type", "ETag", "Cache-Control", "Surrogate-Key", "Eghact-Seq", "Vary", "Repr-Digest",
                "Eghact-Integrity")


async def publish(origin: LiveOrigin, token: str, name: str, version: str) -> None:
    async with origin.session.put(f"{origin.url}/{escaped(name)}", json=publish_body(manifest(name, version)),
                                  headers=origin.auth(token)) as response:
        assert response.status == 201, await response.text()


def frames(body: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """The frames of a batch answer, checking the framing as a reader must."""
    found = []
    pos = 0
    while pos < len(body):
        end = body.index(b"\n", pos)
        head = json.loads(body[pos:end])
        start = end + 1
        data = body[start:start + head["length"]]
        assert len(data) == head["length"] and body[start + head["length"]:start + head["length"] + 1] == b"\n"
        found.append((head, data))
        pos = start + head["length"] + 1
    return found


async def read_batch(origin: LiveOrigin, items: list[Any], token: str | None = None) -> list[tuple[dict[str, Any],
                                                                                                  bytes]]:
    async with origin.session.post(f"{origin.url}/-/v1/batch", json=items,
                                   headers=origin.auth(token) if token else {}) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == MEDIA_TYPE
        assert response.headers["Cache-Control"] == "no-store"
        return frames(await response.read())


async def test_each_frame_is_what_a_get_answers(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    await publish(origin, token, "batch-a", "1.0.0")
    await publish(origin, token, "batch-a", "1.1.0")
    await publish(origin, token, "@eg/batch-b", "2.0.0")
    items: list[Any] = [
        "/batch-a", {"path": "/batch-a", "accept": CORGI}, "/batch-a/1.0.0", "/batch-a/latest",
        "/batch-a/-/batch-a-1.1.0.tgz", "/@eg%2fbatch-b", "/@eg/batch-b", {"path": "/@eg%2Fbatch-b", "accept": CORGI},
        "/@eg/batch-b/-/batch-b-2.0.0.tgz", "/nothing-here", "/batch-a/9.9.9", "/batch-a/-/batch-a-9.9.9.tgz",
        "/.bad-name", "/batch-a/x/y/z",
    ]
    answered = await read_batch(origin, items)
    assert [head["path"] for head, _ in answered] == [i if isinstance(i, str) else i["path"] for i in items]
    for item, (head, body) in zip(items, answered, strict=True):
        path, accept = (item, None) if isinstance(item, str) else (item["path"], item["accept"])
        async with origin.session.get(origin.url + path, headers={"Accept": accept} if accept else {}) as response:
            assert head["status"] == response.status, path
            expected = await response.read()
            if response.status == 200:
                assert body == expected, path
                for name in SAME_HEADERS:
                    assert head["headers"].get(name) == response.headers.get(name), (path, name)
            else:
                assert json.loads(body)["error"] == json.loads(expected)["error"], path
    codes = [json.loads(body)["error"] for head, body in answered if head["status"] != 200]
    assert codes == ["not_found"] * 3 + ["invalid_name", "not_found"]


async def test_private_scopes_are_enforced_item_by_item(origin: LiveOrigin) -> None:
    await publish(origin, origin.token("publish:*"), "@acme/secret", "1.0.0")
    await publish(origin, origin.token("publish:*"), "open-pkg", "1.0.0")
    items = ["/@acme/secret", "/@acme/secret/-/secret-1.0.0.tgz", "/open-pkg"]
    anonymous = await read_batch(origin, items)
    assert [head["status"] for head, _ in anonymous] == [401, 401, 200]
    assert json.loads(anonymous[0][1])["error"] == "auth_required"
    other = await read_batch(origin, items, origin.token("read:@other/*"))
    assert [head["status"] for head, _ in other] == [403, 403, 200]
    allowed = await read_batch(origin, items, origin.token("read:@acme/*"))
    assert [head["status"] for head, _ in allowed] == [200, 200, 200]
    for head, _ in allowed[:2]:
        assert head["headers"]["Cache-Control"].startswith("private")
        assert "Authorization" in head["headers"]["Vary"]
    assert allowed[2][0]["headers"]["Cache-Control"].startswith("public")


@pytest.mark.parametrize(("body", "code", "mentions"), [
    (b"[not json", "invalid_json", ""),
    (b'{"paths": ["/a"]}', "invalid_batch", "array"),
    (b'["/-/v1/changes", 42, {"path": "/ok", "accept": 7}, "relative", "/a?x=1"]', "invalid_batch", "item 4"),
    (json.dumps(["/a"] * (MAX_ITEMS + 1)).encode(), "batch_too_large", str(MAX_ITEMS)),
])
async def test_a_bad_batch_is_refused_as_a_whole(origin: LiveOrigin, body: bytes, code: str, mentions: str) -> None:
    async with origin.session.post(f"{origin.url}/-/v1/batch", data=body,
                                   headers={"Content-Type": "application/json"}) as response:
        assert response.status == 400
        error = await response.json()
    assert error["error"] == code and mentions in error["message"]
    if code == "invalid_batch" and mentions == "item 4":
        assert len(error["detail"]["problems"]) == 5  # every problem, not only the first


async def test_a_long_batch_streams_in_many_chunks(origin: LiveOrigin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "GROUP_BYTES", 2000)  # groups of one or two items: many writes
    token = origin.token("publish:*")
    await publish(origin, token, "batch-many", "1.0.0")
    items = ["/batch-many", "/batch-many/-/batch-many-1.0.0.tgz", "/batch-missing"] * 300
    answered = await read_batch(origin, items)
    assert len(answered) == 900
    assert [head["status"] for head, _ in answered[:3]] == [200, 200, 404]
    assert len({body for head, body in answered if head["path"] == items[1]}) == 1


async def test_a_read_only_mirror_serves_batches(tmp_path: Any) -> None:
    import aiohttp

    runner, url = await start_origin(tmp_path / "data", read_only=True)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/-/v1/batch", json=["/absent"]) as response:
                assert response.status == 200
                (head, body), = frames(await response.read())
            assert head["status"] == 404 and json.loads(body)["error"] == "not_found"
            async with session.get(f"{url}/-/v1/batch") as response:
                assert response.status == 405  # a reader that probes with GET learns the method
    finally:
        await runner.cleanup()


async def test_the_tarball_list_names_what_the_packument_names(origin: LiveOrigin) -> None:
    """The dists read (batch only): each live version's tarball file, sha512 and size, at the
    packument's seq, so a mirror exporter need not parse the packument; errors as a packument's."""
    import base64

    token = origin.token("publish:*")
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        await publish(origin, token, "@eg/listed", version)
    async with origin.session.get(f"{origin.url}/{escaped('@eg/listed')}") as response:
        doc = await response.json()
    del doc["versions"]["1.1.0"]
    async with origin.session.put(f"{origin.url}/{escaped('@eg/listed')}/-rev/1", json=doc,
                                  headers=origin.auth(origin.token("admin"))) as response:
        assert response.status == 200, await response.text()
    await publish(origin, origin.token("publish:*"), "@acme/hidden", "1.0.0")
    dists = {"accept": batch.DISTS_TYPE}
    items = [{"path": "/@eg%2flisted", "accept": CORGI}, {"path": "/@eg%2flisted", **dists},
             {"path": "/nothing-here", **dists}, {"path": "/@acme/hidden", **dists}]
    async with origin.session.post(f"{origin.url}/-/v1/batch?headers=eghact-seq,content-type",
                                   json=items) as response:
        (short_head, short), (head, body), (missing, missing_body), (hidden, _) = frames(await response.read())
    assert head["status"] == 200 and head["headers"] == {"Content-Type": batch.DISTS_TYPE,
                                                         "Eghact-Seq": short_head["headers"]["Eghact-Seq"]}
    assert short_head["headers"] == {"Content-Type": CORGI, "Eghact-Seq": short_head["headers"]["Eghact-Seq"]}
    listed = json.loads(body)
    assert listed["name"] == "@eg/listed"
    served = json.loads(short)["versions"]
    assert sorted(row[0] for row in listed["dists"]) == ["1.0.0", "1.2.0"] == sorted(served)
    for version, file, sha512, size in listed["dists"]:
        dist = served[version]["dist"]
        assert dist["tarball"].endswith(f"/@eg/listed/-/{file}")
        assert dist["integrity"] == "sha512-" + base64.b64encode(bytes.fromhex(sha512)).decode()
        async with origin.session.get(dist["tarball"]) as response:
            assert size == len(await response.read())
    assert missing["status"] == 404 and json.loads(missing_body)["error"] == "not_found"
    assert hidden["status"] == 401


@pytest.mark.parametrize("path", ["/a", "/@s%2fb/-/b-1.0.0.tgz", '/"x', "/é\\\n", "/\x7f\u2028", "/\x00"])
def test_frame_heads_are_formatted_as_the_json_encoder_would(path: str) -> None:
    """The batch read formats frame heads directly (it writes tens of thousands): byte for byte
    what encoding the dict gives, escapes included."""
    head = batch._frame_head(path, 404, 17, '{"Eghact-Seq":"3"}')
    assert head == json.dumps({"path": path, "status": 404, "length": 17, "headers": {"Eghact-Seq": "3"}},
                              separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


async def test_a_blob_missing_or_cut_short_is_an_error_frame_and_the_stream_goes_on(origin: LiveOrigin) -> None:
    token = origin.token("publish:*")
    for name in ("blob-gone", "blob-short", "blob-fine"):
        await publish(origin, token, name, "1.0.0")
    paths = [f"/{name}/-/{name}-1.0.0.tgz" for name in ("blob-gone", "blob-short", "blob-fine")]
    (_, whole), = await read_batch(origin, [paths[1]])
    blobs = origin.registry.blobs
    digests = [(await origin.registry.tarball(n, f"{n}-1.0.0.tgz")).blob_digest for n in ("blob-gone", "blob-short")]
    blobs.path_for(digests[0]).unlink()
    blobs.path_for(digests[1]).write_bytes(whole[:-10])  # a torn write: the size no longer matches
    gone, short, fine = await read_batch(origin, paths)
    assert gone[0]["status"] == short[0]["status"] == 500
    assert json.loads(gone[1])["error"] == json.loads(short[1])["error"] == "internal_error"
    assert fine[0]["status"] == 200 and fine[0]["length"] == len(fine[1]) > 0
