"""Locust scenarios for the Eghact delivery network at 10,000-plugin scale.

    eghact-origin seed --data /tmp/lt --plugins 10000 --seed 1
    eghact-origin token create --data /tmp/lt --name load --scope 'publish:loadtest-*'   # last line: the token
    eghact-edge network ...   (or any origin/edge URL)
    EGHACT_TOKEN=egh_... .venv/bin/locust -f loadtests/locustfile.py --host http://127.0.0.1:4873 \\
        --headless -u 200 -r 50 -t 2m

Users:
- ``Installer`` (most traffic): what `npm install` does — abbreviated packuments chosen by a
  Zipf law over the registry's packages (popular plugins dominate, as in real traffic),
  then the tarball of the version the dist-tag names.
- ``Resolver``: ``POST /-/v1/resolve`` for apps of 1 to 8 roots, then the prebuilt fetch.
- ``Publisher`` (rare): publishes new versions of its own packages when EGHACT_TOKEN is set.

The package list comes from the target's own search API at start, so the same file drives
an origin, an edge or a mirror. Only point it at hosts you run (127.0.0.1 here).
"""

from __future__ import annotations

import base64
import bisect
import gzip
import hashlib
import io
import itertools
import json
import os
import random
import tarfile

from locust import HttpUser, between, events, task

CORGI = {"Accept": "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"}
PACKAGES: list[str] = []
CUMULATIVE: list[float] = []


@events.test_start.add_listener
def discover(environment, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    """Learn the package names from the target itself (search pages of 250)."""
    import urllib.request

    host = environment.host.rstrip("/")
    names: list[str] = []
    for page in range(int(os.environ.get("EGHACT_DISCOVER_PAGES", "40"))):
        with urllib.request.urlopen(f"{host}/-/v1/search?size=250&from={page * 250}", timeout=30) as response:
            objects = json.loads(response.read())["objects"]
        names += [o["package"]["name"] for o in objects]
        if len(objects) < 250:
            break
    random.Random(1).shuffle(names)  # rank by a fixed random order, not alphabetically
    weights = [1.0 / (rank + 1) for rank in range(len(names))]  # Zipf, alpha 1
    PACKAGES[:] = names
    CUMULATIVE[:] = list(itertools.accumulate(weights))


def zipf_name() -> str:
    return PACKAGES[bisect.bisect_left(CUMULATIVE, random.random() * CUMULATIVE[-1])]


def escaped(name: str) -> str:
    return name.replace("/", "%2f")


class Installer(HttpUser):
    weight = 20
    wait_time = between(0.0, 0.05)

    @task
    def install_one(self) -> None:
        if not PACKAGES:
            return
        name = zipf_name()
        with self.client.get(f"/{escaped(name)}", headers=CORGI, name="/[packument]", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"packument {r.status_code}")
                return
            doc = r.json()
        version = doc["dist-tags"].get("latest")
        if version and version in doc["versions"]:
            tarball = doc["versions"][version]["dist"]["tarball"]
            path = "/" + tarball.split("/", 3)[3]
            self.client.get(path, name="/[tarball]")


class Resolver(HttpUser):
    weight = 2
    wait_time = between(0.1, 0.5)

    @task
    def resolve_app(self) -> None:
        if not PACKAGES:
            return
        roots = {zipf_name(): "*" for _ in range(random.randint(1, 8))}
        body = {"dependencies": roots, "strategy": {"duplicate": "isolate"}}
        with self.client.post("/-/v1/resolve", json=body, name="/-/v1/resolve", catch_response=True) as r:
            if r.status_code not in (200, 422):
                r.failure(f"resolve {r.status_code}")
                return
            location = r.headers.get("Location")
        if location:
            self.client.get(location, name="/-/v1/resolutions/[hash]")


def _tarball(manifest: dict) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in (("package/package.json", json.dumps(manifest).encode()),
                           ("package/index.js", b"module.exports = 1;\n")):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


class Publisher(HttpUser):
    weight = 1
    wait_time = between(0.5, 2.0)
    counter = itertools.count()

    def on_start(self) -> None:
        self.token = os.environ.get("EGHACT_TOKEN")
        self.name = f"loadtest-{os.getpid()}-{id(self) % 100000}"

    @task
    def publish(self) -> None:
        if not self.token:
            return
        version = f"1.0.{next(self.counter)}"
        manifest = {"name": self.name, "version": version, "license": "MIT", "description": "load test"}
        data = _tarball(manifest)
        integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        body = {"name": self.name, "dist-tags": {"latest": version},
                "versions": {version: {**manifest, "dist": {"integrity": integrity}}},
                "_attachments": {f"{self.name}-{version}.tgz": {"data": base64.b64encode(data).decode(),
                                                                "length": len(data)}}}
        self.client.put(f"/{self.name}", json=body, headers={"Authorization": f"Bearer {self.token}"},
                        name="/[publish]")
