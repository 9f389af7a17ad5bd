"""``eghact-edge network`` (what ``./dev up`` runs) as a real process tree: the demo's
credentials are reused from start to start, and no token is on any command line."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from eghact_common.wire import DEMO_TOKENS_FILE
from eghact_edge.network import TRY_PACKAGE
from eghact_origin.seeding import universe

from ..support import PYTHONPATH, ROOT, cli


class Network:
    """One ``eghact-edge network --port 0`` child, read line by line on a thread."""

    def __init__(self, data: Path, plugins: int = 5):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "eghact_edge.cli", "network", "--data", str(data), "--port", "0",
             "--plugins", str(plugins)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONPATH": PYTHONPATH})
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout or ():
            self.lines.put(line)

    def wait_for(self, prefix: str, timeout: float = 180.0) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} line; the network said:\n{''.join(seen)[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(10)   # it ends at the pipe's end, once every child has exited
            if self.proc.stdout:
                self.proc.stdout.close()


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc/*/stat, so it sees grandchildren too)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue   # gone meanwhile
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _live_tokens(data: Path) -> list[str]:
    return [line for line in cli("token", "list", "--data", str(data)).stdout.splitlines()
            if line.endswith("\tactive")]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.mark.slow
def test_three_starts_leave_the_tokens_of_one_and_none_on_a_command_line(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    counts, kept = [], []
    for start in range(3):
        network = Network(data)
        try:
            origin_url = network.wait_for("origin ").split()[-1]
            try_line = network.wait_for("try:")
            processes = [network.proc.pid, *_descendants(network.proc.pid)]
            assert len(processes) >= 4   # the network, the origin, two edges
            argvs = [(Path("/proc") / str(pid) / "cmdline").read_bytes().decode() for pid in processes]
            assert not [argv for argv in argvs if "--token" in argv or "egh_" in argv]
            tokens = json.loads((data / DEMO_TOKENS_FILE).read_bytes())
            assert (data / DEMO_TOKENS_FILE).stat().st_mode & 0o777 == 0o600
            assert not [argv for argv in argvs for token in tokens.values() if token in argv]
            # The edges got their token all the same: they registered, which needs scope edge.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                regions = {edge["region"] for edge in json.loads(_get(f"{origin_url}/-/v1/edges"))["edges"]}
                if regions >= {"eu-west", "us-east"}:
                    break
                time.sleep(0.2)
            assert regions >= {"eu-west", "us-east"}
            # The try-it line names a package the universe holds.
            name = re.search(r"npm view --registry \S+ (\S+)", try_line).group(1)  # type: ignore[union-attr]
            assert json.loads(_get(f"{origin_url}/{name.replace('/', '%2f')}"))["name"] == name
        finally:
            assert network.stop() == 0
        assert not [pid for pid in processes[1:] if Path(f"/proc/{pid}").exists()
                    and "eghact" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
        counts.append(len(_live_tokens(data)))
        kept.append(tokens)
        if start == 0:
            # What the network did before: one more edge token per start, never revoked.
            cli("token", "create", "--data", str(data), "--name", "demo-edge", "--scope", "edge")
    assert counts == [2, 2, 2]
    assert kept[0] == kept[1] == kept[2]   # reused, not minted again


def test_the_readme_names_a_package_of_the_demo_universe() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"npm view --registry http://127.0.0.1:4874/ {TRY_PACKAGE}\n" in readme
    # ./dev up's defaults: `eghact-edge network --plugins 300`, `eghact-origin demo --seed 7`.
    plan = universe.plan_universe(300, 7)
    assert TRY_PACKAGE in {package.name for package in plan.packages}
