"""``eghact-edge network`` (what ``./dev up`` runs): the whole local network.

An origin on the embedded store (``eghact-origin demo``: seeds a demo universe the first
time), then two edges in two regions in front of it, each with a token of scope ``edge``
so they register with the origin and report their hit counts. Every URL is printed;
Ctrl-C (or SIGTERM) stops the edges, then the origin, each cleanly.

The edge token is the demo's own, reused by every start (the origin keeps it in
``DATA/demo-tokens.json``, 0600); the edges get it in ``$EGHACT_EDGE_TOKEN``, never on
their command line, which every local user can read in ``ps``.

The origin runs as its own process, started by command line, never imported: the edge
reaches the origin only over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from eghact_common.wire import DEMO_TOKENS_FILE

REGIONS = ("eu-west", "us-east")
# A plugin of the default demo universe (300 plugins, seed 7), named by the README's try-it line.
TRY_PACKAGE = "code-editor-kit"


def _start(command: list[str], label: str, timeout: float = 600.0,
           env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """Start a server process; return it and the URL of its ``listening on`` line."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    if proc.stdout is None:
        raise RuntimeError(f"{label}: no output pipe")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(f"{label} exited with {proc.returncode}")
            continue
        if "listening on" in line:
            # Keep draining its output so the process never blocks on a full pipe.
            threading.Thread(target=_drain, args=(proc, label), daemon=True).start()
            return proc, line.strip().rsplit(" ", 1)[-1]
        print(f"[{label}] {line.rstrip()}", flush=True)
    proc.terminate()
    raise RuntimeError(f"{label} did not start within {timeout:.0f}s")


def _drain(proc: subprocess.Popen[str], label: str) -> None:
    for line in proc.stdout or ():
        print(f"[{label}] {line.rstrip()}", flush=True)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _demo_edge_token(data: Path) -> str:
    """The edge token ``eghact-origin demo`` keeps (it has written the file before listening)."""
    try:
        token = json.loads((data / DEMO_TOKENS_FILE).read_bytes())["demo-edge"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"no demo edge token in {data / DEMO_TOKENS_FILE}: {exc}") from exc
    if not isinstance(token, str):
        raise RuntimeError(f"no demo edge token in {data / DEMO_TOKENS_FILE}")
    return token


def _a_package(origin_url: str) -> str:
    """A name the universe really holds: TRY_PACKAGE when it is there (the default demo), else
    the first plugin the origin's search finds (another --plugins count)."""
    for path in (f"/{TRY_PACKAGE}", "/-/v1/search?text=eghact&size=1"):
        try:
            with urllib.request.urlopen(origin_url + path, timeout=5) as response:
                body = json.loads(response.read())
            return TRY_PACKAGE if path == f"/{TRY_PACKAGE}" else str(body["objects"][0]["package"]["name"])
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            continue   # a 404 is an HTTPError, an OSError
    return "<name>"


def run_network(data: Path, *, port: int = 4873, plugins: int = 300) -> int:
    origin_cli = [sys.executable, "-m", "eghact_origin.cli"]
    edge_cli = [sys.executable, "-m", "eghact_edge.cli"]
    edges_dir = data.parent / f"{data.name}-edges"
    running: list[subprocess.Popen[str]] = []
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        origin, origin_url = _start([*origin_cli, "demo", "--data", str(data), "--port", str(port),
                                     "--plugins", str(plugins), "--quiet"], "origin")
        running.append(origin)
        edge_env = {**os.environ, "EGHACT_EDGE_TOKEN": _demo_edge_token(data)}
        urls = {}
        for offset, region in enumerate(REGIONS, start=1):
            edge_port = port + offset if port else 0
            edge, url = _start([*edge_cli, "serve", "--upstream", origin_url, "--data", str(edges_dir / region),
                                "--region", region, "--port", str(edge_port)], f"edge {region}", env=edge_env)
            running.append(edge)
            urls[region] = url
        print(f"origin   {origin_url}", flush=True)
        for region, url in urls.items():
            print(f"edge     {url}   (region {region})", flush=True)
        print(f"try:     npm view --registry {urls[REGIONS[0]]}/ {_a_package(origin_url)}     "
              "Ctrl-C stops everything", flush=True)
        while not stop.is_set() and all(p.poll() is None for p in running):
            stop.wait(0.5)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"eghact-edge network: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in reversed(running):  # edges first, then the origin they follow
            with contextlib.suppress(Exception):
                _stop(proc)
    return 0
