"""The online follower: it catches up in batches, follows new changes (also by long poll),
refuses a tarball that fails its integrity, resumes across a crash that left ``mirror.json``
behind, and leaves a chain that bundles exported later (``--after`` the synced dir) continue."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from eghact_mirror import signing

from ..support import OriginProcess, blob_path, tree_digest
from .conftest import Live
from .helpers import ENV, feed_names, get, mirror, mirror_cmd, refused, served


def assert_same(live: Live, mirror_dir: Path, names: list[str] | None = None) -> None:
    names = names or feed_names(live.url)
    expected = served(live.url, names)
    server = OriginProcess(mirror_dir, ("--read-only",)).start()
    try:
        docs, tarballs = served(server.url, names)
    finally:
        assert server.stop() == 0
    rebase = (live.url.encode(), server.url.encode())
    assert docs == {k: None if v is None else v.replace(*rebase) for k, v in expected[0].items()}
    assert tarballs == expected[1]


def test_sync_catches_up_in_batches_then_follows(live: Live) -> None:
    into = live.root / "m1"
    done = live.sync(into, "--once", "--batch", "150")
    assert done.stdout.count("applied batch") >= 2
    state = json.loads((into / "mirror.json").read_text())
    assert len(state["bundle_chain"]) == done.stdout.count("applied batch")
    assert sorted(p.stem for p in (into / "sync").glob("*.json")) == sorted(state["bundle_chain"])
    live.publish("sync-new", "1.0.0")
    live.publish("sync-new", "1.1.0", dependencies={"sync-new-dep": "^1.0.0"})
    live.publish("sync-new-dep", "1.0.0")
    done = live.sync(into, "--once")
    assert done.stdout.count("applied batch") == 1
    assert "nothing" not in live.sync(into, "--once").stderr  # caught up: a clean exit, no batch
    assert_same(live, into)


def test_sync_long_polls_for_the_next_change(live: Live) -> None:
    into = live.root / "m1"
    follower = subprocess.Popen(mirror_cmd("sync", "--origin", live.url, "--into", str(into), "--max-batches", "1",
                                           "--wait", "20"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=ENV)
    time.sleep(1.5)  # let it reach its long poll
    live.publish("sync-polled", "1.0.0")
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert out.count("applied batch") == 1
    assert json.loads(get(f"{live.url}/sync-polled"))["versions"]


def test_sync_refuses_a_tarball_that_fails_its_integrity(live: Live) -> None:
    into = live.root / "m1"
    live.publish("sync-bad", "1.0.0")
    doc = json.loads(get(f"{live.url}/sync-bad"))
    digest = bytes(__import__("base64").b64decode(doc["versions"]["1.0.0"]["dist"]["integrity"][7:])).hex()
    blob = blob_path(live.data, digest)
    good = blob.read_bytes()
    before = tree_digest(into)
    blob.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # the origin's disk rots
    try:
        result = live.sync(into, "--once", check=False)
        assert refused(result) == (15, "digest_mismatch"), result.stderr
        assert tree_digest(into) == before
    finally:
        blob.write_bytes(good)
    live.sync(into, "--once")


def test_sync_resumes_when_a_crash_left_mirror_json_behind(live: Live) -> None:
    into = live.root / "m1"
    stale = (into / "mirror.json").read_text()
    live.publish("sync-crash", "1.0.0")
    live.sync(into, "--once")
    applied = json.loads((into / "mirror.json").read_text())["last_bundle"]
    (into / "mirror.json").write_text(stale)  # as if killed between mirror-apply's commit and this file
    live.publish("sync-crash", "1.0.1")
    done = live.sync(into, "--once")
    assert done.stdout.count("applied batch") == 1
    state = json.loads((into / "mirror.json").read_text())
    assert state["bundle_chain"][-2] == applied  # it went on from the batch the stale file did not know
    assert state["applied_seq"] == json.loads(get(f"{live.url}/-/health"))["seq"]


def test_a_filtered_sync_holds_only_its_packages(live: Live) -> None:
    into = live.root / "filtered"
    live.sync(into, "--once", "--filter", "sync-*")
    conn = sqlite3.connect(into / "registry.sqlite3")
    try:
        held = {row[0] for row in conn.execute("SELECT name FROM packages WHERE full_doc IS NOT NULL")}
        feed = {row[0] for row in conn.execute("SELECT DISTINCT name FROM changes")}
    finally:
        conn.close()
    wanted = {n for n in feed_names(live.url) if n.startswith("sync-")}
    assert held == wanted and feed <= wanted


def test_bundles_exported_after_a_synced_dir_continue_its_chain(live: Live) -> None:
    synced = live.root / "m1"
    air = live.root / "air-gapped" / "mirror"
    shutil.copytree(synced, air)  # the one-time copy across the gap
    signing.generate(live.root / "key")
    live.publish("sync-later", "1.0.0")
    bundle = live.root / "later.bundle"
    mirror("export", "--origin", live.url, "--key", str(live.root / "key"), "-o", str(bundle), "--after", str(synced))
    done = mirror("import", str(bundle), "--into", str(air), "--trust", str(live.root / "key.pub"))
    assert "APPLIED" in done.stdout
    # The other way to say where to start: what the far side's mirror.json shows, carried over.
    position = json.loads((air / "mirror.json").read_text())
    live.publish("sync-later", "1.0.1")
    mirror("export", "--origin", live.url, "--key", str(live.root / "key"), "-o", str(bundle), "--since",
           str(position["applied_seq"]), "--previous", position["last_bundle"])
    mirror("import", str(bundle), "--into", str(air), "--trust", str(live.root / "key.pub"))
    assert_same(live, air)


def test_a_following_sync_stops_cleanly_on_sigterm(live: Live) -> None:
    """SIGTERM while the follower waits in its long poll: it stops at once (not when the 30 s
    poll ends), exits 0 with its position, and leaves a whole mirror and no staging dir."""
    into = live.root / "m-sigterm"
    follower = subprocess.Popen(mirror_cmd("sync", "--origin", live.url, "--into", str(into), "--wait", "30"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        head = json.loads(get(f"{live.url}/-/health"))["seq"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and follower.poll() is None:
            state = into / "mirror.json"
            if state.exists() and json.loads(state.read_text())["applied_seq"] >= head:
                break
            time.sleep(0.05)
        time.sleep(0.5)  # caught up: into its long poll
        follower.send_signal(signal.SIGTERM)
        out, err = follower.communicate(timeout=20)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0, err
    assert f"mirror at seq {head} after" in out
    assert not list(live.root.glob(f".{into.name}.staging-*"))
    assert_same(live, into)
