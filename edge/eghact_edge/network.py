"""``eghact-edge network`` (what ``./dev up`` runs): the whole local network.

An origin on the embedded store (``eghact-origin demo``: seeds a demo universe the first
time), then two edges in two regions in front of it, each with a token of scope ``edge``
so they register with the origin and report their hit counts. Every URL is printed;
Ctrl-C (or SIGTERM) stops the edges, then the origin, each cleanly.

The origin runs as its own process, started by command line, never imported: the edge
reaches the origin only over HTTP.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REGIONS = ("eu-west", "us-east")


def _start(command: list[str], label: str, timeout: float = 600.0) -> tuple[subprocess.Popen[str], str]:
    """Start a server process; return it and the URL of its ``listening on`` line."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
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
        token = subprocess.run([*origin_cli, "token", "create", "--data", str(data), "--name", "demo-edge",
                                "--scope", "edge"], capture_output=True, text=True, check=True).stdout.split()[-1]
        urls = {}
        for offset, region in enumerate(REGIONS, start=1):
            edge_port = port + offset if port else 0
            edge, url = _start([*edge_cli, "serve", "--upstream", origin_url, "--data", str(edges_dir / region),
                                "--region", region, "--port", str(edge_port), "--token", token], f"edge {region}")
            running.append(edge)
            urls[region] = url
        print(f"origin   {origin_url}", flush=True)
        for region, url in urls.items():
            print(f"edge     {url}   (region {region})", flush=True)
        print(f"try:     npm view --registry {urls[REGIONS[0]]}/ <name>     Ctrl-C stops everything", flush=True)
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
