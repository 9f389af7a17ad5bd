"""``eghact-origin seed``: a generated universe stored and served as a registry."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from pathlib import Path

from eghact_common.integrity import sri_sha512

from ..support import OriginProcess, cli, escaped


def packuments(data: Path) -> dict[str, bytes]:
    conn = sqlite3.connect(f"file:{data / 'registry.sqlite3'}?mode=ro", uri=True)
    try:
        return {name: bytes(doc) for name, doc in conn.execute("SELECT name, full_doc FROM packages")}
    finally:
        conn.close()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_seed_is_deterministic_and_serves_a_coherent_universe(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    out = cli("seed", "--data", str(first), "--plugins", "80", "--seed", "5", "--workers", "1").stdout
    assert "seeded 80 packages" in out
    cli("seed", "--data", str(second), "--plugins", "80", "--seed", "5", "--workers", "1")
    assert packuments(first) == packuments(second)

    origin = OriginProcess(first).start()
    try:
        changes = get_json(f"{origin.url}/-/v1/changes?limit=10000")["results"]
        published = [e for e in changes if e["type"] == "publish"]
        advisories = [e for e in changes if e["type"] == "advisory"]
        assert len({e["name"] for e in published}) == 80 and advisories
        biggest = max({e["name"] for e in published}, key=lambda n: sum(e["name"] == n for e in published))
        doc = get_json(f"{origin.url}/{escaped(biggest)}")
        assert len(doc["versions"]) == sum(e["name"] == biggest for e in published)
        for version in list(doc["versions"].values())[:5]:
            with urllib.request.urlopen(version["dist"]["tarball"], timeout=10) as response:
                assert sri_sha512(response.read()) == version["dist"]["integrity"]
        for kind in ("component", "transformer", "middleware", "theme", "library"):
            found = get_json(f"{origin.url}/-/v1/search?type={kind}&size=5")
            assert found["total"] > 0, kind
            assert all(o["package"]["eghact"]["type"] == kind for o in found["objects"])
        advisory = advisories[0]["advisory"]
        target = get_json(f"{origin.url}/{escaped(advisory['name'])}")
        body = json.dumps({advisory["name"]: list(target["versions"])}).encode()
        request = urllib.request.Request(f"{origin.url}/-/npm/v1/security/advisories/bulk", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            report = json.loads(response.read())
        assert any(a["id"] == advisory["id"] for a in report.get(advisory["name"], []))
    finally:
        assert origin.stop() == 0
    assert "intact" in cli("audit-verify", "--data", str(first)).stdout
