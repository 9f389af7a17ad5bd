"""The scenario every bundle test shares (built once per session: exports are the slow part).

A seeded universe (60 plugins) on a real origin, then four bundles:

    b0   full (split into parts of 256 KiB)                seq 0 -> s0
    b0x  full again, one file, the same range: a "downgrade" once the mirror is past s0
    b1   after b0: new packages mirror-lib and mirror-app (which depends on mirror-lib and a
         seeded leaf), and a new version of that seeded leaf
    b2   after b1: mirror-lib@1.0.0 deprecated, mirror-lib@1.1.0 published, an advisory
    b3   after b2: the leaf's new version unpublished, a seeded package unpublished whole,
         a dist-tag added

What the origin served at the end (packuments full and abbreviated, tarballs) is kept, and
the origin is stopped: whatever reads the mirror afterwards has no origin to fall back on.

``live`` is another seeded origin that stays up for the session, for the follower and the
selection tests (they publish under their own prefixes, ``sync-`` and ``sel-``).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from eghact_mirror import signing

from ..support import OriginProcess, cli, escaped, manifest, publish_body
from .helpers import feed_names, get, mirror, send, served

SIZE = "256K"


@dataclass
class Scenario:
    root: Path
    key: Path
    trust: Path
    other_trust: Path
    bundles: dict[str, Path] = field(default_factory=dict)
    origin_url: str = ""
    names: list[str] = field(default_factory=list)
    docs: dict[tuple[str, str | None], bytes | None] = field(default_factory=dict)
    tarballs: dict[str, bytes] = field(default_factory=dict)
    leaf: str = ""
    gone: str = ""

    def import_(self, bundle: str, into: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return mirror("import", str(self.bundles[bundle]), "--into", str(into), "--trust", str(self.trust),
                      check=check)


def _dependency_free(url: str, names: list[str], exclude: set[str]) -> list[str]:
    found = []
    for name in names:
        doc = json.loads(get(f"{url}/{escaped(name)}"))
        if name in exclude or name.startswith("@"):
            continue
        if not any(v.get(f) for v in doc["versions"].values()
                   for f in ("dependencies", "peerDependencies", "optionalDependencies")):
            found.append(name)
    return found


def _needed_by_others(url: str, names: list[str]) -> set[str]:
    needed: set[str] = set()
    for name in names:
        doc = json.loads(get(f"{url}/{escaped(name)}"))
        for version in doc["versions"].values():
            for f in ("dependencies", "peerDependencies", "optionalDependencies"):
                needed.update(version.get(f) or {})
    return needed


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    root = tmp_path_factory.mktemp("scenario")
    data = root / "origin"
    cli("seed", "--data", str(data), "--plugins", "60", "--seed", "3")
    admin = cli("token", "create", "--data", str(data), "--name", "a", "--scope", "admin").stdout.splitlines()[-1]
    mirror("keygen", "-o", str(root / "key"))
    signing.generate(root / "other")
    s = Scenario(root, root / "key", root / "key.pub", root / "other.pub")
    origin = OriginProcess(data).start()
    s.origin_url = url = origin.url
    try:
        def export(name: str, *extra: str) -> None:
            s.bundles[name] = root / f"{name}.bundle"
            mirror("export", "--origin", url, "--key", str(s.key), "-o", str(s.bundles[name]), *extra)

        def publish(doc: dict[str, object]) -> None:
            assert send("PUT", f"{url}/{escaped(str(doc['name']))}", publish_body(doc), admin) == 201

        export("b0", "--max-size", SIZE)
        # The index's `created` has one-second resolution, and two exports of one range within
        # a second are the same bundle (same index, same digest): b0x must be another one.
        time.sleep(1.05 - time.time() % 1)
        export("b0x", "--since", "0")

        seeded = feed_names(url)
        needed = _needed_by_others(url, seeded)
        s.leaf = _dependency_free(url, seeded, set())[0]
        s.gone = next(n for n in _dependency_free(url, seeded, needed | {s.leaf}))
        leaf_latest = json.loads(get(f"{url}/{escaped(s.leaf)}"))["dist-tags"]["latest"]
        publish(manifest("mirror-lib", "1.0.0"))
        publish(manifest("mirror-app", "1.0.0", dependencies={"mirror-lib": "^1.0.0", s.leaf: "*"}))
        publish(manifest(s.leaf, "99.0.0"))
        export("b1", "--after", str(s.bundles["b0"]))

        doc = json.loads(get(f"{url}/mirror-lib"))
        doc["versions"]["1.0.0"]["deprecated"] = "use 1.1.0"
        assert send("PUT", f"{url}/mirror-lib", doc, admin) == 200
        publish(manifest("mirror-lib", "1.1.0"))
        cli("advisory", "add", "--data", str(data), "--name", "mirror-lib", "--range", "<1.1.0", "--severity",
            "high", "--title", "mirror-lib before 1.1.0 is bad")
        export("b2", "--after", str(s.bundles["b1"]))

        doc = json.loads(get(f"{url}/{escaped(s.leaf)}"))
        del doc["versions"]["99.0.0"]
        doc["dist-tags"] = {"latest": leaf_latest}
        assert send("PUT", f"{url}/{escaped(s.leaf)}/-rev/1", doc, admin) == 200
        urllib.request.urlopen(urllib.request.Request(f"{url}/{escaped(s.gone)}/-rev/1", method="DELETE",
                                                      headers={"Authorization": f"Bearer {admin}"}), timeout=10)
        assert send("PUT", f"{url}/-/package/mirror-lib/dist-tags/beta", "1.0.0", admin) in (200, 201)
        export("b3", "--after", str(s.bundles["b2"]))

        s.names = feed_names(url)
        s.docs, s.tarballs = served(url, s.names)
    finally:
        assert origin.stop() == 0
    yield s


@dataclass
class Live:
    url: str
    data: Path
    admin: str
    root: Path

    def publish(self, name: str, version: str, **extra: object) -> None:
        assert send("PUT", f"{self.url}/{escaped(name)}", publish_body(manifest(name, version, **extra)),
                    self.admin) == 201

    def sync(self, into: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return mirror("sync", "--origin", self.url, "--into", str(into), *args, check=check)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("sync")
    data = root / "origin"
    cli("seed", "--data", str(data), "--plugins", "40", "--seed", "11")
    admin = cli("token", "create", "--data", str(data), "--name", "a", "--scope", "admin").stdout.splitlines()[-1]
    origin = OriginProcess(data).start()
    try:
        yield Live(origin.url, data, admin, root)
    finally:
        assert origin.stop() == 0
