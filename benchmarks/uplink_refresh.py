"""Uplink refresher benchmark: how many pulled packages one origin keeps fresh at a given max age.

    .venv/bin/python benchmarks/uplink_refresh.py [--packages 2000] [--seed 1] [--data DIR]
                                                  [--concurrency 4] [--batch 256] [--max-age 300]

1. Seeds an upstream universe into DIR/upstream (once; reused afterwards) and serves it with a
   second origin of ours, as its own process, on 127.0.0.1.
2. An origin under test, in this process, with that upstream as its uplink, pulls the first
   ``--packages`` names (their packuments; tarballs are not needed for a refresh).
3. Its injected clock moves past the max age: every pulled package is due. The refresher's
   cycles (the same ``Refresher.cycle`` the background loop runs) revalidate them all, each a
   conditional request answered 304, ``--concurrency`` at a time, ``--batch`` per cycle.

Prints the refresh rate (packages per second) and what it keeps fresh at ``--max-age``:
rate x max age. Both processes share the machine (2 cores, shared with whatever else runs),
so the figure is a floor for one core each, not a capacity plan.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "common"), str(ROOT / "origin"), str(ROOT)]

from tests.support import OriginProcess, cli  # noqa: E402

from eghact_origin.app import create_app  # noqa: E402
from eghact_origin.http.appkeys import REGISTRY, REPORTER, UPLINKS  # noqa: E402
from eghact_origin.settings import OriginSettings  # noqa: E402
from eghact_origin.uplinks.config import Uplink, UplinkConfig  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def names_of(url: str, limit: int) -> list[str]:
    """The upstream's package names, from its changes feed (first seen first)."""
    seen: dict[str, None] = {}
    since = 0
    async with aiohttp.ClientSession() as http:
        for _ in range(1000):  # bounded: 1000 pages of 1000 events
            async with http.get(f"{url}/-/v1/changes?since={since}&limit=1000") as response:
                page = await response.json()
            for event in page["results"]:
                seen.setdefault(event["name"], None)
            if not page["results"] or len(seen) >= limit:
                break
            since = page["results"][-1]["seq"]
    return list(seen)[:limit]


async def run(args: argparse.Namespace, data: Path) -> None:
    upstream_dir = data / "upstream"
    if not (upstream_dir / "registry.sqlite3").exists():
        started = time.perf_counter()
        cli("seed", "--data", str(upstream_dir), "--plugins", str(args.packages), "--seed", str(args.seed),
            timeout=3600)
        print(f"seeded {args.packages} plugins into {upstream_dir} in {time.perf_counter() - started:.1f} s")
    upstream = await asyncio.to_thread(OriginProcess(upstream_dir, ("--quiet",)).start)
    clock = Clock()
    subject_dir = Path(tempfile.mkdtemp(prefix="refresh-subject-", dir=data))
    config = UplinkConfig((Uplink("default", upstream.url),), max_age=args.max_age,
                          refresh_interval=3600.0,  # the background loop stays asleep: we run the cycles
                          refresh_batch=args.batch, refresh_concurrency=args.concurrency)
    app = create_app(OriginSettings(data_dir=subject_dir, port=0, access_log=False, uplinks=config), clock=clock)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        service = app[UPLINKS]
        names = await names_of(upstream.url, args.packages)
        started = time.perf_counter()
        present = await service.ensure_many(names, concurrency=args.concurrency)
        pulled = sum(present.values())
        print(f"pulled {pulled}/{len(names)} packuments in {time.perf_counter() - started:.1f} s")

        clock.now += args.max_age + 1  # every one of them is due now
        refresher = service.refresher
        started, cycles = time.perf_counter(), 0
        deadline = started + 600
        while time.perf_counter() < deadline:
            before = refresher.cycles
            await refresher.cycle()
            cycles += refresher.cycles - before
            due = await app[REGISTRY].store.uplink_due("default", clock.now - args.max_age, 1)
            if not due:
                break
        seconds = time.perf_counter() - started
        rate = pulled / seconds
        health = service.client.report()["default"]
        exposition = app[REPORTER].exposition().decode()
        answers = {status: _counted(exposition, "eghact_origin_uplink_refreshes_total", f'result="{status}"')
                   for status in ("304", "200")}
        print(f"revalidations answered: {answers}")
        print(f"refreshed {pulled} pulled packages in {seconds:.2f} s over {cycles} cycles: "
              f"{rate:.0f} packages/s with {args.concurrency} at a time, batch {args.batch}; uplink {health['state']}")
        print(f"at --uplink-max-age {args.max_age:g}s that keeps about {rate * args.max_age:,.0f} "
              "pulled packages fresh")
    finally:
        await runner.cleanup()
        await asyncio.to_thread(upstream.stop)


def _counted(exposition: str, metric: str, label: str) -> int:
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in exposition.splitlines()
               if line.startswith(metric) and label in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--max-age", type=float, default=300.0)
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="eghact-refresh-bench-"))
    data.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args, data))


if __name__ == "__main__":
    main()
