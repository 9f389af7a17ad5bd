"""``eghact-origin`` as operators use it: tokens, advisories, audit verification,
read-only serving, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import threading
import urllib.error
import urllib.request
from pathlib import Path

from ..support import OriginProcess, cli, manifest, publish_body


def request(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_token_create_prints_the_token_on_its_last_line_and_revoke_works(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    out = cli("token", "create", "--data", data, "--name", "ci", "--scope", "publish:@acme/*", "--scope", "read")
    token = out.stdout.splitlines()[-1]
    assert token.startswith("egh_") and len(token) > 40
    assert token not in (tmp_path / "data" / "registry.sqlite3").read_bytes().decode("latin-1")
    listed = cli("token", "list", "--data", data).stdout
    assert "ci" in listed and "publish:@acme/*,read" in listed and "active" in listed
    bad = cli("token", "create", "--data", data, "--name", "x", "--scope", "write:*", check=False)
    assert bad.returncode == 1 and "invalid scope" in bad.stderr
    cli("token", "revoke", "--data", data, "--name", "ci")
    assert "revoked" in cli("token", "list", "--data", data).stdout
    assert cli("token", "revoke", "--data", data, "--name", "ci", check=False).returncode == 1


def test_advisory_add_validates_its_range(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    bad = cli("advisory", "add", "--data", data, "--name", "x", "--range", "not a range", "--severity", "high",
              "--title", "t", check=False)
    assert bad.returncode == 2 and "not a semver range" in bad.stderr
    ok = cli("advisory", "add", "--data", data, "--name", "x", "--range", ">=1.0.0 <1.2.0", "--severity", "high",
             "--title", "t")
    assert json.loads(ok.stdout)["seq"] == 1


def test_audit_verify_finds_the_first_tampered_record(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(4):
        cli("token", "create", "--data", str(data), "--name", f"t{i}", "--scope", "read")
    cli("advisory", "add", "--data", str(data), "--name", "x", "--range", "<2", "--severity", "low", "--title", "t")
    assert "intact: 5 records" in cli("audit-verify", "--data", str(data)).stdout
    log = data / "audit.jsonl"
    original = log.read_bytes()
    lines = original.splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"t2"', b'"tX"')
    log.write_bytes(b"".join(lines))
    tampered = cli("audit-verify", "--data", str(data), check=False)
    assert tampered.returncode == 1 and "line 3" in tampered.stdout
    log.write_bytes(b"".join(original.splitlines(keepends=True)[:-2]))
    truncated = cli("audit-verify", "--data", str(data), check=False)
    assert truncated.returncode == 1 and "TRUNCATED" in truncated.stdout


def test_read_only_origin_refuses_writes_but_serves_reads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = cli("token", "create", "--data", str(data), "--name", "w", "--scope", "admin").stdout.splitlines()[-1]
    writable = OriginProcess(data).start()
    try:
        status, _ = request("PUT", f"{writable.url}/ro-pkg", publish_body(manifest("ro-pkg", "1.0.0")), token)
        assert status == 201
    finally:
        assert writable.stop() == 0
    readonly = OriginProcess(data, ("--read-only",)).start()
    try:
        status, body = request("PUT", f"{readonly.url}/ro-pkg", publish_body(manifest("ro-pkg", "1.0.1")), token)
        assert (status, body["error"]) == (405, "read_only")
        status, body = request("GET", f"{readonly.url}/ro-pkg")
        assert status == 200 and list(body["versions"]) == ["1.0.0"]
        status, body = request("POST", f"{readonly.url}/-/npm/v1/security/advisories/bulk", {"ro-pkg": ["1.0.0"]})
        assert status == 200
    finally:
        assert readonly.stop() == 0


def test_sigterm_stops_cleanly_with_a_feed_stream_open(tmp_path: Path) -> None:
    origin = OriginProcess(tmp_path / "data").start()
    opened = threading.Event()

    def follow() -> None:
        with urllib.request.urlopen(f"{origin.url}/-/v1/changes?feed=sse", timeout=30) as stream:
            opened.set()
            while stream.readline():
                pass

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert opened.wait(10)
    assert origin.stop(signal.SIGTERM, timeout=15) == 0
    reader.join(10)
    assert not reader.is_alive(), "the SSE stream was not closed on shutdown"
