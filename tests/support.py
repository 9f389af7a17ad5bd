"""Test support: real origins (in-process and as subprocesses) and npm-shaped requests."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eghact_origin.tarball import build_tarball

ROOT = Path(__file__).resolve().parents[1]
PYTHONPATH = os.pathsep.join(str(ROOT / p) for p in ("common", "origin", "edge", "mirror-sync", "client"))


def manifest(name: str, version: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "version": version, "description": f"{name} test package",
                           "license": "MIT", "main": "index.js"}
    doc.update(extra)
    return doc


def tarball_for(doc: dict[str, Any], files: dict[str, bytes] | None = None) -> bytes:
    content = {"package.json": json.dumps(doc).encode(), "index.js": b"module.exports = 1;\n"}
    content.update(files or {})
    return build_tarball(content)


def publish_body(doc: dict[str, Any], tarball: bytes | None = None, *, tag: str = "latest",
                 integrity: str | None = None) -> dict[str, Any]:
    """The body ``npm publish`` (libnpmpublish) sends."""
    data = tarball if tarball is not None else tarball_for(doc)
    name, version = doc["name"], doc["version"]
    sri = integrity or "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    version_doc = dict(doc)
    version_doc["dist"] = {"integrity": sri, "shasum": hashlib.sha1(data).hexdigest(),
                           "tarball": f"http://ignored/{name}/-/{name.split('/')[-1]}-{version}.tgz"}
    return {
        "_id": name, "name": name, "description": doc.get("description", ""),
        "dist-tags": {tag: version}, "versions": {version: version_doc}, "access": None,
        "_attachments": {f"{name}-{version}.tgz": {"content_type": "application/octet-stream",
                                                   "data": base64.b64encode(data).decode(), "length": len(data)}},
    }


def blob_path(data_dir: Path, digest: str) -> Path:
    """Where a data dir's blob store keeps ``digest``: one level (a store with a layout file),
    or the two levels of stores made before it (read only: nothing is created)."""
    root = data_dir / "blobs"
    if (root / "layout").exists():
        return root / "sha512" / digest[:2] / digest
    return root / "sha512" / digest[:2] / digest[2:4] / digest


def escaped(name: str) -> str:
    return name.replace("/", "%2f")


@dataclass
class OriginProcess:
    """``eghact-origin serve`` as a real child process."""

    data_dir: Path
    args: tuple[str, ...] = ()
    proc: subprocess.Popen[str] | None = None
    url: str = ""

    def start(self, timeout: float = 20.0) -> OriginProcess:
        self.proc, self.url = spawn_server(
            ["eghact_origin.cli", "serve", "--data", str(self.data_dir), "--port", "0", "--quiet", *self.args],
            "origin", timeout)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return stop_child(self.proc, sig, timeout)


def spawn_server(module_args: list[str], what: str, timeout: float = 20.0) -> tuple[subprocess.Popen[str], str]:
    """``python -m MODULE ARGS`` as a child, once it prints ``... listening on URL``: (child, URL)."""
    proc = subprocess.Popen([sys.executable, "-m", *module_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": PYTHONPATH})
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on" in line:
            return proc, line.strip().rsplit(" ", 1)[-1]
        if not line and proc.poll() is not None:
            break
    err = proc.stderr.read() if proc.stderr else ""
    raise RuntimeError(f"{what} did not start: {err[-3000:]}")


def stop_child(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    """Signal a server child (unless it already exited), wait, close its pipes; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    code = proc.wait(timeout)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    return code


def get(url: str, accept: str | None = None, token: str | None = None) -> bytes:
    """A GET over urllib (tests that must not share an event loop with a server)."""
    request = urllib.request.Request(url)
    if accept:
        request.add_header("Accept", accept)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def cli(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    result = subprocess.run([sys.executable, "-m", "eghact_origin.cli", *args], capture_output=True, text=True,
                            env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"eghact-origin {' '.join(args)} failed: {result.stderr}")
    return result


def tree_digest(root: Path) -> str:
    """A digest of every file's path and bytes below ``root``: proves "nothing changed"."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
