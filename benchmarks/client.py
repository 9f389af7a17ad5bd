"""Client benchmark: ``eghact install`` of an app of about 200 packages beside ``npm install`` of
the same roots, from the same warm edge, in one run.

    .venv/bin/python benchmarks/client.py [--plugins 3000] [--seed 1] [--data DIR] [--rounds 3]
                                          [--reinstalls 5]

1. Seeds a universe into DIR (once; reused afterwards), starts the origin and one edge in
   front of it, and picks roots whose tree holds about 200 packages (``benchmarks/resolve.py``'s
   search, ``duplicate=isolate``: npm's own tree, so both clients install the same packages).
2. Warms the edge: one install by each client, not counted (packuments, resolutions, tarballs).
3. Then, interleaved over ``--rounds`` rounds, each a whole command as a user runs it, in a new
   project folder: ``eghact install --all`` (every chunk placed, as npm places every package)
   and ``npm install --ignore-scripts --no-audit --no-fund``, each with a cold client cache
   (an empty ``--cache`` / npm cache folder) and a warm one (filled by the cold run), neither
   with a lockfile; and the unchanged re-install, ``eghact install`` (and ``npm install``, for
   information) in the project already installed.

Prints min and median wall time (and CPU of the command and its children) per case, the
npm/eghact ratios against the targets (3x faster cold and warm) and the re-install against
100 ms. Everything runs on 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "common"), str(ROOT / "origin"), str(ROOT / "edge"), str(ROOT)]

from benchmarks.resolve import find_apps  # noqa: E402
from tests.edge.support import EdgeProcess  # noqa: E402
from tests.support import OriginProcess, cli  # noqa: E402

EGHACT = Path(sys.executable).with_name("eghact")
NPM_INSTALL = ("npm", "install", "--ignore-scripts", "--no-audit", "--no-fund")
SPEED_TARGET = 3.0          # npm / eghact, cold and warm caches
REINSTALL_TARGET_MS = 100.0
COMMAND_TIMEOUT = 600


def run(argv: list[str] | tuple[str, ...], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (its own and its children's) of one whole command, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.stdout


class Clients:
    """Makes project folders and runs each client in them, every cache and folder under ``work``."""

    def __init__(self, work: Path, edge: str, roots: dict[str, str]):
        self.work = work
        self.edge = edge
        self.roots = roots
        self.made = 0
        # npm reads no user or global configuration of this machine: only what is set here
        self.npm_env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        self.npm_env.update({"npm_config_update_notifier": "false", "CI": "true",
                             "npm_config_userconfig": str(work / "npmrc"), "npm_config_registry": f"{edge}/"})
        (work / "npmrc").write_text("")
        self.eghact_env = {k: v for k, v in os.environ.items() if k != "EGHACT_REGISTRY"}

    def folder(self, kind: str) -> Path:
        self.made += 1
        folder = self.work / f"{kind}-{self.made}"
        folder.mkdir()
        if kind == "npm":
            (folder / "package.json").write_text(json.dumps({"name": "bench-app", "version": "1.0.0", "private": True,
                                                             "dependencies": self.roots}))
        else:
            (folder / "eghact.json").write_text(json.dumps({
                "dependencies": self.roots, "strategy": {"duplicate": "isolate"},
                "registry": {"primary": self.edge, "edges": [self.edge]}}))
        return folder

    def eghact(self, folder: Path, cache: Path, *args: str) -> tuple[float, float, str]:
        return run([str(EGHACT), "--project", str(folder), "--cache", str(cache), "--json", "install", *args],
                   folder, self.eghact_env)

    def npm(self, folder: Path, cache: Path) -> tuple[float, float, str]:
        return run(NPM_INSTALL, folder, {**self.npm_env, "npm_config_cache": str(cache)})


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def summary(samples: list[tuple[float, float]]) -> str:
    walls = [w * 1000 for w, _ in samples]
    cpus = [c * 1000 for _, c in samples]
    return (f"{min(walls):>9.0f}{statistics.median(walls):>9.0f} ms   cpu {min(cpus):>7.0f}"
            f"{statistics.median(cpus):>7.0f} ms  (n={len(samples)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugins", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reinstalls", type=int, default=5, help="unchanged re-installs timed per round")
    args = parser.parse_args()
    if shutil.which("npm") is None:
        print("npm is needed (Node.js 18+)", file=sys.stderr)
        return 2
    data = args.data or Path(tempfile.mkdtemp(prefix="eghact-client-bench-")) / "data"
    if not (data / "registry.sqlite3").exists():
        print(cli("seed", "--data", str(data), "--plugins", str(args.plugins), "--seed", str(args.seed),
                  timeout=1800).stdout.strip(), flush=True)
    cli("token", "list", "--data", str(data))  # applies pending migrations before the workers read the file
    apps = find_apps(data, args.seed, 1, "isolate")[200]
    if not apps:
        print("no root set of about 200 packages found in this universe; try more --plugins", file=sys.stderr)
        return 1
    roots = apps[0]
    work = Path(tempfile.mkdtemp(prefix="eghact-client-bench-work-"))
    origin = OriginProcess(data).start()
    edge = EdgeProcess(origin.url, work / "edge", region="bench",
                       args=("--no-warm", "--rate", "1e9", "--burst", "1e9", "--memory-bytes", "1G")).start()
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        clients = Clients(work, edge.url, roots)
        # warm the edge with both clients' requests (not counted), and check they agree on the tree
        _, _, out = clients.eghact(clients.folder("eghact"), fresh(work / "eghact-cache-0"), "--all")
        packages = json.loads(out)["packages"]
        clients.npm(clients.folder("npm"), fresh(work / "npm-cache-0"))
        print(f"app: {len(roots)} roots, {packages} packages; edge {edge.url} warm", flush=True)

        def add(case: str, sample: tuple[float, float, str]) -> None:
            results.setdefault(case, []).append(sample[:2])

        for round_number in range(args.rounds):
            eghact_cache, npm_cache = fresh(work / "eghact-cache"), fresh(work / "npm-cache")
            add("eghact cold", clients.eghact(installed := clients.folder("eghact"), eghact_cache, "--all"))
            add("npm cold", clients.npm(npm_installed := clients.folder("npm"), npm_cache))
            add("eghact warm", clients.eghact(clients.folder("eghact"), eghact_cache, "--all"))
            add("npm warm", clients.npm(clients.folder("npm"), npm_cache))
            # the first plain install proves the project up to date in full (and stamps it) ...
            add("eghact re-install, first", clients.eghact(installed, eghact_cache))
            for _ in range(args.reinstalls):   # ... the next ones answer from the stamp
                sample = clients.eghact(installed, eghact_cache)
                if json.loads(sample[2])["changed"]:
                    raise RuntimeError("an unchanged project's re-install changed something")
                add("eghact re-install", sample)
            add("npm re-install", clients.npm(npm_installed, npm_cache))
            print(f"round {round_number + 1}/{args.rounds} done", flush=True)
    finally:
        edge.stop()
        origin.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'case':<28}{'min':>9}{'median':>9}        {'min':>7}{'median':>7}")
    for case, samples in results.items():
        print(f"{case:<28}{summary(samples)}")
    print()
    for temperature in ("cold", "warm"):
        ratio = statistics.median(w for w, _ in results[f"npm {temperature}"]) / \
            statistics.median(w for w, _ in results[f"eghact {temperature}"])
        print(f"{temperature} client cache: npm / eghact = {ratio:.1f}x (median wall; target >= {SPEED_TARGET:.0f}x: "
              f"{'met' if ratio >= SPEED_TARGET else 'NOT met'})")
    reinstall = statistics.median(w for w, _ in results["eghact re-install"]) * 1000
    print(f"unchanged re-install: {reinstall:.0f} ms median (target < {REINSTALL_TARGET_MS:.0f} ms: "
          f"{'met' if reinstall < REINSTALL_TARGET_MS else 'NOT met'})")
    print(f"(one edge in front of the origin, both on 127.0.0.1; {packages} packages; "
          f"eghact install --all places every chunk, as npm places every package)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
