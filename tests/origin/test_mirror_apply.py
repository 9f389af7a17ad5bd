"""``eghact-origin mirror-apply``: a staged bundle applied to a data dir makes a read-only
origin that serves exactly what the source origin served."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

from eghact_common.wire import STAGE_FORMAT

from ..support import OriginProcess, cli, escaped, get, manifest, publish_body, tree_digest


def send(method: str, url: str, body: Any, token: str) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


CORGI = "application/vnd.npm.install-v1+json"


def stage(origin: OriginProcess, into: Path, *, since: int, previous: str | None, origin_id: str) -> dict[str, Any]:
    """What eghact-mirror's export+verify produce, done the simplest way over HTTP."""
    events = json.loads(get(f"{origin.url}/-/v1/changes?since={since}&limit=10000"))["results"]
    names = sorted({e["name"] for e in events if e["type"] != "advisory"})
    (into / "tarballs").mkdir(parents=True)
    packages, removed, tarballs = [], [], {}
    with open(into / "packuments.pack", "wb") as pack:
        for name in names:
            try:
                full = get(f"{origin.url}/{escaped(name)}")
            except urllib.error.HTTPError as error:
                assert error.code == 404
                removed.append(name)
                continue
            entry: dict[str, Any] = {"name": name}
            for form, body in (("full", full), ("abbreviated", get(f"{origin.url}/{escaped(name)}", CORGI))):
                entry[form] = [pack.tell(), len(body)]
                pack.write(body)
            packages.append(entry)
            for version in json.loads(full)["versions"].values():
                data = get(version["dist"]["tarball"])
                digest = hashlib.sha512(data).hexdigest()
                folder = into / "tarballs" / digest[:2]
                folder.mkdir(parents=True, exist_ok=True)
                (folder / digest).write_bytes(data)
                tarballs[digest] = len(data)
    to_seq = events[-1]["seq"] if events else since
    digest = hashlib.sha256(json.dumps([since, to_seq, names]).encode()).hexdigest()
    (into / "events.jsonl").write_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in events))
    manifest_ = {"format": STAGE_FORMAT, "origin_id": origin_id, "from_seq": since, "to_seq": to_seq,
                 "bundle_digest": digest, "previous_digest": previous, "base_url": origin.url,
                 "packuments": "packuments.pack", "packages": packages, "removed": removed, "tarballs": tarballs,
                 "events": "events.jsonl", "event_count": len(events)}
    (into / "stage.json").write_text(json.dumps(manifest_))
    return manifest_


def apply(mirror: Path, staged: Path, *, check: bool = True) -> tuple[int, dict[str, Any]]:
    result = cli("mirror-apply", "--data", str(mirror), "--staged", str(staged), check=check)
    return result.returncode, json.loads(result.stdout)


def test_full_then_incremental_bundles_reproduce_the_origin(tmp_path: Path) -> None:
    data = tmp_path / "origin"
    admin = cli("token", "create", "--data", str(data), "--name", "a", "--scope", "admin").stdout.splitlines()[-1]
    origin = OriginProcess(data).start()
    mirror_dir = tmp_path / "mirror"
    try:
        origin_id = json.loads(get(f"{origin.url}/-/health"))["registry_id"]
        for name, version in [("m-a", "1.0.0"), ("m-a", "1.1.0"), ("@s/m-b", "2.0.0"), ("m-c", "0.1.0")]:
            assert send("PUT", f"{origin.url}/{escaped(name)}", publish_body(manifest(name, version)), admin) == 201
        cli("advisory", "add", "--data", str(data), "--name", "m-a", "--range", "<1.1.0", "--severity", "high",
            "--title", "bad")
        first = stage(origin, tmp_path / "s1", since=0, previous=None, origin_id=origin_id)
        code, report = apply(mirror_dir, tmp_path / "s1")
        assert code == 0 and report["applied"] and report["to_seq"] == first["to_seq"]

        # Changes between bundles: a publish, a deprecation, an unpublish, a whole package gone.
        assert send("PUT", f"{origin.url}/m-a", publish_body(manifest("m-a", "1.2.0")), admin) == 201
        doc = json.loads(get(f"{origin.url}/m-a"))
        doc["versions"]["1.0.0"]["deprecated"] = "old"
        assert send("PUT", f"{origin.url}/m-a", doc, admin) == 200
        urllib.request.urlopen(urllib.request.Request(f"{origin.url}/@s%2fm-b/-rev/x", method="DELETE",
                                                      headers={"Authorization": f"Bearer {admin}"}), timeout=10)
        second = stage(origin, tmp_path / "s2", since=first["to_seq"], previous=first["bundle_digest"],
                       origin_id=origin_id)
        before = tree_digest(mirror_dir)
        code, _ = apply(mirror_dir, tmp_path / "s2")
        assert code == 0
        assert tree_digest(mirror_dir) != before

        expected = {(path, accept): get(origin.url + path, accept) for path in ("/m-a", "/m-c", "/m-a/1.0.0")
                    for accept in (None, CORGI)}
        origin_seq = json.loads(get(f"{origin.url}/-/health"))["seq"]
    finally:
        origin.stop()

    replay_before = tree_digest(mirror_dir)
    assert apply(mirror_dir, tmp_path / "s2")[1]["applied"] is False  # a replay is a no-op
    assert tree_digest(mirror_dir) == replay_before
    code, body = apply(mirror_dir, tmp_path / "s1", check=False)
    assert (code, body["error"]) == (16, "replay")
    older = json.loads((tmp_path / "s1" / "stage.json").read_text())
    older["bundle_digest"] = "f" * 64  # an older range under a new name: a downgrade
    (tmp_path / "s1" / "stage.json").write_text(json.dumps(older))
    code, body = apply(mirror_dir, tmp_path / "s1", check=False)
    assert (code, body["error"]) == (12, "downgrade")
    assert tree_digest(mirror_dir) == replay_before

    mirror = OriginProcess(mirror_dir, ("--read-only",)).start()
    try:
        for (path, accept), body in expected.items():
            served = get(mirror.url + path, accept)
            assert served == body.replace(origin.url.encode(), mirror.url.encode()), path
        try:
            get(f"{mirror.url}/@s%2fm-b")
            raise AssertionError("an unpublished package is still served")
        except urllib.error.HTTPError as error:
            assert error.code == 404
        audit = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"{mirror.url}/-/npm/v1/security/advisories/bulk", data=b'{"m-a": ["1.0.0"]}', method="POST"),
            timeout=10).read())
        assert audit["m-a"][0]["title"] == "bad"
        health = json.loads(get(f"{mirror.url}/-/health"))
        assert health["seq"] == origin_seq and health["read_only"]
        tarball = json.loads(get(f"{mirror.url}/m-a/1.2.0"))["dist"]["tarball"]
        assert tarball.startswith(mirror.url)
        assert len(get(tarball)) > 0
    finally:
        assert mirror.stop() == 0
    state = json.loads((mirror_dir / "mirror.json").read_text())
    assert state["applied_seq"] == second["to_seq"]
    assert state["bundle_chain"] == [first["bundle_digest"], second["bundle_digest"]]
    # The stored version fragments (cut out of the served packuments, not re-serialised) are the
    # origin's own, byte for byte: a later re-render on the mirror would give what the origin gives.
    query = ("SELECT name, version, doc, abbrev, deprecated, blob_digest, size FROM versions"
             " WHERE unpublished IS NULL ORDER BY name, version")
    with closing(sqlite3.connect(data / "registry.sqlite3")) as at_origin, \
            closing(sqlite3.connect(mirror_dir / "registry.sqlite3")) as at_mirror:
        rows = at_origin.execute(query).fetchall()
        assert rows == at_mirror.execute(query).fetchall()
    assert any(row[4] == "old" for row in rows)  # a deprecated version is among them


def test_out_of_order_and_foreign_bundles_change_nothing(tmp_path: Path) -> None:
    data = tmp_path / "origin"
    admin = cli("token", "create", "--data", str(data), "--name", "a", "--scope", "admin").stdout.splitlines()[-1]
    origin = OriginProcess(data).start()
    try:
        assert send("PUT", f"{origin.url}/o-a", publish_body(manifest("o-a", "1.0.0")), admin) == 201
        first = stage(origin, tmp_path / "s1", since=0, previous=None, origin_id="origin-1")
        assert send("PUT", f"{origin.url}/o-a", publish_body(manifest("o-a", "1.0.1")), admin) == 201
        stage(origin, tmp_path / "s2", since=first["to_seq"], previous=first["bundle_digest"], origin_id="origin-1")
        stage(origin, tmp_path / "s3", since=0, previous=None, origin_id="origin-2")
    finally:
        origin.stop()
    mirror = tmp_path / "mirror"
    code, body = apply(mirror, tmp_path / "s2", check=False)
    assert (code, body["error"]) == (13, "out_of_order")
    assert apply(mirror, tmp_path / "s1")[0] == 0
    before = tree_digest(mirror)
    code, body = apply(mirror, tmp_path / "s3", check=False)
    assert (code, body["error"]) == (11, "wrong_origin")
    assert tree_digest(mirror) == before
